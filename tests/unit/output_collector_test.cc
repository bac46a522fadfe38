// CollectOutputs on a real work directory: files and folders are collected, symlinks inside stay
// symlinks, symlinks out (absolute, climbing, or a folder on the way) are refused, and depth is bounded.
#include "worker/output_collector.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "common/tree/safe_fs.h"

namespace assay {
namespace {
namespace fs = std::filesystem;

class OutputCollectorTest : public ::testing::Test {
 protected:
  absl::StatusOr<CollectedOutputs> Collect(const std::vector<std::string>& patterns) {
    auto fd = OpenDirectory(dir_.path());
    EXPECT_TRUE(fd.ok());
    return CollectOutputs(fd->get(), dir_.path().string(), patterns);
  }
  void Write(const std::string& rel, const std::string& content) {
    ASSERT_TRUE(MakeDirs((dir_.path() / rel).parent_path()).ok());
    ASSERT_TRUE(WriteFile(dir_.path() / rel, content).ok());
  }
  ScopedTempDir dir_{"collector-test"};
};

TEST_F(OutputCollectorTest, FilesFoldersAndInsideSymlinks) {
  Write("out/a.bin", "aaa");
  Write("out/sub/b.txt", "bb");
  fs::create_symlink("a.bin", dir_.path() / "out/latest");
  auto out = Collect({"out/", "missing.txt"});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->files.size(), 2u);
  EXPECT_EQ(out->files[0].path(), "out/a.bin");
  EXPECT_EQ(out->files[1].path(), "out/sub/b.txt");
  EXPECT_EQ(Digest::FromProto(out->files[0].digest()).value(), Digest::OfBytes("aaa"));
  ASSERT_EQ(out->symlinks.size(), 1u);
  EXPECT_EQ(out->symlinks[0].path(), "out/latest");
  EXPECT_EQ(out->symlinks[0].target(), "a.bin");
  ASSERT_EQ(out->warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(out->warnings[0], "'missing.txt' matched nothing"));
}

TEST_F(OutputCollectorTest, SymlinksOutOfTheWorkDirectoryAreRefused) {
  fs::create_symlink("/etc/passwd", dir_.path() / "abs");
  auto absolute = Collect({"abs"});
  ASSERT_FALSE(absolute.ok());
  EXPECT_TRUE(absl::StrContains(absolute.status().message(), "symlink to '/etc/passwd'")) << absolute.status();

  ASSERT_TRUE(MakeDirs(dir_.path() / "d").ok());
  fs::create_symlink("../../outside", dir_.path() / "d/up");
  EXPECT_FALSE(Collect({"d/"}).ok());

  // A folder on the way that is a symlink: its contents are never read.
  fs::create_directory_symlink("/etc", dir_.path() / "etc-link");
  auto through = Collect({"etc-link/passwd"});
  ASSERT_FALSE(through.ok());
  EXPECT_TRUE(absl::StrContains(through.status().message(), "not inside the work directory")) << through.status();
}

TEST_F(OutputCollectorTest, DepthBelowAnOutputFolderIsBounded) {
  std::string deep = "tower";
  for (int i = 0; i < 260; ++i) deep += "/d";
  Write(deep + "/top.txt", "x");
  auto out = Collect({"tower/"});
  ASSERT_FALSE(out.ok());
  EXPECT_TRUE(absl::StrContains(out.status().message(), "deeper than 256")) << out.status();
}

}  // namespace
}  // namespace assay
