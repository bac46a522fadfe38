// Spare directories (common/base/spare_directories.h): emptied folders kept and handed back as new
// ones without making an inode, only when clean, never over an existing entry.
#include "common/base/spare_directories.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include <gtest/gtest.h>

#include "common/base/file_util.h"
#include "common/tree/safe_fs.h"

namespace assay {
namespace {

namespace fs = std::filesystem;

struct stat StatOf(const fs::path& path) {
  struct stat st = {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st;
}

class SpareDirectoriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto spares = SpareDirectories::Open(tmp_.path() / "spares", 4);
    ASSERT_TRUE(spares.ok()) << spares.status();
    spares_ = std::move(*spares);
    auto dir = OpenDirectory(tmp_.path());
    ASSERT_TRUE(dir.ok());
    dir_ = std::move(*dir);
  }
  // Empties and keeps `name` in the temporary folder; whether it was kept.
  bool Keep(const std::string& name) {
    const fs::path path = tmp_.path() / name;
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    EXPECT_GE(fd, 0) << path;
    const bool kept = spares_->Keep(dir_.get(), name.c_str(), fd);
    ::close(fd);
    return kept;
  }

  ScopedTempDir tmp_{"assay-spares"};
  std::unique_ptr<SpareDirectories> spares_;
  ScopedFd dir_;
};

TEST_F(SpareDirectoriesTest, AKeptDirectoryComesBackAsTheNextFolderWithItsInodeAndMode0755) {
  fs::create_directory(tmp_.path() / "old");
  fs::permissions(tmp_.path() / "old", fs::perms::owner_all);  // 0700, as a step may leave it
  const ino_t inode = StatOf(tmp_.path() / "old").st_ino;
  ASSERT_TRUE(Keep("old"));
  EXPECT_FALSE(fs::exists(tmp_.path() / "old"));
  EXPECT_EQ(spares_->size(), 1u);

  auto made = MakeDirectoryAt(dir_.get(), "new", spares_.get());
  ASSERT_TRUE(made.ok()) << made.status();
  const struct stat st = StatOf(tmp_.path() / "new");
  EXPECT_EQ(st.st_ino, inode) << "a new directory was made, not the spare taken";
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_TRUE(fs::is_empty(tmp_.path() / "new"));
  EXPECT_EQ(spares_->size(), 0u);

  // None left: a directory is made as before.
  ASSERT_TRUE(MakeDirectoryAt(dir_.get(), "another", spares_.get()).ok());
  EXPECT_NE(StatOf(tmp_.path() / "another").st_ino, inode);
}

TEST_F(SpareDirectoriesTest, ASpareNeverReplacesAnExistingEntryAndStaysInThePool) {
  fs::create_directory(tmp_.path() / "old");
  ASSERT_TRUE(Keep("old"));
  fs::create_directory(tmp_.path() / "taken");  // empty: a plain rename would replace it
  const ino_t taken = StatOf(tmp_.path() / "taken").st_ino;
  auto made = MakeDirectoryAt(dir_.get(), "taken", spares_.get());
  EXPECT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("taken"), std::string::npos) << made.status();
  EXPECT_EQ(StatOf(tmp_.path() / "taken").st_ino, taken);
  EXPECT_EQ(spares_->size(), 1u);
}

TEST_F(SpareDirectoriesTest, OnlyCleanEmptiedDirectoriesAreKeptAndNoMoreThanTheCapacity) {
  fs::create_directories(tmp_.path() / "parent" / "child");  // not emptied: two links and more
  EXPECT_FALSE(Keep("parent"));
  fs::create_directory(tmp_.path() / "marked");
  if (::setxattr((tmp_.path() / "marked").c_str(), "user.assay", "x", 1, 0) == 0) {
    EXPECT_FALSE(Keep("marked")) << "a directory with extended attributes was kept";
  } else {
    EXPECT_EQ(errno, ENOTSUP) << "setxattr";
  }
  for (int i = 0; i < 6; ++i) fs::create_directory(tmp_.path() / ("d" + std::to_string(i)));
  int kept = 0;
  for (int i = 0; i < 6; ++i) kept += Keep("d" + std::to_string(i));
  EXPECT_EQ(kept, 4);
  EXPECT_EQ(spares_->size(), 4u);
  EXPECT_TRUE(fs::exists(tmp_.path() / "d5"));  // left to the caller to remove
}

TEST_F(SpareDirectoriesTest, RemoveAllKeepsATreesEmptiedDirectoriesAndLeavesNoFileBehind) {
  const fs::path tree = tmp_.path() / "task";
  fs::create_directories(tree / "work" / "src");
  ASSERT_TRUE(WriteFile(tree / "work" / "src" / "main.c", "int main() {}\n").ok());
  ASSERT_TRUE(WriteFile(tree / "log", "output\n").ok());
  fs::create_symlink("/etc", tree / "work" / "etc");
  ASSERT_TRUE(RemoveAll(tree, spares_.get()).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(tree)));
  EXPECT_EQ(spares_->size(), 3u);  // task, work, src
  for (const auto& entry : fs::recursive_directory_iterator(tmp_.path() / "spares")) {
    EXPECT_TRUE(entry.is_directory() && !entry.is_symlink()) << entry.path();
    EXPECT_TRUE(fs::is_empty(entry.path())) << entry.path();
  }
  EXPECT_TRUE(fs::exists("/etc/passwd"));  // the symlink went, not what it named
}

TEST(SpareDirectoriesOpenTest, APoolLeftByAnEarlierRunStartsEmpty) {
  ScopedTempDir tmp("assay-spares");
  fs::create_directories(tmp.path() / "spares" / "0" / "left");
  ASSERT_TRUE(WriteFile(tmp.path() / "spares" / "1", "a file").ok());
  auto spares = SpareDirectories::Open(tmp.path() / "spares", 4);
  ASSERT_TRUE(spares.ok()) << spares.status();
  EXPECT_EQ((*spares)->size(), 0u);
  EXPECT_TRUE(fs::is_empty(tmp.path() / "spares"));
}

}  // namespace
}  // namespace assay
