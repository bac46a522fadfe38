// Step caches (`caches:`) on a real farm: the real coordinator, workers and CLI on loopback. A first
// run restores nothing and saves; an edit restores the exact key and saves nothing; a new key restores
// by prefix and saves; a failing step saves nothing; a branch restores the default branch's caches and
// never a sibling's; two cells saving one key at once keep one; a restore whose blobs are gone warns
// and runs the step; a cache never changes an action digest; `assay cache list` and `delete`.
#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/base/clock.h"
#include "common/rocksdb/database.h"
#include "common/rocksdb/rocksdb_blob_store.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

// The step prints what the cache brought (target/stamp: the source of the run that saved it), then
// writes its own source there; `fail` makes it fail after writing.
std::string Pipeline(const std::string& extra_step_keys = "", const std::string& run_tail = "") {
  return absl::StrCat(R"yaml(name: cached
matrix:
  n: [1]
steps:
  - id: build
    run: |
      mkdir -p target out
      if [ -f target/stamp ]; then echo "cache had: $(cat target/stamp)"; else echo "cache had: nothing"; fi
      cat src.txt > target/stamp
      cp src.txt out/result
)yaml", run_tail, R"yaml(    inputs: [src.txt, lock.txt]
    outputs: [out/]
)yaml", extra_step_keys, R"yaml(    caches:
      - key: "k-${{ hashFiles('lock.txt') }}"
        restore_keys: [k-]
        paths: [target/]
)yaml");
}

class StepCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    farm_.StartCoordinator();
    farm_.StartWorker("w1");
  }

  // Submits a tree with this source, lock file and pipeline (labels "k=v"), waits, returns the job.
  Job Run(const std::string& src, const std::string& lock, const std::string& pipeline = Pipeline(),
          const std::vector<std::string>& labels = {}) {
    const fs::path tree = farm_.WriteTree(absl::StrCat("t", ++trees_),
                                          {{"assay.yaml", pipeline}, {"src.txt", src}, {"lock.txt", lock}});
    std::vector<std::string> args = {"submit", tree.string()};
    for (const auto& l : labels) args.insert(args.end(), {"--label", l});
    RunResult submitted = farm_.Cli(args);
    EXPECT_EQ(submitted.exit_code, 0) << submitted.err;
    auto job = farm_.WaitJob(std::string(absl::StripAsciiWhitespace(submitted.out)));
    EXPECT_TRUE(job.ok()) << job.status();
    return job.value_or(Job());
  }
  std::string BuildLog(const Job& job) { return farm_.Log(job.id(), "1/build"); }
  // `assay cache list` rows holding `text`.
  int ListedWith(const std::string& text) {
    RunResult list = farm_.Cli({"cache", "list"});
    EXPECT_EQ(list.exit_code, 0) << list.err;
    int n = 0;
    for (absl::string_view line : absl::StrSplit(list.out, '\n')) n += absl::StrContains(line, text);
    return n;
  }
  static std::string KeyOf(const std::string& log) {
    std::smatch m;
    return std::regex_search(log, m, std::regex("cache (k-[0-9a-f]+): saved")) ? m[1].str() : "";
  }

  Farm farm_;
  int trees_ = 0;
};

