// The farm's step cache registry over a real RocksDB and an injected clock: exact hits are not saved
// again, restore prefixes take the newest match, a branch falls back to the default branch but never
// to a sibling, the first of two saves of a key wins, the least recently used go beyond the budget,
// and everything survives a reopen.
#include "coordinator/step_cache_store.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/base/file_util.h"
#include "common/digest/digest.h"
#include "coordinator/families.h"

namespace assay {
namespace {

using assay::v1::SavedStepCache;
using assay::v1::StepCacheSpec;
using assay::v1::StepCacheUse;

class StepCacheStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open(int64_t budget = int64_t{1} << 30) {
    store_.reset();
    db_.reset();
    db_ = Database::Open(dir_.path() / "db", CoordinatorDatabaseOptions()).value();
    StepCacheStore::Options options;
    options.budget_bytes = budget;
    store_ = std::make_unique<StepCacheStore>(db_.get(), &clock_, options);
    ASSERT_TRUE(store_->Load().ok());
  }

  static google::protobuf::RepeatedPtrField<StepCacheSpec> Spec(const std::string& key,
                                                                 std::vector<std::string> restore_keys = {}) {
    google::protobuf::RepeatedPtrField<StepCacheSpec> specs;
    StepCacheSpec* spec = specs.Add();
    spec->set_key(key);
    for (auto& r : restore_keys) spec->add_restore_keys(r);
    spec->add_paths("target/");
    return specs;
  }

  // Saves `key` with a root standing for `content`; returns whether it was kept.
  bool Save(const std::string& key, const std::string& content, const std::string& branch = "main",
            int64_t bytes = 100) {
    SavedStepCache saved;
    saved.set_key(key);
    *saved.mutable_root() = Digest::OfBytes(content).ToProto();
    saved.set_files(1);
    saved.set_bytes(bytes);
    clock_.Advance(absl::Seconds(1));
    return store_->Record("fw", branch, "1", "a/build", saved).value();
  }

  StepCacheUse Resolve(const std::string& key, std::vector<std::string> restore_keys = {},
                       const std::string& branch = "main") {
    clock_.Advance(absl::Seconds(1));
    auto uses = store_->Resolve("fw", branch, Spec(key, std::move(restore_keys)));
    EXPECT_EQ(uses.size(), 1u);
    return uses.empty() ? StepCacheUse() : uses[0];
  }

  static std::string RootOf(const std::string& content) { return Digest::OfBytes(content).hash(); }

