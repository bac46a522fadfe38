// A finished task's log is whole, in order, whatever of its output reached the coordinator live:
// output that came after the task's result (a worker's batch of output still held when the result
// overtook it), output lost between two chunks, and chunks sent twice. A worker that sends no
// offsets keeps its log as it came.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/unit/job_manager_fixture.h"

namespace assay {
namespace {

using assay::v1::LogChunk;

class LiveLogGapsTest : public JobManagerTest {
 protected:
  void Start() {
    session_ = Connect("w");
    job_ = Submit(kOneStep);
    assignment_ = NextAssignment(*session_);
  }
  void Output(LogChunk::Stream stream, int64_t offset, const std::string& data) {
    assay::v1::TaskLog chunk;
    *chunk.mutable_lease() = assignment_.lease();
    chunk.set_stream(stream);
    chunk.set_offset(offset);
    chunk.set_data(data);
    manager_->OnLog("w", chunk);
  }
  // The run ends: its stdout and stderr are stored, then its result comes.
  void Finish(const std::string& out, const std::string& err) {
    ASSERT_TRUE(blobs_->Put(Digest::OfBytes(out), out).ok());
    ASSERT_TRUE(blobs_->Put(Digest::OfBytes(err), err).ok());
    assay::v1::TaskResult result;
    *result.mutable_lease() = assignment_.lease();
    *result.mutable_result()->mutable_stdout_digest() = Digest::OfBytes(out).ToProto();
    *result.mutable_result()->mutable_stderr_digest() = Digest::OfBytes(err).ToProto();
    ASSERT_TRUE(manager_->OnResult("w", result).ok());
  }
  struct Served {
    std::string out, err, text;
  };
  Served Read() {
    Served served;
    JobManager::LogCursor cursor;
    auto read = manager_->ReadLogs(job_, "", &cursor, 1000);
    EXPECT_TRUE(read.ok()) << read.status();
    if (!read.ok()) return served;
    for (const LogChunk& c : read->chunks) {
      served.text += c.data();
      if (c.stream() == LogChunk::STDOUT) served.out += c.data();
      if (c.stream() == LogChunk::STDERR) served.err += c.data();
    }
    return served;
  }

  std::shared_ptr<WorkerSession> session_;
  std::string job_;
  assay::v1::Assignment assignment_;
};

TEST_F(LiveLogGapsTest, AFinishedLogHoldsTheLastLinesThoughTheyReachedTheCoordinatorAfterTheResult) {
  Start();
  const std::string first = "karatos-mini booting\n[blink] tick 0\n";
  const std::string last = "[blink] tick 1\n[blink] tick 2\nKARATOS OK: all tasks done\n";
  Output(LogChunk::STDOUT, 0, first);
  Finish(first + last, "");
  Output(LogChunk::STDOUT, static_cast<int64_t>(first.size()), last);  // late: the task has ended
  Served served = Read();
  EXPECT_EQ(served.out, first + last) << served.text;
  EXPECT_TRUE(absl::StrContains(served.text, first + last)) << "in order, in one piece:\n" << served.text;
  EXPECT_FALSE(absl::StrContains(served.text, "did not reach")) << served.text;
}

TEST_F(LiveLogGapsTest, OutputLostBetweenTwoChunksIsNotedLiveAndServedWholeOnceTheTaskEnds) {
  Start();
  Output(LogChunk::STDOUT, 0, "a\n");
  Output(LogChunk::STDOUT, 4, "c\n");  // "b\n" never came
  Output(LogChunk::STDOUT, 4, "c\n");  // sent twice
  Output(LogChunk::STDERR, 0, "e");
  Served live = Read();
  EXPECT_EQ(live.out, "a\nc\n");
  EXPECT_TRUE(absl::StrContains(live.text, "a\n[assay] 2 bytes of output did not reach the coordinator live here"))
      << live.text;
  Finish("a\nb\nc\nd\n", "ef\n");  // "d\n" and "f\n" never came either
  Served served = Read();
  EXPECT_EQ(served.out, "a\nb\nc\nd\n") << served.text;
  EXPECT_EQ(served.err, "ef\n") << served.text;
  EXPECT_FALSE(absl::StrContains(served.text, "did not reach")) << served.text;
}

TEST_F(LiveLogGapsTest, AWorkerThatSendsNoOffsetsKeepsItsLogAsItCame) {
  Start();
  Output(LogChunk::STDOUT, 0, "a\n");
  Output(LogChunk::STDOUT, 0, "b\n");
  Finish("a\nb\n", "");
  Served served = Read();
  EXPECT_EQ(served.out, "a\nb\n") << served.text;
}

}  // namespace
}  // namespace assay