TEST_F(StepCacheTest, FirstRunSavesAnEditRestoresTheExactKeyAndANewKeyRestoresByPrefix) {
  Job first = Run("v1", "lock-1");
  ASSERT_EQ(first.state(), assay::v1::JOB_SUCCEEDED) << BuildLog(first);
  std::string log = BuildLog(first);
  EXPECT_TRUE(absl::StrContains(log, "cache had: nothing")) << log;
  EXPECT_TRUE(absl::StrContains(log, ": none saved yet")) << log;
  const std::string key1 = KeyOf(log);
  ASSERT_FALSE(key1.empty()) << log;
  EXPECT_EQ(ListedWith(key1), 1);

  Job edited = Run("v2", "lock-1");  // same key: an exact hit, not saved again
  ASSERT_EQ(edited.state(), assay::v1::JOB_SUCCEEDED);
  log = BuildLog(edited);
  EXPECT_TRUE(absl::StrContains(log, "cache had: v1")) << log;
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("cache ", key1, ": restored, 1 files"))) << log;
  EXPECT_TRUE(absl::StrContains(log, "from this host's cache")) << log;
  EXPECT_FALSE(absl::StrContains(log, ": saved")) << log;

  Job relocked = Run("v3", "lock-2");  // a new key: the newest k- cache, then saved under its own key
  ASSERT_EQ(relocked.state(), assay::v1::JOB_SUCCEEDED);
  log = BuildLog(relocked);
  EXPECT_TRUE(absl::StrContains(log, "cache had: v1")) << log;
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("restored from ", key1))) << log;
  const std::string key2 = KeyOf(log);
  ASSERT_FALSE(key2.empty()) << log;
  EXPECT_NE(key2, key1);
  EXPECT_EQ(ListedWith("k-"), 2);

  Job failed = Run("v4", "lock-3", Pipeline("", "      exit 3\n"));
  ASSERT_EQ(failed.state(), assay::v1::JOB_FAILED);
  log = BuildLog(failed);
  EXPECT_TRUE(absl::StrContains(log, "cache had: v3")) << log;
  EXPECT_FALSE(absl::StrContains(log, ": saved")) << log;
  EXPECT_EQ(ListedWith("k-"), 2) << "a failing step saves nothing";
}

TEST_F(StepCacheTest, ABranchRestoresTheDefaultBranchsCacheButNeverASiblings) {
  Job on_main = Run("main-src", "lock-1");
  ASSERT_EQ(on_main.state(), assay::v1::JOB_SUCCEEDED);
  const std::string main_key = KeyOf(BuildLog(on_main));
  ASSERT_FALSE(main_key.empty());

  Job feature = Run("feature-src", "lock-2", Pipeline(), {"branch=feature"});
  ASSERT_EQ(feature.state(), assay::v1::JOB_SUCCEEDED);
  std::string log = BuildLog(feature);
  EXPECT_TRUE(absl::StrContains(log, "cache had: main-src")) << log;
  const std::string feature_key = KeyOf(log);
  ASSERT_FALSE(feature_key.empty()) << log;

  // The same key on a sibling branch: feature's cache is not its own, main's is the newest it sees.
  Job sibling = Run("sibling-src", "lock-2", Pipeline(), {"branch=other"});
  ASSERT_EQ(sibling.state(), assay::v1::JOB_SUCCEEDED);
  log = BuildLog(sibling);
  EXPECT_TRUE(absl::StrContains(log, "cache had: main-src")) << log;
  EXPECT_TRUE(absl::StrContains(log, absl::StrCat("restored from ", main_key))) << log;

  RunResult list = farm_.Cli({"cache", "list", "--pipeline", "cached"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(absl::StrContains(list.out, "feature")) << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "other")) << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "3 cache(s)")) << list.out;
}

TEST_F(StepCacheTest, TwoCellsSavingOneKeyAtOnceKeepOne) {
  farm_.StartWorker("w2");
  std::string pipeline = Pipeline();
  pipeline = absl::StrReplaceAll(pipeline, {{"n: [1]", "n: [1, 2]"}});
  Job job = Run("both", "lock-1", pipeline);
  ASSERT_EQ(job.state(), assay::v1::JOB_SUCCEEDED);
  const std::string a = farm_.Log(job.id(), "1/build"), b = farm_.Log(job.id(), "2/build");
  EXPECT_TRUE(absl::StrContains(a, "cache had: nothing")) << a;
  EXPECT_TRUE(absl::StrContains(b, "cache had: nothing")) << b;
  EXPECT_EQ(ListedWith("k-"), 1);
  Job next = Run("next", "lock-1", pipeline);
  ASSERT_EQ(next.state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(farm_.Log(next.id(), "2/build"), "cache had: both"));
}

