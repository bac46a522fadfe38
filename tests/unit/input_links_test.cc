// InputLinks: a file written for one task becomes this host's copy and is linked, not written, for
// the next; a file in use is never shared (tasks at once get copies of their own, up to kMaxCopies);
// whatever a step did to a linked file (its bytes, its mode, another name left behind) drops the
// copy instead of reaching the next task, whether the file's bytes are read again or its change time
// stands for them; the budget drops the least recently used; nothing of an earlier run is kept.
#include "worker/input_links.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <optional>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/file_util.h"
#include "tests/common/hostile_trees.h"
#include "tests/common/hostile_trees_loader.h"
#include "tests/common/step_start.h"

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
  void Open(int64_t budget, std::optional<bool> restamps = std::nullopt) {
    auto links = InputLinks::Open(top_.path() / "links", budget, restamps);
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
  // The task is over: its folder goes, then its links are checked. Returns how many were dropped.
  int Finish(const fs::path& work, InputLinks::Claims* claims) { return FinishAll(work, claims).dropped; }
  InputLinks::Released FinishAll(const fs::path& work, InputLinks::Claims* claims) {
    links_->NoteUnchanged(claims);
    EXPECT_TRUE(RemoveAll(work).ok());
    return links_->Release(claims);
  }
  // The step starts once the coarse clock is a time-stamp step past its files' links.
  void StartStepLater(InputLinks::Claims* claims) {
    ASSERT_FALSE(claims->files.empty());
    testing::StartStepAfterLinks(*links_, claims);
  }
  // A step writing a file in place, through its link.
  static void WriteInPlace(const fs::path& path, const char* text) {
    FILE* f = std::fopen(path.c_str(), "r+");
    ASSERT_NE(f, nullptr) << path;
    std::fputs(text, f);
    std::fclose(f);
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
  ASSERT_NO_FATAL_FAILURE(WriteInPlace(work / "a.c", "int b;\n"));  // the same size
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

TEST_F(InputLinksTest, AFileTheStepLeftAloneIsKeptByItsChangeTimeWithoutReadingItAgain) {
  EXPECT_EQ(links_->time_step_ns(), 1) << "this test's folder is on a file system with nanosecond times";
  InputLinks::Claims claims;
  Materialize(top_.path() / "t1", &claims);
  StartStepLater(&claims);
  InputLinks::Released first = FinishAll(top_.path() / "t1", &claims);
  EXPECT_EQ(first.unchanged, 2) << "the files written for the task and adopted count as linked too";
  EXPECT_EQ(first.read, 0);

  const fs::path work = top_.path() / "t2";
  ASSERT_EQ(Materialize(work, &claims), 2);
  StartStepLater(&claims);
  ASSERT_EQ(ReadFile(work / "a.c").value_or(""), "int a;\n") << "a step that only reads them";
  InputLinks::Released second = FinishAll(work, &claims);
  EXPECT_EQ(second.unchanged, 2);
  EXPECT_EQ(second.read + second.dropped, 0);
  EXPECT_EQ(Materialize(top_.path() / "t3", &claims), 2) << "both kept for the next task";
  EXPECT_EQ(ReadFile(top_.path() / "t3" / "a.c").value_or(""), "int a;\n");
}

TEST_F(InputLinksTest, AChangeTheStepHidesBehindTheSameSizeTimesAndModeIsStillCaught) {
  InputLinks::Claims claims;
  Materialize(top_.path() / "t1", &claims);
  Finish(top_.path() / "t1", &claims);
  const fs::path work = top_.path() / "t2";
  ASSERT_EQ(Materialize(work, &claims), 2);
  StartStepLater(&claims);
  // Right after the step starts: new bytes of the same size, the old times put back...
  struct stat before {};
  ASSERT_EQ(::stat((work / "a.c").c_str(), &before), 0);
  ASSERT_NO_FATAL_FAILURE(WriteInPlace(work / "a.c", "int b;\n"));  // the same size
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, (work / "a.c").c_str(), times, 0), 0);
  // ...and a mode changed and put back: a change of nothing, found so by reading the bytes.
  ASSERT_EQ(::chmod((work / "run.sh").c_str(), 0700), 0);
  ASSERT_EQ(::chmod((work / "run.sh").c_str(), 0755), 0);
  InputLinks::Released released = FinishAll(work, &claims);
  EXPECT_EQ(released.dropped, 1) << "a.c";
  EXPECT_EQ(released.read, 1) << "run.sh, kept";
  EXPECT_EQ(released.unchanged, 0);
  const fs::path next = top_.path() / "t3";
  EXPECT_EQ(Materialize(next, &claims), 1) << "run.sh linked, a.c written again";
  EXPECT_EQ(ReadFile(next / "a.c").value_or(""), "int a;\n");
  Finish(next, &claims);
}

