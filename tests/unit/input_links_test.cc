// InputLinks: a file written for one task becomes this host's copy and is linked, not written, for
// the next; a file in use is never shared (tasks at once get copies of their own, up to kMaxCopies);
// whatever a step did to a linked file (its bytes, its mode, another name left behind) drops the
// copy instead of reaching the next task; the budget drops the least recently used; nothing of an
// earlier run is kept.
#include "worker/input_links.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "tests/common/hostile_trees.h"
#include "tests/common/hostile_trees_loader.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

class InputLinksTest : public ::testing::Test {
 protected:
  void SetUp() override {
    reapi::Directory root;
    AddFile(&root, "a.c", tree_.File("int a;\n"));
    AddFile(&root, "run.sh", tree_.File("#!/bin/sh\necho hi\n"), /*executable=*/true);
    root_ = tree_.Dir(root);
    reapi::Directory script;
    AddFile(&script, "run.sh", tree_.File("#!/bin/sh\necho hi\n"), /*executable=*/true);
    script_root_ = tree_.Dir(script);
    Open(1 << 20);
  }
  void Open(int64_t budget) {
    auto links = InputLinks::Open(top_.path() / "links", budget);
    ASSERT_TRUE(links.ok()) << links.status();
    links_ = std::move(*links);
  }

  // One task's inputs, as InputFetcher::Materialize writes them: linked where it can, else written and adopted.
  // Returns how many were linked.
  int Materialize(const fs::path& work, InputLinks::Claims* claims) { return Materialize(work, root_, claims); }
  int Materialize(const fs::path& work, const Digest& root, InputLinks::Claims* claims) {
    EXPECT_TRUE(MakeDirs(work).ok());
    auto writer = TreeWriter::Open(work);
    EXPECT_TRUE(writer.ok());
    auto files = (*writer)->Layout(root, LoaderOf(tree_.blobs()));
    EXPECT_TRUE(files.ok());
    // Links first, then the rest written and adopted.
    std::vector<bool> done(files->size());
    int linked = 0;
    for (size_t i = 0; i < files->size(); ++i) linked += done[i] = links_->Link(**writer, (*files)[i], claims);
    for (size_t i = 0; i < files->size(); ++i) {
      if (done[i]) continue;
      const TreeWriter::File& f = (*files)[i];
      auto out = (*writer)->CreateFile(f);
      EXPECT_TRUE(out.ok()) << out.status();
      EXPECT_TRUE(out->Append(tree_.blobs().at(f.digest)).ok());
      EXPECT_TRUE(out->Commit().ok());
      links_->Adopt(**writer, f, claims);
    }
    return linked;
  }
  // The task is over: its folder goes, then its links are checked.
  int Finish(const fs::path& work, InputLinks::Claims* claims) {
    EXPECT_TRUE(RemoveAll(work).ok());
    return links_->Release(claims);
  }
  static nlink_t Links(const fs::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_nlink : 0;
  }

  ScopedTempDir top_{"input-links"};
  TreeBuilder tree_;
  Digest root_;         // a.c (7 bytes) and run.sh (18 bytes, executable)
  Digest script_root_;  // run.sh alone
  std::unique_ptr<InputLinks> links_;
};

TEST_F(InputLinksTest, TheNextTaskGetsLinksToTheFilesTheFirstOneWroteWithTheirBytesAndModes) {
  InputLinks::Claims first;
  EXPECT_EQ(Materialize(top_.path() / "t1", &first), 0) << "nothing to link yet";
  EXPECT_EQ(links_->files(), 2);
  EXPECT_EQ(Finish(top_.path() / "t1", &first), 0);

  InputLinks::Claims second;
  const fs::path work = top_.path() / "t2";
  EXPECT_EQ(Materialize(work, &second), 2);
  EXPECT_EQ(ReadFile(work / "a.c").value_or(""), "int a;\n");
  EXPECT_EQ(ReadFile(work / "run.sh").value_or(""), "#!/bin/sh\necho hi\n");
  EXPECT_EQ(Links(work / "a.c"), 2u) << "one file, two names";
  EXPECT_EQ(::access((work / "run.sh").c_str(), X_OK), 0) << "the executable bit is kept";
  EXPECT_NE(::access((work / "a.c").c_str(), X_OK), 0);

  InputLinks::Claims third;  // at the same time: the files are in use, so it writes its own...
  EXPECT_EQ(Materialize(top_.path() / "t3", &third), 0);
  EXPECT_EQ(Links(top_.path() / "t3" / "a.c"), 2u) << "...which become the host's second copies";
  EXPECT_EQ(links_->files(), 4);
  EXPECT_EQ(Finish(work, &second), 0);
  EXPECT_EQ(Finish(top_.path() / "t3", &third), 0);
}

