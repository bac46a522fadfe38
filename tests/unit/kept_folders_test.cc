// KeptFolders: a task's folder kept for the next task gives it exactly its own tree, with the files
// that are the same at the same path left in place (the same inode, neither linked nor removed);
// whatever a step did to the folder (a changed input, junk, a symlink where a directory was, a
// directory's mode or extended attributes) is gone or caught before the next task; a folder beyond
// the capacity goes, and its copies are free for other tasks.
#include "worker/kept_folders.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/file_util.h"
#include "common/cas/memory_blob_store.h"
#include "tests/common/hostile_trees.h"
#include "tests/common/hostile_trees_loader.h"
#include "tests/common/step_start.h"
#include "worker/input_fetcher.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

// What a folder holds, by path: a file's bytes (with " (x)" when executable), "<dir>" or "-> target".
std::map<std::string, std::string> Listing(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const std::string rel = it->path().lexically_relative(root).string();
    if (it->is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      out[rel] = "<dir>";
    } else {
      out[rel] = ReadFile(it->path()).value_or("?") + (::access(it->path().c_str(), X_OK) == 0 ? " (x)" : "");
    }
  }
  return out;
}

ino_t InodeOf(const fs::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

class KeptFoldersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    links_ = InputLinks::Open(top_.path() / "links", 1 << 20).value();
    spares_ = SpareDirectories::Open(top_.path() / "spares", 64).value();
    kept_ = std::make_unique<KeptFolders>(links_.get(), spares_.get(), 1);
    fetcher_.set_links(links_.get());
    fetcher_.set_kept_folders(kept_.get());
  }

  // A tree of files (path -> bytes; a name ending in "*" is executable) and symlinks ("path" ->
  // "-> target"), as the coordinator sends it.
  Digest Tree(const std::map<std::string, std::string>& entries) {
    std::function<Digest(const std::string&)> dir = [&](const std::string& prefix) {
      reapi::Directory d;
      std::map<std::string, bool> subdirs;
      for (const auto& [path, bytes] : entries) {
        if (path.rfind(prefix, 0) != 0) continue;
        std::string rest = path.substr(prefix.size());
        if (const size_t slash = rest.find('/'); slash != std::string::npos) {
          subdirs[rest.substr(0, slash)] = true;
          continue;
        }
        if (bytes.rfind("-> ", 0) == 0) {
          AddLink(&d, rest, bytes.substr(3));
          continue;
        }
        const bool executable = !rest.empty() && rest.back() == '*';
        if (executable) rest.pop_back();
        const Digest digest = tree_.File(bytes);
        EXPECT_TRUE(cache_.Put(digest, bytes).ok());
        AddFile(&d, rest, digest, executable);
      }
      for (const auto& [name, unused] : subdirs) AddDir(&d, name, dir(prefix + name + "/"));
      directories_.push_back(d);
      return tree_.Dir(d);
    };
    return dir("");
  }

  // One task: its folder (a kept one when there is one), its inputs, its step once the kernel's
  // coarse clock is a time-stamp step past its links (polled with a deadline), then its folder kept.
  InputFetcher::Stats Task(const std::string& name, const Digest& root,
                           const std::function<void(const fs::path& work)>& step = nullptr) {
    const fs::path task_dir = top_.path() / name;
    std::optional<KeptFolders::Folder> kept = kept_->Take(task_dir);
    if (!kept.has_value()) {
      EXPECT_TRUE(MakeDirs(task_dir / KeptFolders::kWorkDir).ok());
    }
    InputLinks::Claims claims;
    auto stats = fetcher_.Materialize(root, task_dir / KeptFolders::kWorkDir, &directories_, &claims, spares_.get(),
                                      kept.has_value() ? &*kept : nullptr);
    EXPECT_TRUE(stats.ok()) << stats.status();
    last_listing_ = Listing(task_dir / KeptFolders::kWorkDir);
    last_inodes_.clear();
    for (const auto& [path, what] : last_listing_) last_inodes_[path] = InodeOf(task_dir / KeptFolders::kWorkDir / path);
    StartStep(&claims);
    if (step) step(task_dir / KeptFolders::kWorkDir);
    ::mkdir((task_dir / "tmp").c_str(), 0755);  // the step's TMPDIR and logs, beside work/
    EXPECT_TRUE(WriteFile(task_dir / "stdout", "log").ok());
    released_ = kept_->Keep(task_dir, &claims);
    EXPECT_TRUE(claims.files.empty());
    return stats.value_or(InputFetcher::Stats{});
  }

  void StartStep(InputLinks::Claims* claims) { testing::StartStepAfterLinks(*links_, claims); }

  ScopedTempDir top_{"kept-folders"};
  TreeBuilder tree_;
  std::vector<reapi::Directory> directories_;
  MemoryBlobStore cache_;
  InputFetcher fetcher_{nullptr, &cache_, TreeLimits{}};
  std::unique_ptr<InputLinks> links_;
  std::unique_ptr<SpareDirectories> spares_;
  std::unique_ptr<KeptFolders> kept_;
  std::map<std::string, std::string> last_listing_;  // the last task's work/ as its step found it
  std::map<std::string, ino_t> last_inodes_;
  InputLinks::Released released_;  // by the last Keep
};

