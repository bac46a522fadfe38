// A real Bazel (Debian's 4.2.3, offline) runs its actions on the farm's workers with
// --remote_executor: a C++ workspace with a library, a binary, a test, a genrule and a rule whose
// output is a directory holding a symlink and an executable file.
#include <iostream>
#include <thread>

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/digest/digest.h"
#include "tests/integration/bazel_workspace.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

constexpr const char* kTreeRule = R"(def _impl(ctx):
    d = ctx.actions.declare_directory(ctx.label.name)
    ctx.actions.run_shell(
        outputs = [d],
        command = "mkdir -p {d}/sub && echo leaf > {d}/sub/leaf.txt && printf '#!/bin/sh\\necho tool\\n' > {d}/tool.sh && chmod +x {d}/tool.sh && ln -s sub/leaf.txt {d}/link".format(d = d.path),
    )
    return [DefaultInfo(files = depset([d]))]

tree = rule(implementation = _impl)
)";

class BazelExecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists("/usr/bin/bazel")) << "bazel-bootstrap is not installed (scripts/install-deps.sh installs it)";
    farm_.set_executor("auto");  // the workers' default: the sandbox
    farm_.StartCoordinator();
    root_ = farm_.dir() / "bazel";
    std::map<std::string, std::string> files = OfflineRepositories();
    std::string build = "load(\":tree.bzl\", \"tree\")\ncc_library(name = \"lib\", hdrs = glob([\"*.h\"]), srcs = [";
    std::string main = "#include <cstdio>\n", sum = "0";
    for (int i = 0; i < 6; ++i) {
      files[absl::StrCat("ws/f", i, ".h")] = absl::StrCat("int f", i, "();\n");
      files[absl::StrCat("ws/f", i, ".cc")] = absl::StrCat("#include \"f", i, ".h\"\nint f", i, "() { return ", i, "; }\n");
      absl::StrAppend(&build, "\"f", i, ".cc\", ");
      absl::StrAppend(&main, "#include \"f", i, ".h\"\n");
      absl::StrAppend(&sum, " + f", i, "()");
    }
    absl::StrAppend(&build, "])\n",
                    "cc_binary(name = \"app\", srcs = [\"main.cc\"], deps = [\":lib\"])\n"
                    "cc_test(name = \"app_test\", srcs = [\"app_test.cc\"], deps = [\":lib\"])\n"
                    "cc_test(name = \"slow_test\", srcs = [\"slow_test.cc\"])\n"
                    "genrule(name = \"gen\", outs = [\"gen.txt\"], cmd = \"echo generated > $@\")\n"
                    "genrule(name = \"bad\", outs = [\"bad.txt\"], cmd = \"echo this-action-fails >&2; exit 3\")\n"
                    "genrule(name = \"on_cpu\", outs = [\"cpu.txt\"], cmd = \"echo cpu > $@\", "
                    "exec_properties = {\"pool\": \"cpu\"})\n"
                    "genrule(name = \"on_gpu\", outs = [\"gpu.txt\"], cmd = \"echo gpu > $@\", "
                    "exec_properties = {\"pool\": \"gpu\"})\n"
                    "genrule(name = \"sleepy\", outs = [\"sleepy.txt\"], cmd = \"sleep 3; echo slept > $@\")\n"
                    "tree(name = \"tree\")\n");
    files["ws/WORKSPACE"] = "";
    files["ws/BUILD"] = build;
    files["ws/tree.bzl"] = kTreeRule;
    files["ws/main.cc"] = absl::StrCat(main, "int main() { std::printf(\"%d\\n\", ", sum, "); }\n");
    files["ws/app_test.cc"] = "#include \"f5.h\"\nint main() { return f5() == 5 ? 0 : 1; }\n";
    files["ws/slow_test.cc"] =
        "#include <cstdio>\n#include <unistd.h>\n"
        "int main() { std::printf(\"started-sleeping\\n\"); std::fflush(stdout); sleep(60); }\n";
    for (const auto& [path, content] : files) {
      fs::create_directories((root_ / path).parent_path());
      ASSERT_TRUE(WriteFile(root_ / path, content).ok());
    }
  }

  RunResult Bazel(const std::vector<std::string>& args) {
    std::string command = absl::StrCat("cd '", (root_ / "ws").string(), "' && exec /usr/bin/bazel --batch '--output_user_root=",
                                       (root_ / "out").string(), "'");
    for (const auto& a : args) absl::StrAppend(&command, " '", a, "'");
    return RunCommand({"/bin/sh", "-c", command}, absl::Minutes(5));
  }

  // `verb` (build, test) of `targets`, on the farm unless `remote` is false.
  RunResult Run(const std::string& verb, const std::vector<std::string>& targets, std::vector<std::string> extra = {},
                bool remote = true) {
    std::vector<std::string> args = {verb};
    for (const std::string& flag : OfflineFlags(root_.string())) args.push_back(flag);
    if (remote) args.push_back("--remote_executor=grpc://" + farm_.address());
    args.insert(args.end(), extra.begin(), extra.end());
    args.insert(args.end(), targets.begin(), targets.end());
    return Bazel(args);
  }

  // Every file under bazel-bin that the targets produced: path -> digest (and "x" if executable, or
  // "-> target" for a symlink).
  std::map<std::string, std::string> Outputs() {
    std::map<std::string, std::string> out;
    const fs::path bin = root_ / "ws/bazel-bin";
    for (const char* top : {"app", "gen.txt", "tree"}) {
      const fs::path start = bin / top;
      std::vector<fs::path> paths = {start};
      if (fs::is_directory(start)) {
        for (const auto& e : fs::recursive_directory_iterator(start)) paths.push_back(e.path());
      }
      for (const fs::path& p : paths) {
        const std::string rel = p.lexically_relative(bin).string();
        if (fs::is_symlink(p)) {
          out[rel] = "-> " + fs::read_symlink(p).string();
        } else if (fs::is_regular_file(p)) {
          auto bytes = ReadFile(p);
          const bool exec = (fs::status(p).permissions() & fs::perms::owner_exec) != fs::perms::none;
          out[rel] = (bytes.ok() ? Digest::OfBytes(*bytes).ToString() : "unreadable") + (exec ? " x" : "");
        }
      }
    }
    return out;
  }

  // Every task of every job on the farm whose step is `step`.
  std::vector<assay::v1::Task> Tasks(const std::string& step) {
    std::vector<assay::v1::Task> tasks;
    for (int id = 1;; ++id) {
      auto job = farm_.GetJob(absl::StrCat(id));
      if (!job.ok()) break;
      for (const auto& t : job->tasks()) {
        if (t.step() == step) tasks.push_back(t);
      }
    }
    return tasks;
  }

  Farm farm_;
  fs::path root_;
};