TEST_F(StepCacheTest, ACacheNeverChangesTheActionDigest) {
  Job first = Run("same", "lock-1");
  ASSERT_EQ(first.state(), assay::v1::JOB_SUCCEEDED);
  // Another key, other restore prefixes, other paths: the same action, a cache hit, nothing restored.
  std::string other = absl::StrReplaceAll(Pipeline(), {{"\"k-${{", "\"other-${{"}, {"[k-]", "[other-, x-]"},
                                                       {"paths: [target/]", "paths: [target/, more/]"}});
  Job second = Run("same", "lock-1", other);
  ASSERT_EQ(second.state(), assay::v1::JOB_SUCCEEDED);
  ASSERT_EQ(second.tasks_size(), 1);
  EXPECT_TRUE(second.tasks(0).cached());
  EXPECT_EQ(second.tasks(0).action_digest().hash(), first.tasks(0).action_digest().hash());
  EXPECT_FALSE(absl::StrContains(BuildLog(second), "restored")) << BuildLog(second);
}

TEST_F(StepCacheTest, ARestoreWhoseTreeIsGoneWarnsAndTheStepRuns) {
  Job first = Run("v1", "lock-1");
  ASSERT_EQ(first.state(), assay::v1::JOB_SUCCEEDED);
  RunResult listed = farm_.Cli({"cache", "list", "--json"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(listed.out, m, std::regex("\"hash\": \"([0-9a-f]{64})\",\\s*\"size_bytes\": \"([0-9]+)\"")))
      << listed.out;
  const Digest root = Digest::Create(m[1].str(), std::stoll(m[2].str())).value();
  farm_.StopWorker("w1");
  farm_.StopCoordinator(SIGTERM);
  {  // The CAS's eviction could do this: the cache's root directory is gone.
    auto db = Database::Open((farm_.dir() / "data").string());
    ASSERT_TRUE(db.ok()) << db.status();
    auto store = RocksDbBlobStore::Create(db->get(), RealClock::Get());
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Delete(root).ok());
  }
  farm_.StartCoordinator();
  farm_.StartWorker("w1");
  Job second = Run("v2", "lock-1");
  ASSERT_EQ(second.state(), assay::v1::JOB_SUCCEEDED);
  const std::string log = BuildLog(second);
  EXPECT_TRUE(absl::StrContains(log, "warning: cache k-")) << log;
  EXPECT_TRUE(absl::StrContains(log, "not restored")) << log;
  EXPECT_TRUE(absl::StrContains(log, "cache had: nothing")) << log;
}