TEST_F(InputLinksTest, TasksThatOverlapEachLinkACopyOfTheirOwnUpToTheCopiesKept) {
  // Each task of a first round at once writes its files and keeps them as one more copy.
  std::vector<InputLinks::Claims> claims(InputLinks::kMaxCopies + 1);
  for (size_t t = 0; t < claims.size(); ++t) {
    EXPECT_EQ(Materialize(top_.path() / absl::StrCat("a", t), &claims[t]), 0);
  }
  EXPECT_EQ(links_->files(), 2 * InputLinks::kMaxCopies) << "the task beyond kMaxCopies keeps no copy";
  for (size_t t = 0; t < claims.size(); ++t) EXPECT_EQ(Finish(top_.path() / absl::StrCat("a", t), &claims[t]), 0);

  // A second round at once: every task but the last links a copy no other task holds.
  for (size_t t = 0; t < claims.size(); ++t) {
    const fs::path work = top_.path() / absl::StrCat("b", t);
    const bool linked = t < static_cast<size_t>(InputLinks::kMaxCopies);
    EXPECT_EQ(Materialize(work, &claims[t]), linked ? 2 : 0) << "task " << t;
    EXPECT_EQ(Links(work / "a.c"), linked ? 2u : 1u) << "task " << t << ": a copy of its own, never another's";
    EXPECT_EQ(ReadFile(work / "a.c").value_or(""), "int a;\n");
  }
  for (size_t t = 0; t < claims.size(); ++t) EXPECT_EQ(Finish(top_.path() / absl::StrCat("b", t), &claims[t]), 0);
  EXPECT_EQ(links_->files(), 2 * InputLinks::kMaxCopies);
}

TEST_F(InputLinksTest, AFileTheStepChangedOrLinkedElsewhereIsDroppedAndNeverReachesTheNextTask) {
  InputLinks::Claims claims;
  Materialize(top_.path() / "t1", &claims);
  Finish(top_.path() / "t1", &claims);

  // Its bytes, written in place through the link.
  const fs::path work = top_.path() / "t2";
  ASSERT_EQ(Materialize(work, &claims), 2);
  {
    FILE* f = std::fopen((work / "a.c").c_str(), "r+");
    ASSERT_NE(f, nullptr);
    std::fputs("int b;\n", f);
    std::fclose(f);
  }
  // The other one's mode.
  ASSERT_EQ(::chmod((work / "run.sh").c_str(), 0777), 0);
  EXPECT_EQ(Finish(work, &claims), 2);
  EXPECT_EQ(links_->files(), 0);

  // The next task writes its own, correct copies; one more name outside is also caught.
  const fs::path next = top_.path() / "t3";
  EXPECT_EQ(Materialize(next, &claims), 0);
  EXPECT_EQ(ReadFile(next / "a.c").value_or(""), "int a;\n");
  ASSERT_EQ(::link((next / "a.c").c_str(), (top_.path() / "kept-name").c_str()), 0);
  EXPECT_EQ(Finish(next, &claims), 1) << "a.c still has a name outside the task's folder";
  EXPECT_EQ(links_->files(), 1);
}

TEST_F(InputLinksTest, TheBudgetDropsTheLeastRecentlyUsedFileNoTaskHoldsAndANewRunStartsEmpty) {
  Open(20);  // room for a.c (7 bytes) or run.sh (18), not both
  InputLinks::Claims claims;
  Materialize(top_.path() / "t1", &claims);
  EXPECT_EQ(links_->files(), 1) << "a.c is kept; run.sh finds no room while a.c is in use";
  EXPECT_EQ(links_->bytes(), 7);
  Finish(top_.path() / "t1", &claims);

  Materialize(top_.path() / "t2", script_root_, &claims);  // run.sh alone: a.c, unused, makes room
  EXPECT_EQ(links_->files(), 1);
  EXPECT_EQ(links_->bytes(), 18);
  EXPECT_EQ(Finish(top_.path() / "t2", &claims), 0);
  EXPECT_EQ(links_->files(), 1);
  EXPECT_EQ(Materialize(top_.path() / "t3", &claims), 1) << "run.sh is linked, a.c was dropped";
  Finish(top_.path() / "t3", &claims);

  Open(1 << 20);
  EXPECT_EQ(links_->files(), 0) << "nothing of an earlier run is kept";
  EXPECT_EQ(Materialize(top_.path() / "t4", &claims), 0);
}

}  // namespace
}  // namespace assay::testing
