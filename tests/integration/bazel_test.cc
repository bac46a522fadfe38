// A real Bazel (Debian's bazel-bootstrap, offline) uses the coordinator as its remote cache.
#include <signal.h>

#include <functional>
#include <regex>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/digest/digest.h"
#include "tests/integration/bazel_workspace.h"
#include "tests/integration/farm.h"
#include "tests/integration/s3_test_base.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

class BazelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists("/usr/bin/bazel")) << "bazel-bootstrap is not installed (scripts/install-deps.sh installs it)";
    ASSERT_NO_FATAL_FAILURE(StartCoordinator());
    root_ = farm_.dir() / "bazel";
    std::map<std::string, std::string> rules = OfflineRepositories();
    rules["ws/WORKSPACE"] = "";

    std::string srcs, build = "cc_library(\n    name = \"lib\",\n    srcs = [";
    std::string main = "#include <cstdio>\n";
    for (int i = 0; i < 12; ++i) {
      rules[absl::StrCat("ws/f", i, ".h")] = absl::StrCat("int f", i, "();\n");
      rules[absl::StrCat("ws/f", i, ".cc")] = absl::StrCat("#include \"f", i, ".h\"\nint f", i, "() { return ", i, "; }\n");
      absl::StrAppend(&build, "\"f", i, ".cc\", ");
      absl::StrAppend(&main, "#include \"f", i, ".h\"\n");
    }
    absl::StrAppend(&build, "],\n    hdrs = glob([\"*.h\"]),\n)\ncc_binary(name = \"app\", srcs = [\"main.cc\"], deps = [\":lib\"])\n");
    absl::StrAppend(&main, "int main() { std::printf(\"%d\\n\", f0() + f11()); }\n");
    rules["ws/BUILD"] = build;
    rules["ws/main.cc"] = main;
    for (const auto& [path, content] : rules) {
      fs::create_directories((root_ / path).parent_path());
      ASSERT_TRUE(WriteFile(root_ / path, content).ok());
    }
  }

  RunResult Bazel(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"/usr/bin/bazel", "--batch", "--output_user_root=" + (root_ / "out").string()};
    argv.insert(argv.end(), args.begin(), args.end());
    // bazel runs in the workspace: a tiny shell wrapper sets the directory.
    std::string command = "cd '" + (root_ / "ws").string() + "' && exec";
    for (const auto& a : argv) absl::StrAppend(&command, " '", a, "'");
    return RunCommand({"/bin/sh", "-c", command}, absl::Minutes(5));
  }

  RunResult Build(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {"build"};
    for (const std::string& flag : OfflineFlags(root_.string())) args.push_back(flag);
    args.push_back("--remote_cache=grpc://" + farm_.address());
    args.push_back("//:app");
    args.insert(args.end() - 1, extra.begin(), extra.end());
    return Bazel(args);
  }

  std::string AppDigest() {
    auto bytes = ReadFile(root_ / "ws/bazel-bin/app");
    return bytes.ok() ? Digest::OfBytes(*bytes).ToString() : "";
  }

  void TearDown() override {
    // --batch leaves no server behind; the output tree is removed with the farm's folder.
  }
  virtual void StartCoordinator() { farm_.StartCoordinator(); }

  // A cold build, then after `bazel clean` a warm one: every action a remote cache hit, the same
  // binary. `between` runs between the two builds.
  void CheckCleanRebuildIsAllHits(const std::function<void()>& between) {
    RunResult cold = Build({});
    ASSERT_EQ(cold.exit_code, 0) << cold.err;
    BuildStats first = ParseStats(cold.err);
    ASSERT_GT(first.local, 0) << cold.err;
    EXPECT_EQ(first.remote_hits, 0);
    built_ = AppDigest();
    ASSERT_FALSE(built_.empty());
    between();
    ASSERT_EQ(Bazel({"clean"}).exit_code, 0);
    RunResult warm = Build({});
    ASSERT_EQ(warm.exit_code, 0) << warm.err;
    BuildStats second = ParseStats(warm.err);
    EXPECT_EQ(second.remote_hits, first.local) << warm.err;
    EXPECT_EQ(second.local, 0) << "every action must come from the cache:\n" << warm.err;
    EXPECT_EQ(AppDigest(), built_);
    actions_ = first.local;
  }

  Farm farm_;
  fs::path root_;
  std::string built_;  // the app's digest after the cold build
  int actions_ = 0;    // the actions it ran
};

TEST_F(BazelTest, CleanRebuildIsAllRemoteCacheHitsWithIdenticalOutputs) {
  ASSERT_NO_FATAL_FAILURE(CheckCleanRebuildIsAllHits([] {}));
  const std::string built = built_;

  // Bazel's default since 7: intermediates stay in the cache, the top-level binary comes down whole.
  ASSERT_EQ(Bazel({"clean"}).exit_code, 0);
  RunResult toplevel = Build({"--remote_download_toplevel"});
  ASSERT_EQ(toplevel.exit_code, 0) << toplevel.err;
  EXPECT_EQ(ParseStats(toplevel.err).remote_hits, actions_) << toplevel.err;
  EXPECT_EQ(ParseStats(toplevel.err).local, 0) << toplevel.err;
  EXPECT_EQ(AppDigest(), built);
}

