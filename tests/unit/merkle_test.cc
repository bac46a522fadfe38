#include "common/tree/merkle.h"

#include <gtest/gtest.h>

#include "absl/container/flat_hash_map.h"
#include "common/base/file_util.h"

namespace assay {
namespace {
namespace fs = std::filesystem;

class MerkleTest : public ::testing::Test {
 protected:
  absl::StatusOr<reapi::Directory> Load(const Digest& d) {
    auto it = blobs_.find(d);
    if (it == blobs_.end()) return absl::NotFoundError("missing");
    reapi::Directory dir;
    dir.ParseFromString(it->second);
    return dir;
  }
  DirectoryLoader loader() {
    return [this](const Digest& d) { return Load(d); };
  }
  BlobSaver saver() {
    return [this](const Digest& d, const std::string& b) {
      blobs_[d] = b;
      return absl::OkStatus();
    };
  }
  void Keep(const LocalTree& tree) {
    for (const auto& b : tree.blobs) {
      if (b.file.empty()) blobs_[b.digest] = b.data;
    }
  }
  ScopedTempDir dir_;
  absl::flat_hash_map<Digest, std::string> blobs_;
};

TEST_F(MerkleTest, ScanIsDeterministicAndIgnores) {
  ASSERT_TRUE(MakeDirs(dir_.path() / "src/sub").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / "src/b.c", "b").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / "src/sub/a.c", "a").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / "run.sh", "#!/bin/sh\n", true).ok());
  ASSERT_TRUE(MakeDirs(dir_.path() / ".git").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / ".git/HEAD", "ref").ok());
  auto ignore = [](const std::string& rel, bool) { return rel == ".git"; };
  auto t1 = ScanDirectory(dir_.path(), ignore);
  auto t2 = ScanDirectory(dir_.path(), ignore);
  ASSERT_TRUE(t1.ok() && t2.ok());
  EXPECT_EQ(t1->root, t2->root);
  EXPECT_EQ(t1->files, 3);
  Keep(*t1);
  auto run = FindFile(t1->root, "run.sh", loader());
  ASSERT_TRUE(run.ok());
  EXPECT_TRUE(run->is_executable());
  EXPECT_TRUE(FindFile(t1->root, "src/sub/a.c", loader()).ok());
  EXPECT_EQ(FindFile(t1->root, ".git/HEAD", loader()).status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(WriteFile(dir_.path() / "src/sub/a.c", "changed").ok());
  EXPECT_NE(ScanDirectory(dir_.path(), ignore)->root, t1->root);
}

TEST_F(MerkleTest, SymlinksOutsideTheTreeAreRefused) {
  fs::create_symlink("/etc/passwd", dir_.path() / "escape");
  auto tree = ScanDirectory(dir_.path(), nullptr);
  ASSERT_FALSE(tree.ok());
  EXPECT_NE(tree.status().message().find("points outside"), std::string::npos);
}

TEST_F(MerkleTest, AddFilesMergesIntoNewDirectoriesAndReplaces) {
  ASSERT_TRUE(WriteFile(dir_.path() / "keep.txt", "k").ok());
  ASSERT_TRUE(MakeDirs(dir_.path() / "out").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / "out/old.bin", "old").ok());
  auto tree = ScanDirectory(dir_.path(), nullptr);
  ASSERT_TRUE(tree.ok());
  Keep(*tree);
  std::vector<reapi::OutputFile> outputs(2);
  outputs[0].set_path("out/old.bin");
  *outputs[0].mutable_digest() = Digest::OfBytes("new").ToProto();
  outputs[1].set_path("deep/er/x.elf");
  *outputs[1].mutable_digest() = Digest::OfBytes("elf").ToProto();
  outputs[1].set_is_executable(true);
  auto merged = AddFilesToTree(tree->root, outputs, {}, loader(), saver());
  ASSERT_TRUE(merged.ok()) << merged.status();
  EXPECT_EQ(FindFile(*merged, "out/old.bin", loader())->digest().hash(), Digest::OfBytes("new").hash());
  EXPECT_TRUE(FindFile(*merged, "deep/er/x.elf", loader())->is_executable());
  EXPECT_TRUE(FindFile(*merged, "keep.txt", loader()).ok());
  // The same merge gives the same digest, so cache keys are stable.
  EXPECT_EQ(AddFilesToTree(tree->root, outputs, {}, loader(), saver()).value(), *merged);
  std::vector<reapi::OutputFile> bad(1);
  bad[0].set_path("../escape");
  EXPECT_FALSE(AddFilesToTree(tree->root, bad, {}, loader(), saver()).ok());
}

}  // namespace
}  // namespace assay

namespace assay {
namespace {

TEST(PathMatchesTest, FoldersExactPathsAndGlobs) {
  EXPECT_TRUE(PathMatches("src/", "src/a/b.c"));
  EXPECT_TRUE(PathMatches("src/**", "src/a/b.c"));
  EXPECT_TRUE(PathMatches("src", "src/b.c"));
  EXPECT_FALSE(PathMatches("src/", "srcs/b.c"));
  EXPECT_TRUE(PathMatches("Makefile", "Makefile"));
  EXPECT_FALSE(PathMatches("Makefile", "sub/Makefile"));
  EXPECT_TRUE(PathMatches("src/*.c", "src/main.c"));
  EXPECT_FALSE(PathMatches("src/*.c", "src/sub/main.c")) << "* stays within a folder";
}

TEST_F(MerkleTest, FilterTreeKeepsOnlyDeclaredInputsAndIsStable) {
  ASSERT_TRUE(MakeDirs(dir_.path() / "arch/arm").ok());
  ASSERT_TRUE(MakeDirs(dir_.path() / "arch/riscv").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / "arch/arm/board.c", "arm").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / "arch/riscv/board.c", "riscv").ok());
  ASSERT_TRUE(WriteFile(dir_.path() / "Makefile", "all:").ok());
  auto tree = ScanDirectory(dir_.path(), nullptr);
  ASSERT_TRUE(tree.ok());
  Keep(*tree);
  auto arm = FilterTree(tree->root, {"Makefile", "arch/arm/"}, loader(), saver());
  ASSERT_TRUE(arm.ok());
  EXPECT_TRUE(FindFile(*arm, "arch/arm/board.c", loader()).ok());
  EXPECT_FALSE(FindFile(*arm, "arch/riscv/board.c", loader()).ok());
  EXPECT_TRUE(FindFile(*arm, "Makefile", loader()).ok());

  // Changing a file the filter leaves out does not change the filtered digest.
  ASSERT_TRUE(WriteFile(dir_.path() / "arch/riscv/board.c", "riscv v2").ok());
  auto changed = ScanDirectory(dir_.path(), nullptr);
  Keep(*changed);
  EXPECT_NE(changed->root, tree->root);
  EXPECT_EQ(FilterTree(changed->root, {"Makefile", "arch/arm/"}, loader(), saver()).value(), *arm);
  EXPECT_EQ(FilterTree(tree->root, {}, loader(), saver()).value(), tree->root) << "no inputs: the whole tree";
}

}  // namespace
}  // namespace assay
