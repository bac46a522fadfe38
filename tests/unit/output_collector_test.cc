// CollectOutputs on a real work directory: files and folders are collected, symlinks inside stay
// symlinks, symlinks out (absolute, climbing, or a folder on the way) are refused, and depth is bounded.
// Small files are read once, into memory, and what is inlined and measured are those bytes.
#include "worker/output_collector.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "common/tree/safe_fs.h"
#include "worker/output_sizes.h"

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

TEST_F(OutputCollectorTest, SmallFilesAreReadIntoMemoryOnceAndLargeOnesAreReadAgainWhenSent) {
  const std::string big(kInMemoryFileBytes + 1, 'b');
  Write("out/big.bin", big);
  Write("out/empty", "");
  Write("out/small.txt", "hello");
  auto out = Collect({"out/"});
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->uploads.size(), 3u);
  const TreeBlob& large = out->uploads[0];
  EXPECT_EQ(large.file, "out/big.bin");
  EXPECT_EQ(large.digest, Digest::OfBytes(big));
  for (const TreeBlob* in_memory : {&out->uploads[1], &out->uploads[2]}) {
    EXPECT_TRUE(in_memory->file.empty()) << "a small file is sent from the bytes it was hashed from";
    EXPECT_EQ(in_memory->digest, Digest::OfBytes(in_memory->data));
  }
  EXPECT_EQ(out->uploads[2].data, "hello");

  // The small file's bytes travel even once it is gone; the large one is read again and checked, so
  // once changed it is not inlined but left to the upload (which checks it too).
  fs::remove(dir_.path() / "out/small.txt");
  Write("out/big.bin", std::string(big.size(), 'c'));
  google::protobuf::RepeatedPtrField<reapi::BatchUpdateBlobsRequest::Request> inlined;
  const std::vector<TreeBlob> left = InlineSmallBlobs(out->uploads, 2 * kInMemoryFileBytes, 1 << 20, &inlined);
  ASSERT_EQ(inlined.size(), 1);
  EXPECT_EQ(inlined[0].data(), "hello");
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].file, "out/big.bin");
}

TEST_F(OutputCollectorTest, OutputSizesAreMeasuredFromTheCollectedBytesAndLargeFilesFromDisk) {
  Write("src/one.c", "int one(void) { return 1; }\n");
  const fs::path object = dir_.path() / "out/one.o";
  ASSERT_TRUE(MakeDirs(object.parent_path()).ok());
  const std::string cc = "cc -c -o " + object.string() + " " + (dir_.path() / "src/one.c").string();
  ASSERT_EQ(std::system(cc.c_str()), 0) << cc;
  // A program larger than kInMemoryFileBytes and smaller than kMaxElfBytes (a sanitized test binary
  // is not): measured from disk.
  const fs::path program = "/usr/bin/ls";
  ASSERT_GT(fs::file_size(program), static_cast<uintmax_t>(kInMemoryFileBytes));
  fs::copy_file(program, dir_.path() / "out/program");
  Write("out/notes.txt", std::string(100, 'n'));
  auto out = Collect({"out/"});
  ASSERT_TRUE(out.ok()) << out.status();
  fs::remove(object);  // measured from the bytes collected: what the digest says, whatever happens after

  auto work = OpenDirectory(dir_.path());
  ASSERT_TRUE(work.ok());
  const assay::v1::OutputSizes sizes = MeasureOutputs(work->get(), out->files, out->uploads);
  ASSERT_EQ(sizes.files_size(), 3);
  EXPECT_EQ(sizes.files(0).path(), "out/notes.txt");
  EXPECT_EQ(sizes.files(0).file(), 100);
  EXPECT_FALSE(sizes.files(0).elf());
  EXPECT_EQ(sizes.files(1).path(), "out/one.o");
  EXPECT_TRUE(sizes.files(1).elf());
  EXPECT_EQ(sizes.files(1).elf_type(), 1);  // relocatable
  EXPECT_GT(sizes.files(1).text(), 0);
  EXPECT_EQ(sizes.files(2).path(), "out/program");
  EXPECT_EQ(sizes.files(2).file(), static_cast<int64_t>(fs::file_size(program)));
  EXPECT_TRUE(sizes.files(2).elf());
  EXPECT_GT(sizes.files(2).data(), 0);
}

}  // namespace
}  // namespace assay