  ScopedTempDir dir_;
  FakeClock clock_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<StepCacheStore> store_;
};

TEST_F(StepCacheStoreTest, NothingSavedRestoresNothingAndAsksForASave) {
  StepCacheUse use = Resolve("cargo-a-1", {"cargo-a-"});
  EXPECT_FALSE(use.has_restore_root());
  EXPECT_TRUE(use.save());
  EXPECT_EQ(use.key(), "cargo-a-1");
  ASSERT_EQ(use.paths_size(), 1);
  EXPECT_EQ(use.paths(0), "target/");
}

TEST_F(StepCacheStoreTest, AnExactHitRestoresItAndIsNotSavedAgain) {
  ASSERT_TRUE(Save("cargo-a-1", "one"));
  StepCacheUse use = Resolve("cargo-a-1", {"cargo-a-"});
  EXPECT_EQ(use.restore_root().hash(), RootOf("one"));
  EXPECT_EQ(use.restored_key(), "cargo-a-1");
  EXPECT_FALSE(use.save());
  EXPECT_FALSE(Save("cargo-a-1", "changed")) << "keys are immutable";
  EXPECT_EQ(Resolve("cargo-a-1").restore_root().hash(), RootOf("one"));
}

TEST_F(StepCacheStoreTest, APrefixRestoresTheNewestMatchAndTheRunSavesItsOwnKey) {
  ASSERT_TRUE(Save("cargo-a-1", "one"));
  ASSERT_TRUE(Save("cargo-a-2", "two"));
  ASSERT_TRUE(Save("cargo-b-9", "other"));
  StepCacheUse use = Resolve("cargo-a-3", {"cargo-x-", "cargo-a-"});
  EXPECT_EQ(use.restore_root().hash(), RootOf("two"));
  EXPECT_EQ(use.restored_key(), "cargo-a-2");
  EXPECT_TRUE(use.save());
  EXPECT_FALSE(Resolve("cargo-c-1", {"cargo-c-"}).has_restore_root());
}

TEST_F(StepCacheStoreTest, ABranchRestoresTheDefaultBranchsCachesButNotASiblings) {
  ASSERT_TRUE(Save("k-1", "main's", "main"));
  ASSERT_TRUE(Save("k-2", "feature's", "feature"));
  // The feature branch: its own first (exact), then main's.
  EXPECT_EQ(Resolve("k-2", {"k-"}, "feature").restore_root().hash(), RootOf("feature's"));
  StepCacheUse from_main = Resolve("k-1", {}, "feature");
  EXPECT_EQ(from_main.restore_root().hash(), RootOf("main's"));
  EXPECT_FALSE(from_main.save()) << "an exact hit from the default branch is not saved again";
  // A sibling sees main's (by prefix), never feature's.
  StepCacheUse sibling = Resolve("k-2", {"k-"}, "other");
  EXPECT_EQ(sibling.restore_root().hash(), RootOf("main's"));
  EXPECT_TRUE(sibling.save());
  // main never sees a branch's.
  EXPECT_FALSE(Resolve("k-2", {}, "main").has_restore_root());
  // No branch label is the default branch.
  EXPECT_EQ(Resolve("k-1", {}, "").restore_root().hash(), RootOf("main's"));
}

TEST_F(StepCacheStoreTest, TheLeastRecentlyUsedGoBeyondTheBudget) {
  Open(/*budget=*/250);
  ASSERT_TRUE(Save("a", "a"));
  ASSERT_TRUE(Save("b", "b"));
  EXPECT_TRUE(Resolve("a").has_restore_root());  // a is now used more recently than b
  ASSERT_TRUE(Save("c", "c"));                   // 300 bytes > 250: b goes
  EXPECT_TRUE(Resolve("a").has_restore_root());
  EXPECT_FALSE(Resolve("b").has_restore_root());
  EXPECT_TRUE(Resolve("c").has_restore_root());
  EXPECT_EQ(store_->List("").total_bytes(), 200);
  EXPECT_FALSE(Save("huge", "huge", "main", 251)) << "a cache larger than the budget is not kept";
  EXPECT_EQ(store_->List("").caches_size(), 2);
}

TEST_F(StepCacheStoreTest, ListAndDeleteByKeyOrAllAndEverythingSurvivesAReopen) {
  ASSERT_TRUE(Save("k-1", "one", "main"));
  ASSERT_TRUE(Save("k-1", "one'", "feature"));
  ASSERT_TRUE(Save("k-2", "two", "main"));
  auto listed = store_->List("fw");
  ASSERT_EQ(listed.caches_size(), 3);
  EXPECT_EQ(listed.caches(0).key(), "k-2") << "newest first";
  EXPECT_EQ(listed.total_bytes(), 300);
  EXPECT_EQ(store_->List("another").caches_size(), 0);

  Open();
  EXPECT_EQ(store_->List("").caches_size(), 3);
  EXPECT_EQ(store_->Delete("k-1", false, "", "").value(), 2) << "a key in every branch";
  EXPECT_FALSE(store_->Delete("", false, "", "").ok()) << "neither a key nor all";
  Open();
  ASSERT_EQ(store_->List("").caches_size(), 1);
  EXPECT_EQ(store_->Delete("", true, "", "").value(), 1);
  Open();
  EXPECT_EQ(store_->List("").caches_size(), 0);
  EXPECT_EQ(store_->List("").total_bytes(), 0);
}

}  // namespace
}  // namespace assay
