// TreeWriter on its own, with validation bypassed: for every hostile fixture nothing appears outside
// the work directory; existing entries are never followed or replaced; bytes that do not match their
// digest leave no file.
#include "common/tree/tree_writer.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "tests/common/hostile_trees.h"
#include "tests/common/hostile_trees_loader.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

// Every path under `top` (not following symlinks), relative to it.
std::set<std::string> Listing(const fs::path& top) {
  std::set<std::string> out;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(top, fs::directory_options::none, ec), end; !ec && it != end;
       it.increment(ec)) {
    out.insert(it->path().lexically_relative(top).string());
  }
  return out;
}

// Writes the whole tree (layout, every file, symlinks) the way the worker's InputFetcher::Materialize does.
absl::Status WriteTree(const fs::path& work, const HostileTree& tree) {
  auto writer = TreeWriter::Open(work);
  if (!writer.ok()) return writer.status();
  auto files = (*writer)->Layout(tree.root, LoaderOf(tree.blobs));
  if (!files.ok()) return files.status();
  for (const auto& f : *files) {
    auto out = (*writer)->CreateFile(f);
    if (!out.ok()) return out.status();
    if (absl::Status s = out->Append(tree.blobs.at(f.digest)); !s.ok()) return s;
    if (absl::Status s = out->Commit(); !s.ok()) return s;
  }
  return (*writer)->FinishSymlinks();
}

class WriterFixtureTest : public ::testing::TestWithParam<HostileTree> {};

TEST_P(WriterFixtureTest, WritesNothingOutsideTheWorkDirectory) {
  const HostileTree& tree = GetParam();
  ScopedTempDir top("writer-test");
  // A host around the work directory: the task folder, a neighbour, and the work dir itself.
  const fs::path task = top.path() / "task";
  const fs::path work = task / "exec";
  ASSERT_TRUE(MakeDirs(work).ok());
  ASSERT_TRUE(WriteFile(top.path() / "neighbour.txt", "keep\n").ok());
  std::set<std::string> before = Listing(top.path());

  absl::Status status = WriteTree(work, tree);
  // Whatever it returned, nothing outside work/ changed.
  std::set<std::string> after = Listing(top.path());
  std::set<std::string> outside;
  for (const std::string& p : after) {
    if (!absl::StartsWith(p, "task/exec/") && !before.contains(p)) outside.insert(p);
  }
  EXPECT_TRUE(outside.empty()) << tree.name << " wrote " << *outside.begin();
  EXPECT_EQ(ReadFile(top.path() / "neighbour.txt").value_or(""), "keep\n");
  if (!tree.outside_name.empty()) {
    for (const std::string& p : after) EXPECT_FALSE(absl::StrContains(p, tree.outside_name)) << p;
  }
  // Trees whose defect the writer can see itself are refused by it too.
  if (tree.name == "SymlinkAndDirectoryOfTheSameName" || tree.name == "DotDotDirectoryName" ||
      tree.name == "SlashInName" || tree.name == "NulInName" || tree.name == "AbsoluteSymlinkTarget" ||
      tree.name == "EscapingSymlinkTarget" || tree.name == "TenThousandDeep" || tree.name == "DotFileName" ||
      tree.name == "EmptyName" || tree.name == "DuplicateEntries" || tree.name == "DirectoryMissingFromCas") {
    EXPECT_FALSE(status.ok()) << tree.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, WriterFixtureTest, ::testing::ValuesIn(HostileTrees()),
                         [](const auto& p) { return p.param.name; });

TEST(TreeWriterTest, WritesAWellFormedTree) {
  ScopedTempDir top("writer-test");
  HostileTree tree = BenignTree();
  ASSERT_TRUE(WriteTree(top.path(), tree).ok());
  EXPECT_EQ(ReadFile(top.path() / "assay.yaml").value(), kFixturePipeline);
  EXPECT_EQ(ReadFile(top.path() / "sub/data.txt").value(), "data\n");
  EXPECT_EQ(fs::read_symlink(top.path() / "z-link"), "sub/data.txt");
  EXPECT_EQ(fs::read_symlink(top.path() / "sub/up"), "../assay.yaml");
  EXPECT_EQ(ReadFile(top.path() / "z-link").value(), "data\n");
}

TEST(TreeWriterTest, AnExistingSymlinkIsNeverFollowedOrReplaced) {
  ScopedTempDir top("writer-test");
  const fs::path work = top.path() / "work";
  const fs::path elsewhere = top.path() / "elsewhere";
  ASSERT_TRUE(MakeDirs(work).ok());
  ASSERT_TRUE(MakeDirs(elsewhere).ok());
  // Something left a symlink where the tree has a directory and where it has a file.
  fs::create_directory_symlink(elsewhere, work / "sub");
  fs::create_symlink(elsewhere / "victim.yaml", work / "assay.yaml");
  HostileTree tree = BenignTree();
  absl::Status status = WriteTree(work, tree);
  ASSERT_FALSE(status.ok());
  EXPECT_TRUE(absl::StrContains(status.message(), "never replaced")) << status;
  EXPECT_TRUE(fs::is_empty(elsewhere));
  EXPECT_TRUE(fs::is_symlink(work / "sub"));
}

TEST(TreeWriterTest, BytesThatDoNotMatchTheDigestLeaveNoFile) {
  ScopedTempDir top("writer-test");
  TreeBuilder b;
  reapi::Directory root;
  AddFile(&root, "firmware.elf", b.File("the real bytes"));
  Digest digest = b.Dir(root);
  auto writer = TreeWriter::Open(top.path());
  ASSERT_TRUE(writer.ok());
  auto files = (*writer)->Layout(digest, LoaderOf(b.blobs()));
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  {
    auto out = (*writer)->CreateFile(files->front());
    ASSERT_TRUE(out.ok());
    ASSERT_TRUE(out->Append("the fake bytes").ok());  // same length, other content
    absl::Status committed = out->Commit();
    EXPECT_EQ(committed.code(), absl::StatusCode::kDataLoss);
    EXPECT_TRUE(absl::StrContains(committed.message(), files->front().digest.ToString())) << committed;
  }
  EXPECT_FALSE(fs::exists(top.path() / "firmware.elf"));
  {
    auto out = (*writer)->CreateFile(files->front());
    ASSERT_TRUE(out.ok());
    EXPECT_EQ(out->Append("the real bytes and more").code(), absl::StatusCode::kDataLoss);
  }
  EXPECT_FALSE(fs::exists(top.path() / "firmware.elf"));
}

}  // namespace
}  // namespace assay::testing