TEST_F(KeptFoldersTest, TheNextTaskFindsExactlyItsTreeWithWhatIsTheSameLeftInPlace) {
  const std::map<std::string, std::string> a = {
      {"Makefile", "all:\n"}, {"src/a.c", "int a;\n"}, {"src/b.c", "int b;\n"}, {"arch/m3/start.c", "m3\n"}};
  const Digest tree_a = Tree(a);
  auto build = [](const fs::path& work) {
    ASSERT_TRUE(MakeDirs(work / "out" / "deep").ok());
    ASSERT_TRUE(WriteFile(work / "out" / "deep" / "a.o", "object").ok());
  };
  EXPECT_EQ(Task("t1", tree_a, build).kept, 0) << "nothing kept yet";
  EXPECT_EQ(kept_->size(), 1u);
  EXPECT_EQ(released_.unchanged + released_.read + released_.dropped, 0) << "every file stays with the folder";

  const std::map<std::string, ino_t> first = last_inodes_;
  InputFetcher::Stats again = Task("t2", tree_a, build);
  EXPECT_EQ(again.kept, 4);
  EXPECT_EQ(again.linked, 4);
  EXPECT_EQ(last_listing_, (std::map<std::string, std::string>{{"Makefile", "all:\n"},
                                                               {"arch", "<dir>"},
                                                               {"arch/m3", "<dir>"},
                                                               {"arch/m3/start.c", "m3\n"},
                                                               {"src", "<dir>"},
                                                               {"src/a.c", "int a;\n"},
                                                               {"src/b.c", "int b;\n"}}))
      << "the last task's outputs, logs and temporary files are gone";
  EXPECT_EQ(last_inodes_, first) << "the same files and directories, left in place";
  EXPECT_FALSE(fs::exists(top_.path() / "t1")) << "the folder moved to the task that took it";

  // A tree that differs: a changed file, a mode changed, a directory gone, a new one, a symlink.
  const Digest tree_b = Tree({{"Makefile*", "all:\n"},
                              {"src/a.c", "int a;\n"},
                              {"src/b.c", "int b = 2;\n"},
                              {"arch/rv/start.S", "rv\n"},
                              {"src/link", "-> a.c"}});
  InputFetcher::Stats b = Task("t3", tree_b);
  EXPECT_EQ(b.kept, 1) << "src/a.c";
  EXPECT_EQ(last_inodes_["src/a.c"], first.at("src/a.c"));
  EXPECT_EQ(last_listing_, (std::map<std::string, std::string>{{"Makefile", "all:\n (x)"},
                                                               {"arch", "<dir>"},
                                                               {"arch/rv", "<dir>"},
                                                               {"arch/rv/start.S", "rv\n"},
                                                               {"src", "<dir>"},
                                                               {"src/a.c", "int a;\n"},
                                                               {"src/b.c", "int b = 2;\n"},
                                                               {"src/link", "-> a.c"}}));
  EXPECT_EQ(b.released.dropped, 0);
  EXPECT_EQ(b.released.unchanged, 3) << "Makefile, src/b.c and arch/m3/start.c were not wanted: released unread";
}