TEST_F(BazelExecTest, EveryActionRunsOnTheFarmWithOutputsIdenticalToALocalBuildAndACleanRebuildIsAllHits) {
  farm_.StartWorker("w1", {}, 2);
  const std::vector<std::string> targets = {"//:app", "//:app_test", "//:gen", "//:tree"};
  RunResult remote = Run("test", targets);
  ASSERT_EQ(remote.exit_code, 0) << remote.err;
  const BuildStats first = ParseStats(remote.err);
  EXPECT_GT(first.remote, 0) << remote.err;
  EXPECT_EQ(first.local, 0) << "every action must run on the farm:\n" << remote.err;
  EXPECT_TRUE(absl::StrContains(remote.out + remote.err, "1 test passes")) << remote.out << remote.err;
  const std::map<std::string, std::string> farm_outputs = Outputs();
  EXPECT_EQ(farm_outputs.at("tree/link"), "-> sub/leaf.txt");
  EXPECT_TRUE(absl::EndsWith(farm_outputs.at("tree/tool.sh"), " x"));
  EXPECT_TRUE(farm_outputs.contains("tree/sub/leaf.txt"));
  // The actions are a job's tasks, one per action, grouped by the invocation.
  EXPECT_FALSE(Tasks("CppCompile").empty());
  EXPECT_EQ(Tasks("CppLink").size(), 3u);  // app, app_test and the library's archive (CppLink too)

  ASSERT_EQ(Bazel({"clean"}).exit_code, 0);
  RunResult local = Run("build", {"//:app", "//:gen", "//:tree"}, {}, /*remote=*/false);
  ASSERT_EQ(local.exit_code, 0) << local.err;
  EXPECT_EQ(Outputs(), farm_outputs) << "the farm's outputs must be the local build's";

  ASSERT_EQ(Bazel({"clean"}).exit_code, 0);
  const size_t tasks_before = Tasks("CppCompile").size();
  RunResult warm = Run("test", targets);
  ASSERT_EQ(warm.exit_code, 0) << warm.err;
  const BuildStats second = ParseStats(warm.err);
  EXPECT_EQ(second.remote, 0) << "nothing executes again:\n" << warm.err;
  EXPECT_EQ(second.remote_hits, first.remote) << warm.err;
  EXPECT_EQ(Tasks("CppCompile").size(), tasks_before) << "a cache hit never reaches Execute";
  EXPECT_EQ(Outputs(), farm_outputs);
}