TEST_F(BazelTest, InstanceNamesAndDownloadMinimal) {
  RunResult cold = Build({"--remote_instance_name=ci/main"});
  ASSERT_EQ(cold.exit_code, 0) << cold.err;
  int actions = ParseStats(cold.err).local;
  ASSERT_GT(actions, 0);
  ASSERT_EQ(Bazel({"clean"}).exit_code, 0);
  // Another instance shares nothing with ci/main's action cache.
  RunResult other = Build({"--remote_instance_name=ci/other"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_EQ(ParseStats(other.err).remote_hits, 0) << other.err;
  ASSERT_EQ(Bazel({"clean"}).exit_code, 0);
  RunResult minimal = Build({"--remote_instance_name=ci/main", "--remote_download_minimal"});
  ASSERT_EQ(minimal.exit_code, 0) << minimal.err;
  EXPECT_EQ(ParseStats(minimal.err).remote_hits, actions) << minimal.err;
  EXPECT_EQ(ParseStats(minimal.err).local, 0) << minimal.err;
  EXPECT_FALSE(fs::exists(root_ / "ws/bazel-bin/app")) << "--remote_download_minimal leaves outputs remote";
}

// Scoped tokens on loopback plaintext (Bazel 4.2.3 cannot do TLS), sent as a header: CI's
// cache-write token fills the cache; a developer's cache-read token gets every hit but cannot add
// to the cache, and its build still succeeds.
TEST_F(BazelTest, ACacheReadTokenGetsHitsButCannotUpload) {
  const std::string ci = "ci0ci0ci0ci0ci0ci0ci0ci0ci0ci0c1", dev = "dev0dev0dev0dev0dev0dev0dev0dev0",
                    admin = "adm0adm0adm0adm0adm0adm0adm0adm0";
  ASSERT_TRUE(WriteFile(farm_.dir() / "tokens", absl::StrCat(ci, " cache-read,cache-write\n", dev, " cache-read\n",
                                                             admin, " admin,read\n"))
                  .ok());
  ASSERT_TRUE(WriteFile(farm_.dir() / "admin-token", admin + "\n").ok());
  ClientSecurity security;
  security.token_file = (farm_.dir() / "admin-token").string();
  farm_.UseClientSecurity(security);
  farm_.StopCoordinator(SIGTERM);
  farm_.StartCoordinator({"--token-file", (farm_.dir() / "tokens").string()});
  auto action_results = [&]() -> int64_t {
    RunResult stats = farm_.Cli({"--output", "json", "cache", "stats"});
    EXPECT_EQ(stats.exit_code, 0) << stats.err;
    std::smatch m;
    std::regex field(R"re("action_results":\s*"?(\d+))re");
    return std::regex_search(stats.out, m, field) ? std::stoll(m[1]) : 0;
  };
  auto header = [](const std::string& token) { return "--remote_header=authorization=Bearer " + token; };

  RunResult filled = Build({header(ci)});
  ASSERT_EQ(filled.exit_code, 0) << filled.err;
  const int actions = ParseStats(filled.err).local;
  ASSERT_GT(actions, 0) << filled.err;
  const int64_t cached = action_results();
  EXPECT_EQ(cached, actions);

  ASSERT_EQ(Bazel({"clean"}).exit_code, 0);
  RunResult hits = Build({header(dev)});
  ASSERT_EQ(hits.exit_code, 0) << hits.err;
  EXPECT_EQ(ParseStats(hits.err).remote_hits, actions) << hits.err;
  EXPECT_EQ(ParseStats(hits.err).local, 0) << hits.err;

  // A change built with the read-only token runs locally; its results are not accepted.
  ASSERT_TRUE(WriteFile(root_ / "ws/f3.cc", "#include \"f3.h\"\nint f3() { return 33; }\n").ok());
  RunResult changed = Build({header(dev)});
  ASSERT_EQ(changed.exit_code, 0) << changed.err;
  const int rebuilt = ParseStats(changed.err).local;
  EXPECT_GT(rebuilt, 0) << changed.err;
  // Bazel warns that its uploads were refused (it does not print the status code).
  EXPECT_TRUE(absl::StrContains(changed.err, "WARNING: Writing to Remote Cache")) << changed.err;
  EXPECT_EQ(action_results(), cached) << "a cache-read token must not add to the action cache";
  ASSERT_EQ(Bazel({"clean"}).exit_code, 0);
  RunResult again = Build({header(dev)});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(ParseStats(again.err).local, rebuilt) << "what the read-only build ran was not cached:\n" << again.err;

  // No token at all: the cache refuses Bazel outright.
  RunResult anonymous = Build({});
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(anonymous.err, "UNAUTHENTICATED")) << anonymous.err;
}

// The same with the cache in an S3 bucket (Ceph's radosgw on loopback, --cas-store), and a
// coordinator that lost its data folder between the two builds: the bucket alone still holds
// every hit.
class BazelOnABucketTest : public BazelTest {
 protected:
  void StartCoordinator() override {
    auto flags = CasStoreFlags(farm_.dir());
    ASSERT_TRUE(flags.ok()) << flags.status();
    args_ = *flags;
    farm_.StartCoordinator(args_);
  }
  std::vector<std::string> args_;
};

TEST_F(BazelOnABucketTest, CleanRebuildIsAllRemoteCacheHitsAlsoAfterTheCoordinatorLostItsDataFolder) {
  ASSERT_NO_FATAL_FAILURE(CheckCleanRebuildIsAllHits([this] {
    farm_.StopCoordinator(SIGKILL);
    fs::remove_all(farm_.dir() / "data");
    farm_.StartCoordinator(args_);
  }));
}

}  // namespace
}  // namespace assay::testing
