// InputLinks::AdoptOutput: a file a sandboxed step left as its output becomes this host's copy, so
// the next step that needs it (the cell's test after its build) links it instead of writing it;
// only a plain file is taken (one link, this user's, mode 0644 or 0755, no extended attributes, its
// bytes the digest); and a task that links it while the output's folder still has it gets its bytes
// read again before another task may have it.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/base/file_util.h"
#include "tests/common/hostile_trees.h"
#include "tests/common/hostile_trees_loader.h"
#include "tests/common/step_start.h"
#include "worker/input_links.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;

constexpr char kMap[] = "cortex-m3 map: 0x08000000 .text\n";

class InputLinksOutputsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto links = InputLinks::Open(top_.path() / "links", 1 << 20, /*restamps=*/true);
    ASSERT_TRUE(links.ok()) << links.status();
    links_ = std::move(*links);
    reapi::Directory out;
    AddFile(&out, "karatos.map", tree_.File(kMap));
    reapi::Directory root;
    AddDir(&root, "out", tree_.Dir(out));
    root_ = tree_.Dir(root);
  }

  // A step's output at `build`/out/karatos.map with `mode`, as the step left it.
  fs::path WriteOutput(const fs::path& build, mode_t mode, const std::string& bytes = kMap) {
    EXPECT_TRUE(MakeDirs(build / "out").ok());
    const fs::path path = build / "out" / "karatos.map";
    EXPECT_TRUE(WriteFile(path, bytes).ok());
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  // Collects it as OutputUploader does: opened, its fstat, then offered with `digest`.
  void Offer(const fs::path& path, const Digest& digest) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    ASSERT_GE(fd, 0) << path;
    ScopedFd file(fd);
    struct stat st {};
    ASSERT_EQ(::fstat(fd, &st), 0);
    links_->AdoptOutput(fd, st, digest);
  }
  Digest MapDigest() { return Digest::OfBytes(kMap); }

  // The next task's inputs (out/karatos.map): true when linked, not written.
  bool LinkInto(const fs::path& work, InputLinks::Claims* claims) {
    EXPECT_TRUE(MakeDirs(work).ok());
    auto writer = TreeWriter::Open(work);
    EXPECT_TRUE(writer.ok());
    auto files = (*writer)->Layout(root_, LoaderOf(tree_.blobs()));
    EXPECT_TRUE(files.ok() && files->size() == 1u);
    return files.ok() && files->size() == 1u && links_->Link(**writer, (*files)[0], claims);
  }
  InputLinks::Released Finish(const fs::path& work, InputLinks::Claims* claims) {
    links_->NoteUnchanged(claims);
    EXPECT_TRUE(RemoveAll(work).ok());
    return links_->Release(claims);
  }
  static ino_t InodeOf(const fs::path& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }

  ScopedTempDir top_{"input-links-outputs"};
  TreeBuilder tree_;
  Digest root_;  // out/karatos.map
  std::unique_ptr<InputLinks> links_;
};

TEST_F(InputLinksOutputsTest, ABuildsOutputIsLinkedIntoTheNextTaskAsTheSameFileNotWrittenAgain) {
  const fs::path build = top_.path() / "build";
  const fs::path output = WriteOutput(build, 0644);
  Offer(output, MapDigest());
  EXPECT_EQ(links_->files(), 1);

  // Its folder gone first (the build's task tidied), then the test links it.
  const ino_t inode = InodeOf(output);
  ASSERT_TRUE(RemoveAll(build).ok());
  InputLinks::Claims claims;
  const fs::path work = top_.path() / "test";
  ASSERT_TRUE(LinkInto(work, &claims));
  EXPECT_EQ(InodeOf(work / "out" / "karatos.map"), inode) << "the build's very file";
  EXPECT_EQ(ReadFile(work / "out" / "karatos.map").value_or(""), kMap);
  StartStepAfterLinks(*links_, &claims);
  const InputLinks::Released released = Finish(work, &claims);
  EXPECT_EQ(released.unchanged, 1) << "left alone by the test: kept by its change time";
  EXPECT_EQ(released.read + released.dropped, 0);
  EXPECT_EQ(links_->files(), 1);
}

TEST_F(InputLinksOutputsTest, ATaskThatLinksItWhileTheBuildsFolderStillHasItHasItsBytesReadAgain) {
  const fs::path build = top_.path() / "build";
  const fs::path output = WriteOutput(build, 0755);
  // Executable: the tree must say so to link it.
  reapi::Directory out;
  AddFile(&out, "karatos.map", tree_.File(kMap), /*executable=*/true);
  reapi::Directory root;
  AddDir(&root, "out", tree_.Dir(out));
  root_ = tree_.Dir(root);
  Offer(output, MapDigest());

  InputLinks::Claims claims;
  const fs::path work = top_.path() / "test";
  ASSERT_TRUE(LinkInto(work, &claims));
  StartStepAfterLinks(*links_, &claims);
  ASSERT_TRUE(RemoveAll(build).ok()) << "the build's folder tidied while the test runs";
  const InputLinks::Released released = Finish(work, &claims);
  EXPECT_EQ(released.unchanged, 0) << "its change time moved with the other name's removal";
  EXPECT_EQ(released.read, 1);
  EXPECT_EQ(released.dropped, 0);
  EXPECT_EQ(links_->files(), 1);
}

TEST_F(InputLinksOutputsTest, OnlyAPlainFileWhoseBytesAreItsDigestIsTaken) {
  // Another name for it (a step could keep one elsewhere in its folder).
  const fs::path linked = WriteOutput(top_.path() / "a", 0644);
  ASSERT_EQ(::link(linked.c_str(), (top_.path() / "a" / "other").c_str()), 0);
  Offer(linked, MapDigest());
  // Modes a written input never has.
  Offer(WriteOutput(top_.path() / "b", 0600), MapDigest());
  Offer(WriteOutput(top_.path() / "c", 0775), MapDigest());
  Offer(WriteOutput(top_.path() / "d", 04755), MapDigest());
  // Bytes that are not the digest's (its size differs).
  Offer(WriteOutput(top_.path() / "e", 0644, "other bytes"), MapDigest());
  EXPECT_EQ(links_->files(), 0);

  // An extended attribute (where the file system has them).
  const fs::path tagged = WriteOutput(top_.path() / "f", 0644);
  if (::setxattr(tagged.c_str(), "user.assay-test", "x", 1, 0) == 0) {
    Offer(tagged, MapDigest());
    EXPECT_EQ(links_->files(), 0);
  }
  InputLinks::Claims claims;
  EXPECT_FALSE(LinkInto(top_.path() / "test", &claims)) << "nothing to link: the test writes its own";
}

TEST_F(InputLinksOutputsTest, AnOutputIsNotCopiedAgainWhileACopyNoTaskHoldsIsThere) {
  Offer(WriteOutput(top_.path() / "a", 0644), MapDigest());
  Offer(WriteOutput(top_.path() / "b", 0644), MapDigest());
  EXPECT_EQ(links_->files(), 1) << "the second build's output is the same bytes: one copy serves";

  // While a task holds that copy, the next build's output becomes a second one.
  InputLinks::Claims claims;
  ASSERT_TRUE(LinkInto(top_.path() / "test", &claims));
  Offer(WriteOutput(top_.path() / "c", 0644), MapDigest());
  EXPECT_EQ(links_->files(), 2);
  InputLinks::Claims second;
  EXPECT_TRUE(LinkInto(top_.path() / "test2", &second)) << "a task at once links the second copy";
}

}  // namespace
}  // namespace assay::testing
