// ValidateTree against every hostile fixture (refused, naming the path), well-formed trees
// (accepted, counted as written), and the limits at their edges.
#include "common/tree/tree_validator.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/common/hostile_trees.h"
#include "tests/common/hostile_trees_loader.h"

namespace assay::testing {
namespace {

class HostileTreeTest : public ::testing::TestWithParam<HostileTree> {};

TEST_P(HostileTreeTest, IsRefusedNamingThePath) {
  const HostileTree& tree = GetParam();
  auto result = ValidateTree(tree.root, LoaderOf(tree.blobs), TreeLimits{});
  ASSERT_FALSE(result.ok()) << tree.name << " was accepted";
  EXPECT_EQ(result.status().code(), tree.code) << result.status();
  EXPECT_TRUE(absl::StrContains(result.status().message(), QuotedPath(tree))) << result.status();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, HostileTreeTest, ::testing::ValuesIn(HostileTrees()),
                         [](const auto& p) { return p.param.name; });

TEST(TreeValidatorTest, AcceptsAWellFormedTreeAndCountsIt) {
  HostileTree tree = BenignTree();
  auto summary = ValidateTree(tree.root, LoaderOf(tree.blobs), TreeLimits{});
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->files, 2);
  EXPECT_EQ(summary->directories, 1);
  EXPECT_EQ(summary->symlinks, 2);
  EXPECT_EQ(summary->depth, 1);
}

// Shared directories count every time they would be written.
TEST(TreeValidatorTest, EntryAndByteLimitsCountTheTreeAsWritten) {
  TreeBuilder b;
  reapi::Directory leaf;
  AddFile(&leaf, "a", b.File("0123456789"));
  AddFile(&leaf, "b", b.File("01234"));
  Digest shared = b.Dir(leaf);
  reapi::Directory root;
  AddDir(&root, "x", shared);
  AddDir(&root, "y", shared);
  Digest top = b.Dir(root);
  // 2 directories + 4 files = 6 entries, 30 bytes.
  TreeLimits limits;
  limits.max_entries = 6;
  limits.max_total_bytes = 30;
  EXPECT_TRUE(ValidateTree(top, LoaderOf(b.blobs()), limits).ok());
  limits.max_entries = 5;
  auto too_many = ValidateTree(top, LoaderOf(b.blobs()), limits);
  ASSERT_FALSE(too_many.ok());
  EXPECT_TRUE(absl::StrContains(too_many.status().message(), "'y'")) << too_many.status();
  EXPECT_TRUE(absl::StrContains(too_many.status().message(), "--max-tree-entries")) << too_many.status();
  limits.max_entries = 6;
  limits.max_total_bytes = 29;
  auto too_big = ValidateTree(top, LoaderOf(b.blobs()), limits);
  ASSERT_FALSE(too_big.ok());
  EXPECT_TRUE(absl::StrContains(too_big.status().message(), "--max-tree-bytes")) << too_big.status();
}

TEST(TreeValidatorTest, DepthLimitIsExact) {
  TreeBuilder b;
  Digest below = b.Dir(reapi::Directory());
  for (int i = 0; i < 3; ++i) {
    reapi::Directory level;
    AddDir(&level, "d", below);
    below = b.Dir(level);
  }
  TreeLimits limits;
  limits.max_depth = 3;  // root/d/d/d
  EXPECT_TRUE(ValidateTree(below, LoaderOf(b.blobs()), limits).ok());
  limits.max_depth = 2;
  auto deep = ValidateTree(below, LoaderOf(b.blobs()), limits);
  ASSERT_FALSE(deep.ok());
  EXPECT_TRUE(absl::StrContains(deep.status().message(), "'d/d/d'")) << deep.status();
}

TEST(TreeValidatorTest, SymlinksThatStayInsideThroughOtherSymlinksAreAccepted) {
  TreeBuilder b;
  reapi::Directory deep;
  AddFile(&deep, "f", b.File("f"));
  reapi::Directory mid;
  AddDir(&mid, "deep", b.Dir(deep));
  reapi::Directory root;
  AddDir(&root, "mid", b.Dir(mid));
  AddLink(&root, "to-deep", "mid/deep");
  AddLink(&root, "via", "to-deep/f");
  EXPECT_TRUE(ValidateTree(b.Dir(root), LoaderOf(b.blobs()), TreeLimits{}).ok());

  // Past a name the tree lacks, the rest is followed by name: this one climbs above the root.
  reapi::Directory dangling = root;
  AddLink(&dangling, "zz-dangling", "nowhere/../..");
  auto result = ValidateTree(b.Dir(dangling), LoaderOf(b.blobs()), TreeLimits{});
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(absl::StrContains(result.status().message(), "'zz-dangling'")) << result.status();

  // Inside when the kernel follows to-deep (mid/deep/.. /.. is the root), but above the root by
  // name: refused too, so that what passes here is what the writer accepts.
  reapi::Directory by_name = root;
  AddLink(&by_name, "zz-up", "to-deep/../../mid");
  auto refused = ValidateTree(b.Dir(by_name), LoaderOf(b.blobs()), TreeLimits{});
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(absl::StrContains(refused.status().message(), "'zz-up'")) << refused.status();
}

TEST(TreeValidatorTest, BadDigestsAreNamed) {
  reapi::Directory root;
  auto* f = root.add_files();
  f->set_name("file");
  f->mutable_digest()->set_hash("NOT-HEX");
  f->mutable_digest()->set_size_bytes(3);
  auto status = ValidateDirectory(root, "src");
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "'src/file'")) << status;
}

}  // namespace
}  // namespace assay::testing