TEST_F(KeptFoldersTest, WhateverTheStepDidToTheFolderIsGoneOrCaughtBeforeTheNextTask) {
  const std::map<std::string, std::string> a = {{"Makefile", "all:\n"},
                                                {"src/a.c", "int a;\n"},
                                                {"src/b.c", "int b;\n"},
                                                {"docs/readme", "read me\n"},
                                                {"arch/m3/start.c", "m3\n"}};
  const Digest tree_a = Tree(a);
  const fs::path outside = top_.path() / "outside";
  ASSERT_TRUE(MakeDirs(outside).ok());
  ASSERT_TRUE(WriteFile(outside / "keep.txt", "not the folder's").ok());
  Task("t1", tree_a);
  Task("t2", tree_a, [&](const fs::path& work) {
    FILE* f = std::fopen((work / "src" / "a.c").c_str(), "a");  // an input changed in place
    ASSERT_NE(f, nullptr);
    std::fputs("int changed;\n", f);
    std::fclose(f);
    ASSERT_TRUE(fs::remove(work / "src" / "b.c"));  // one deleted
    ASSERT_TRUE(WriteFile(work / "junk.txt", "junk").ok());
    ASSERT_EQ(::mkfifo((work / "fifo").c_str(), 0644), 0);
    ASSERT_EQ(::symlink("Makefile", (work / "src" / "m").c_str()), 0);
    fs::remove_all(work / "arch");  // a directory replaced by a symlink out of the folder
    ASSERT_EQ(::symlink(outside.c_str(), (work / "arch").c_str()), 0);
    ASSERT_EQ(::chmod((work / "src").c_str(), 0700), 0);  // a directory's mode
    ASSERT_EQ(::setxattr((work / "docs").c_str(), "user.mark", "x", 1, 0), 0);  // one with an attribute
  });
  EXPECT_GE(released_.dropped, 1) << "src/a.c";
  InputFetcher::Stats next = Task("t3", tree_a);
  std::map<std::string, std::string> want = {{"arch", "<dir>"}, {"arch/m3", "<dir>"}, {"src", "<dir>"}, {"docs", "<dir>"}};
  want.insert(a.begin(), a.end());
  EXPECT_EQ(last_listing_, want) << "exactly the tree";
  EXPECT_EQ(next.kept, 1) << "the Makefile only: everything else was changed, removed, or in a directory not kept";
  struct stat st {};
  ASSERT_EQ(::stat((top_.path() / "t3" / "work" / "src").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  EXPECT_EQ(::getxattr((top_.path() / "t3" / "work" / "docs").c_str(), "user.mark", nullptr, 0), -1);
  EXPECT_EQ(ReadFile(outside / "keep.txt").value_or(""), "not the folder's") << "nothing removed through the symlink";
  EXPECT_EQ(Listing(outside).size(), 1u);
}

TEST_F(KeptFoldersTest, AFolderBeyondTheCapacityIsRemovedAndItsCopiesAreFreeForOtherTasks) {
  const Digest tree = Tree({{"a.c", "int a;\n"}});
  Task("t1", tree);  // writes a.c and keeps it as the host's copy, held by the kept folder
  // Another task, in a folder of its own, kept too: beyond the capacity of 1.
  InputLinks::Claims claims;
  ASSERT_TRUE(MakeDirs(top_.path() / "other" / "work").ok());
  auto other = fetcher_.Materialize(tree, top_.path() / "other" / "work", &directories_, &claims, spares_.get());
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->linked, 0) << "the only copy is the kept folder's: written again";
  StartStep(&claims);
  kept_->Keep(top_.path() / "other", &claims);
  EXPECT_EQ(kept_->size(), 1u);
  EXPECT_FALSE(fs::exists(top_.path() / "t1")) << "the oldest folder went";
  EXPECT_TRUE(fs::exists(top_.path() / "other" / "work" / "a.c"));
  // Its copy is free again: a task without a kept folder links it.
  InputLinks::Claims third;
  ASSERT_TRUE(MakeDirs(top_.path() / "third" / "work").ok());
  auto linked = fetcher_.Materialize(tree, top_.path() / "third" / "work", &directories_, &third, spares_.get());
  ASSERT_TRUE(linked.ok()) << linked.status();
  EXPECT_EQ(linked->linked, 1);
  EXPECT_EQ(linked->kept, 0);
}

TEST_F(KeptFoldersTest, ATaskTakesTheKeptFolderMostLikeItsTree) {
  kept_ = std::make_unique<KeptFolders>(links_.get(), spares_.get(), 2);
  fetcher_.set_kept_folders(kept_.get());
  const std::map<std::string, std::string> build = {{"Makefile", "all:\n"}, {"src/a.c", "int a;\n"}};
  std::map<std::string, std::string> test = build;
  test["out/a.o"] = "object";
  test["out/a.elf"] = "elf";
  const Digest build_tree = Tree(build);
  const Digest test_tree = Tree(test);
  // A build and a test at once, each in a folder of its own; the build ends last.
  auto prepare = [&](const std::string& name, const Digest& root, InputLinks::Claims* claims) {
    ASSERT_TRUE(MakeDirs(top_.path() / name / "work").ok());
    auto stats = fetcher_.Materialize(root, top_.path() / name / "work", &directories_, claims, spares_.get());
    ASSERT_TRUE(stats.ok()) << stats.status();
    StartStep(claims);
  };
  InputLinks::Claims build_claims, test_claims;
  prepare("b2", build_tree, &build_claims);
  prepare("t1", test_tree, &test_claims);
  kept_->Keep(top_.path() / "t1", &test_claims);
  kept_->Keep(top_.path() / "b2", &build_claims);
  EXPECT_EQ(kept_->size(), 2u);
  // The newest folder is b2's; a test takes t1's, which has all its files.
  const KeptFolders::Plan plan = KeptFolders::PlanOf(test_tree, LoaderOf(tree_.blobs()), TreeLimits{}).value();
  std::optional<KeptFolders::Folder> taken = kept_->Take(top_.path() / "t2", &plan);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->files.size(), 4u) << "t1's folder";
  EXPECT_TRUE(taken->files.contains("out/a.elf"));
  // A tree none of them has a file of takes none: the build's folder stays for the next build.
  const KeptFolders::Plan other = KeptFolders::PlanOf(Tree({{"elsewhere.c", "int e;\n"}}), LoaderOf(tree_.blobs()), TreeLimits{}).value();
  EXPECT_FALSE(kept_->Take(top_.path() / "x1", &other).has_value());
  EXPECT_EQ(kept_->size(), 1u);
  // Without a plan: the newest.
  std::optional<KeptFolders::Folder> newest = kept_->Take(top_.path() / "b3");
  ASSERT_TRUE(newest.has_value());
  EXPECT_EQ(newest->files.size(), 2u) << "b2's folder";
  EXPECT_FALSE(fs::exists(top_.path() / "b2"));
  EXPECT_TRUE(fs::exists(top_.path() / "b3" / "work" / "src" / "a.c"));
  for (auto* folder : {&*taken, &*newest}) {  // handed back, as a task would once done
    InputLinks::Claims claims;
    for (auto& [path, claim] : folder->files) claims.files.push_back(claim);
    kept_->Keep(folder->task_dir, &claims);
  }
}