TEST_F(BazelExecTest, AFailingActionsStderrIsShownAndNothingIsCached) {
  farm_.StartWorker("w1");
  for (int run = 1; run <= 2; ++run) {
    RunResult bad = Run("build", {"//:bad"});
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_TRUE(absl::StrContains(bad.err, "this-action-fails")) << bad.err;
    EXPECT_EQ(Tasks("Genrule").size(), static_cast<size_t>(run)) << "a failure is not cached: it runs again";
  }
}

TEST_F(BazelExecTest, ATestPastItsTimeoutIsShownAsTimeoutWithWhatItPrinted) {
  farm_.StartWorker("w1");
  const absl::Time start = absl::Now();
  RunResult slow = Run("test", {"//:slow_test"}, {"--test_timeout=3"});
  EXPECT_NE(slow.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(slow.out + slow.err, "TIMEOUT")) << slow.out << slow.err;
  EXPECT_LT(absl::Now() - start, absl::Seconds(50)) << "killed at its timeout, not after the test's 60 s";
  auto log = ReadFile(root_ / "ws/bazel-testlogs/slow_test/test.log");
  ASSERT_TRUE(log.ok());
  EXPECT_TRUE(absl::StrContains(*log, "started-sleeping")) << *log;
}

TEST_F(BazelExecTest, ExecPropertiesMatchWorkerLabelsAndAnUnsatisfiableOneFailsOnlyItsAction) {
  farm_.StartWorker("w1", {"pool=cpu"});
  RunResult run = Run("build", {"//:on_cpu", "//:on_gpu", "//:gen"}, {"--keep_going"});
  EXPECT_NE(run.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(run.err, "pool=gpu")) << run.err;
  EXPECT_FALSE(absl::StrContains(run.err, "catastrophically")) << run.err;
  EXPECT_TRUE(fs::exists(root_ / "ws/bazel-bin/cpu.txt"));
  EXPECT_TRUE(fs::exists(root_ / "ws/bazel-bin/gen.txt"));
  EXPECT_FALSE(fs::exists(root_ / "ws/bazel-bin/gpu.txt"));
}

TEST_F(BazelExecTest, AWorkerKilledMidActionLeavesTheBuildGreen) {
  farm_.StartWorker("w1");
  farm_.StartWorker("w2");
  std::string killed;
  std::thread killer([&] {
    // Once the slow action runs, its worker dies (kill -9): the action runs again on the other.
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (killed.empty() && absl::Now() < deadline) {
      for (const auto& t : Tasks("Genrule")) {
        if (t.state() == assay::v1::TASK_RUNNING && !t.worker().empty()) {
          killed = t.worker();
          ::kill(farm_.worker_pid(killed), SIGKILL);
          break;
        }
      }
      if (killed.empty()) absl::SleepFor(absl::Milliseconds(50));  // polling the farm's state, not timing
    }
  });
  RunResult run = Run("build", {"//:sleepy"});
  killer.join();
  ASSERT_FALSE(killed.empty()) << "the action was never seen running";
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto tasks = Tasks("Genrule");
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_NE(tasks[0].worker(), killed);
  EXPECT_EQ(ReadFile(root_ / "ws/bazel-bin/sleepy.txt").value_or(""), "slept\n");
}

TEST_F(BazelExecTest, TheCoordinatorKilledMidBuildAndRestartedLeavesTheBuildGreen) {
  farm_.StartWorker("w1");
  bool restarted = false;
  std::thread crash([&] {
    // Once the slow action runs, the coordinator dies (kill -9) and comes back on its data folder.
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (absl::Now() < deadline) {
      auto tasks = Tasks("Genrule");
      if (!tasks.empty() && tasks[0].state() == assay::v1::TASK_RUNNING) {
        farm_.StopCoordinator(SIGKILL);
        farm_.StartCoordinator();
        restarted = true;
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));  // polling the farm's state, not timing
    }
  });
  RunResult run = Run("build", {"//:sleepy"}, {"--remote_retries=20"});
  crash.join();
  ASSERT_TRUE(restarted) << "the action was never seen running";
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(ReadFile(root_ / "ws/bazel-bin/sleepy.txt").value_or(""), "slept\n");
  // One task: Bazel resumed its operation with WaitExecution; two: it executed the action again.
  const std::vector<assay::v1::Task> tasks = Tasks("Genrule");
  ASSERT_FALSE(tasks.empty());
  EXPECT_EQ(tasks.back().state(), assay::v1::TASK_SUCCEEDED);
  std::cout << (tasks.size() == 1 ? "Bazel resumed its operation with WaitExecution after the restart\n"
                                  : "Bazel executed the action again after the restart\n");
}

}  // namespace
}  // namespace assay::testing
