// FillGap: a finished task's note of dropped output becomes those bytes of its stored stdout and
// stderr (stdout first, in pieces of at most 1 MiB); when they cannot be read, the note stays.
#include "coordinator/complete_log.h"

#include <gtest/gtest.h>

#include "common/cas/memory_blob_store.h"

namespace assay {
namespace {
using assay::v1::LogChunk;

class CompleteLogTest : public ::testing::Test {
 protected:
  CompleteLogTest() {
    for (int i = 0; stdout_.size() < (3u << 20); ++i) stdout_ += std::to_string(i) + "\n";
    output_.attempt = 2;
    output_.stdout_digest = Digest::OfBytes(stdout_).ToProto();
    output_.stderr_digest = Digest::OfBytes(stderr_).ToProto();
    EXPECT_TRUE(blobs_.Put(Digest::OfBytes(stdout_), stdout_).ok());
    EXPECT_TRUE(blobs_.Put(Digest::OfBytes(stderr_), stderr_).ok());
    note_.set_task_id("cell/build");
    note_.set_stream(LogChunk::SYSTEM);
    note_.set_seq(7);
    note_.set_attempt(2);
    note_.set_time_ms(1234);
    note_.set_data("\n[assay] 123 bytes of output were dropped here\n");
  }

  MemoryBlobStore blobs_;
  std::string stdout_;
  std::string stderr_ = "warning: one\nwarning: two\n";
  FinishedOutput output_;
  LogChunk note_;
};

TEST_F(CompleteLogTest, ANoteBecomesTheStdoutThenTheStderrBytesItStandsFor) {
  note_.mutable_gap()->set_stdout_offset(1000);
  note_.mutable_gap()->set_stdout_bytes((5 << 19) + 3);  // 2.5 MiB and 3 bytes: three pieces
  note_.mutable_gap()->set_stderr_offset(13);
  note_.mutable_gap()->set_stderr_bytes(13);
  std::vector<LogChunk> chunks = FillGap(blobs_, output_, note_);
  ASSERT_EQ(chunks.size(), 4u);
  std::string out;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(chunks[i].stream(), LogChunk::STDOUT);
    EXPECT_LE(chunks[i].data().size(), static_cast<size_t>(kLogPieceBytes));
    EXPECT_EQ(chunks[i].task_id(), "cell/build");
    EXPECT_EQ(chunks[i].seq(), 7u);
    EXPECT_EQ(chunks[i].attempt(), 2);
    EXPECT_FALSE(chunks[i].has_gap());
    out += chunks[i].data();
  }
  EXPECT_EQ(out, stdout_.substr(1000, (5 << 19) + 3));
  EXPECT_EQ(chunks[3].stream(), LogChunk::STDERR);
  EXPECT_EQ(chunks[3].data(), "warning: two\n");
}

TEST_F(CompleteLogTest, WhenTheStoredOutputIsGoneOrTooShortTheNoteStays) {
  note_.mutable_gap()->set_stdout_offset(0);
  note_.mutable_gap()->set_stdout_bytes(static_cast<int64_t>(stdout_.size()) + 1);
  std::vector<LogChunk> beyond = FillGap(blobs_, output_, note_);
  ASSERT_EQ(beyond.size(), 1u);
  EXPECT_EQ(beyond[0].data(), note_.data());

  note_.mutable_gap()->set_stdout_bytes(10);
  FinishedOutput evicted = output_;
  evicted.stdout_digest = Digest::OfBytes("not stored").ToProto();
  std::vector<LogChunk> gone = FillGap(blobs_, evicted, note_);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0].data(), note_.data());
}

}  // namespace
}  // namespace assay