TEST_F(KeptFoldersTest, APlanOfATreeThatNamesADirectoryOverAndOverIsRefusedNotWalked) {
  // 2^40 paths from 41 small directories: the assignment's tree is read before it is validated.
  reapi::Directory d;
  AddFile(&d, "f", tree_.File("x"));
  Digest dir = tree_.Dir(d);
  for (int i = 0; i < 40; ++i) {
    reapi::Directory twice;
    AddDir(&twice, "a", dir);
    AddDir(&twice, "b", dir);
    dir = tree_.Dir(twice);
  }
  TreeLimits limits;
  limits.max_entries = 10'000;
  auto plan = KeptFolders::PlanOf(dir, LoaderOf(tree_.blobs()), limits);
  ASSERT_FALSE(plan.ok());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << plan.status();
  limits.max_depth = 10;
  limits.max_entries = 1'000'000;
  EXPECT_FALSE(KeptFolders::PlanOf(dir, LoaderOf(tree_.blobs()), limits).ok()) << "41 deep";
}

TEST_F(KeptFoldersTest, ATaskThatNeverRanKeepsItsDirectoriesButNoFile) {
  const Digest tree = Tree({{"src/a.c", "int a;\n"}});
  Task("t1", tree);
  const fs::path task_dir = top_.path() / "t2";
  std::optional<KeptFolders::Folder> kept = kept_->Take(task_dir);
  ASSERT_TRUE(kept.has_value());
  InputLinks::Claims claims;
  auto stats = fetcher_.Materialize(tree, task_dir / "work", &directories_, &claims, spares_.get(), &*kept);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->kept, 1);
  // Withdrawn before it started: nothing proves its file unchanged, so it is read and released.
  InputLinks::Released released = kept_->Keep(task_dir, &claims);
  EXPECT_EQ(released.read, 1);
  EXPECT_EQ(kept_->size(), 1u);
  InputFetcher::Stats next = Task("t3", tree);
  EXPECT_EQ(next.kept, 0);
  EXPECT_EQ(next.linked, 1) << "linked again into the kept directories";
  EXPECT_EQ(Listing(top_.path() / "t3" / "work").size(), 2u);
}

}  // namespace
}  // namespace assay::testing