TEST_F(InputLinksTest, WithCoarseTimeStampsFilesLinkedWithinATimeStepOfTheStepsStartAreReadAgain) {
  Open(1 << 20, /*restamps=*/false);
  InputLinks::Claims claims;
  Materialize(top_.path() / "t1", &claims);
  Finish(top_.path() / "t1", &claims);
  // The step started within one time-stamp step of every link (of the first: the two links may fall
  // on two sides of a tick of the coarse clock): a change could carry a link's time.
  ASSERT_EQ(Materialize(top_.path() / "t2", &claims), 2);
  int64_t first_link = INT64_MAX;
  for (const auto& c : claims.files) first_link = std::min(first_link, c.ctime_ns);
  claims.step_start_ns = first_link + links_->time_step_ns() - 1;
  InputLinks::Released same_step = FinishAll(top_.path() / "t2", &claims);
  EXPECT_EQ(same_step.read, 2);
  EXPECT_EQ(same_step.unchanged, 0);
  // Prepared, then withdrawn before it ran: no start, so nothing is known.
  ASSERT_EQ(Materialize(top_.path() / "t3", &claims), 2);
  InputLinks::Released never_ran = FinishAll(top_.path() / "t3", &claims);
  EXPECT_EQ(never_ran.read, 2);
}

TEST_F(InputLinksTest, AChangeRightAfterTheLinkIsCaughtWhetherTheFileSystemRestampsOrNot) {
  // What this file system does, seen here directly: a mode changed right after a look, 200 times.
  bool restamped = true;
  {
    const fs::path probe = top_.path() / "probe";
    ASSERT_TRUE(WriteFile(probe, "x").ok());
    for (int i = 0; i < 200 && restamped; ++i) {
      struct stat before {}, after {};
      ASSERT_EQ(::stat(probe.c_str(), &before), 0);
      ASSERT_EQ(::chmod(probe.c_str(), i % 2 == 0 ? 0600 : 0644), 0);
      ASSERT_EQ(::stat(probe.c_str(), &after), 0);
      restamped = after.st_ctim.tv_sec != before.st_ctim.tv_sec || after.st_ctim.tv_nsec != before.st_ctim.tv_nsec;
    }
  }
  EXPECT_EQ(links_->restamps(), restamped) << "the worker's probe at Open agrees";
  InputLinks::Claims claims;
  Materialize(top_.path() / "t1", &claims);
  Finish(top_.path() / "t1", &claims);
  const fs::path work = top_.path() / "t2";
  ASSERT_EQ(Materialize(work, &claims), 2);
  InputLinks::StepStarts(&claims);  // at once, within the clock's tick of the links
  ASSERT_NO_FATAL_FAILURE(WriteInPlace(work / "a.c", "int b;\n"));  // at once too, the same size
  InputLinks::Released released = FinishAll(work, &claims);
  EXPECT_EQ(released.dropped, 1) << "a.c, caught either way";
  EXPECT_EQ(released.unchanged + released.read, 1) << "run.sh, kept";
  // Restamping file systems prove run.sh unchanged by its time alone; elsewhere, linked within the
  // clock's tick of the step's start, it is read unless the tick passed meanwhile.
  if (restamped) {
    EXPECT_EQ(released.unchanged, 1) << "run.sh, not read";
  }
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