// Each worker keeps a copy of the trees it restored (restores are then a kernel copy), the least
// recently used going beyond a quarter of its --cache-bytes; the copy in use stays.
TEST_F(StepCacheTest, AWorkersCopiesOfRestoredTreesStayWithinItsBudget) {
  auto kept = [this]() {
    std::vector<std::string> trees;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(farm_.dir() / "work-w1" / "cache-trees", ec)) {
      if (entry.is_directory()) trees.push_back(entry.path().filename().string());
    }
    return trees;
  };
  ASSERT_EQ(Run("v1", "lock-1").state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_TRUE(kept().empty()) << "nothing restored yet";
  ASSERT_EQ(Run("v2", "lock-1").state(), assay::v1::JOB_SUCCEEDED);
  ASSERT_EQ(kept().size(), 1u);
  const std::string first = kept()[0];
  Job again = Run("v3", "lock-1");  // from the copy now
  EXPECT_TRUE(absl::StrContains(BuildLog(again), "cache had: v1")) << BuildLog(again);
  EXPECT_EQ(kept(), std::vector<std::string>{first});

  farm_.StopWorker("w1");
  farm_.StartWorker("w1", {}, 1, {"--cache-bytes", "8"});  // room for no copy but the one in use
  ASSERT_EQ(Run("v4", "lock-2").state(), assay::v1::JOB_SUCCEEDED);  // restores lock-1's, saves lock-2's
  Job second = Run("v5", "lock-2");                                   // restores lock-2's
  ASSERT_EQ(second.state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_TRUE(absl::StrContains(BuildLog(second), "cache had: v4")) << BuildLog(second);
  ASSERT_EQ(kept().size(), 1u);
  EXPECT_NE(kept()[0], first) << "the least recently used copy went";
}

// What a user sees: `assay submit` refuses a bad cache path or key with the file and line, and no job
// is created.
TEST_F(StepCacheTest, BadCachePathsAndKeysAreRefusedAtSubmitWithFileAndLine) {
  auto refused = [this](const std::string& pipeline, const std::map<std::string, std::string>& extra = {}) {
    std::map<std::string, std::string> files = {{"assay.yaml", pipeline}, {"src.txt", "s"}, {"lock.txt", "l"}};
    files.insert(extra.begin(), extra.end());
    const fs::path tree = farm_.WriteTree(absl::StrCat("bad", ++trees_), files);
    RunResult r = farm_.Cli({"submit", tree.string()});
    EXPECT_NE(r.exit_code, 0) << r.out;
    return r.err;
  };
  const std::string up = refused(absl::StrReplaceAll(Pipeline(), {{"paths: [target/]", "paths: [../target]"}}));
  EXPECT_TRUE(absl::StrContains(up, "assay.yaml:16:16: step 'build'.caches[0] path '../target' leaves its directory"))
      << up;
  const std::string absolute = refused(absl::StrReplaceAll(Pipeline(), {{"paths: [target/]", "paths: [/root]"}}));
  EXPECT_TRUE(absl::StrContains(absolute, "assay.yaml:16:16: step 'build'.caches[0] path '/root' must be relative"))
      << absolute;
  const std::string key = refused(absl::StrReplaceAll(Pipeline(), {{"\"k-${{", "\"../k-${{"}}));
  EXPECT_TRUE(absl::StrContains(key, "assay.yaml:14: step 'build' caches[0].key")) << key;
  // A path through a symlink of the tree: the symlink stays inside the tree, the cache path may not use it.
  const fs::path linked = farm_.WriteTree("linked", {{"assay.yaml", Pipeline()}, {"src.txt", "s"}, {"lock.txt", "l"},
                                                     {"real/keep", "k"}});
  fs::create_directory_symlink("real", linked / "target");
  RunResult r = farm_.Cli({"submit", linked.string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "assay.yaml:14: step 'build' caches[0].paths: 'target/' goes through 'target', "
                                       "a symlink in the submitted tree"))
      << r.err;
  RunResult jobs = farm_.Cli({"jobs"});
  EXPECT_FALSE(absl::StrContains(jobs.out, "cached")) << "no job was created: " << jobs.out;
}

TEST_F(StepCacheTest, CacheListAndDelete) {
  ASSERT_EQ(Run("a", "lock-1").state(), assay::v1::JOB_SUCCEEDED);
  Job second = Run("b", "lock-2");
  ASSERT_EQ(second.state(), assay::v1::JOB_SUCCEEDED);
  const std::string key2 = KeyOf(BuildLog(second));
  EXPECT_EQ(ListedWith("k-"), 2);
  RunResult deleted = farm_.Cli({"cache", "delete", key2});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted 1 cache(s)\n");
  EXPECT_EQ(ListedWith(key2), 0);
  EXPECT_EQ(ListedWith("k-"), 1);
  RunResult again = farm_.Cli({"cache", "delete", key2});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(again.err, "no cache has the key")) << again.err;
  RunResult both = farm_.Cli({"cache", "delete", key2, "--all"});
  EXPECT_NE(both.exit_code, 0);
  RunResult all = farm_.Cli({"cache", "delete", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.out, "deleted 1 cache(s)\n");
  EXPECT_EQ(ListedWith("k-"), 0);
  // A deleted key is saved again by the next run.
  Job third = Run("c", "lock-2");
  EXPECT_TRUE(absl::StrContains(BuildLog(third), "cache had: nothing"));
  EXPECT_EQ(KeyOf(BuildLog(third)), key2);
}

}  // namespace
}  // namespace assay::testing
