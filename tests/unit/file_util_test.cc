#include "common/base/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace assay {
namespace {
namespace fs = std::filesystem;

// A task's folder as a hostile step may leave it: nested folders, a read-only one, symlinks to a
// folder and a file outside. All of it goes; what the symlinks point at stays.
TEST(RemoveAllTest, RemovesATreeWithoutFollowingItsSymlinks) {
  ScopedTempDir tmp("assay-remove-all");
  const fs::path outside = tmp.path() / "outside", task = tmp.path() / "task";
  ASSERT_TRUE(MakeDirs(outside / "keep").ok());
  ASSERT_TRUE(WriteFile(outside / "keep" / "file", "kept").ok());
  ASSERT_TRUE(MakeDirs(task / "a" / "b" / "c").ok());
  ASSERT_TRUE(WriteFile(task / "a" / "b" / "c" / "deep", "x").ok());
  ASSERT_TRUE(WriteFile(task / "top", "y").ok());
  fs::create_directory_symlink(outside / "keep", task / "a" / "to-dir");
  fs::create_symlink(outside / "keep" / "file", task / "to-file");
  fs::create_symlink(task / "missing", task / "dangling");
  ASSERT_EQ(::chmod((task / "a" / "b").c_str(), 0555), 0);

  ASSERT_TRUE(RemoveAll(task).ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(task)));
  ASSERT_TRUE(fs::exists(outside / "keep" / "file"));
  EXPECT_EQ(*ReadFile(outside / "keep" / "file"), "kept");
}

TEST(RemoveAllTest, AMissingPathIsNothingToDoAndASymlinkOrFileGoesAlone) {
  ScopedTempDir tmp("assay-remove-all");
  EXPECT_TRUE(RemoveAll(tmp.path() / "never-made").ok());
  ASSERT_TRUE(MakeDirs(tmp.path() / "dir").ok());
  ASSERT_TRUE(WriteFile(tmp.path() / "dir" / "file", "z").ok());
  fs::create_directory_symlink(tmp.path() / "dir", tmp.path() / "link");
  ASSERT_TRUE(RemoveAll(tmp.path() / "link").ok());
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp.path() / "link")));
  EXPECT_TRUE(fs::exists(tmp.path() / "dir" / "file")) << "the symlink went, not what it points at";
  ASSERT_TRUE(RemoveAll(tmp.path() / "dir" / "file").ok());
  EXPECT_FALSE(fs::exists(tmp.path() / "dir" / "file"));
}

// Random names (task folders, lease ids, upload names) come from the kernel: lowercase hex of the
// asked length, and no two alike, from many threads at once (each task runs on a thread of its own).
TEST(RandomHexTest, GivesHexOfTheAskedLengthAndNoTwoAlikeAcrossThreads) {
  EXPECT_EQ(RandomHex(0), "");
  const std::string one = RandomHex(16);
  EXPECT_EQ(one.size(), 32u);
  EXPECT_EQ(one.find_first_not_of("0123456789abcdef"), std::string::npos) << one;
  std::vector<std::vector<std::string>> made(8);
  std::vector<std::thread> threads;
  for (auto& mine : made) {
    threads.emplace_back([&mine] {
      for (int i = 0; i < 200; ++i) mine.push_back(RandomHex(8));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& mine : made) all.insert(mine.begin(), mine.end());
  EXPECT_EQ(all.size(), 8u * 200u);
}

// Every entry once, with its type, over several reads of the descriptor (more names than one
// getdents64 buffer holds), and never "." or "..".
TEST(ListDirectoryTest, ListsEveryEntryWithItsTypeAcrossReads) {
  ScopedTempDir tmp("assay-list");
  std::set<std::string> files;
  for (int i = 0; i < 400; ++i) {
    const std::string name = "a-file-with-a-fairly-long-name-" + std::to_string(i);
    files.insert(name);
    ASSERT_TRUE(WriteFile(tmp.path() / name, "x").ok());
  }
  ASSERT_TRUE(MakeDirs(tmp.path() / "sub").ok());
  fs::create_symlink("sub", tmp.path() / "link");
  const int fd = ::open(tmp.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  auto listed = ListDirectory(fd);
  ::close(fd);
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::set<std::string> seen_files;
  std::set<std::string> others;
  for (const DirectoryEntry& e : *listed) {
    if (e.type == DT_REG) {
      EXPECT_TRUE(seen_files.insert(e.name).second) << e.name << " listed twice";
    } else {
      others.insert(e.name + (e.type == DT_DIR ? "/" : e.type == DT_LNK ? "@" : "?"));
    }
  }
  EXPECT_EQ(seen_files, files);
  EXPECT_EQ(others, (std::set<std::string>{"link@", "sub/"}));
  EXPECT_EQ(listed->size(), files.size() + 2);
}

}  // namespace
}  // namespace assay
