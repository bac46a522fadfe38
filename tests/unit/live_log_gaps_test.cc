// A finished task's log is whole, in order, whatever of its output reached the coordinator live:
// output that came after the task's result (a worker's batch of output still held when the result
// overtook it), output lost between two chunks, and chunks sent twice. A worker that sends no
// offsets keeps its log as it came.
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "tests/common/wait_for.h"
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

// A disk that refuses writes for long: the state's changes wait in memory until it takes them, and
// live output past the bound is not taken (noted as a gap once output is taken again); the finished
// log is still whole.
TEST_F(LiveLogGapsTest, WhileTheDiskRefusesWritesLiveOutputPastTheBoundIsNotKeptAndTheFinishedLogIsWhole) {
  max_kept_bytes_ = 1024;
  Open();
  Start();
  const std::string big = std::string(4096, 'x') + "\n";
  Output(LogChunk::STDOUT, 0, "a\n");
  refuse_writes_ = true;
  Output(LogChunk::STDOUT, 2, big);  // kept: the disk has not refused anything yet
  // The background writer tries the kept output, and again after a pause (by then the first refusal
  // is counted: a write starts only once the one before it is settled).
  ASSERT_TRUE(testing::WaitFor([&] { return refused_writes_.load() >= 2; }, absl::Seconds(10)));
  const int64_t after_big = 2 + static_cast<int64_t>(big.size());
  Output(LogChunk::STDOUT, after_big, "c\n");  // past the bound while the disk refuses: not taken
  refuse_writes_ = false;
  // (not on the fixture's count of writes: the commit settles a write after its writer returns)
  ASSERT_TRUE(testing::WaitFor([&] { return manager_->GetStats().state_bytes_waiting <= 1024; }, absl::Seconds(10)))
      << "the kept changes are written once the disk takes writes";
  Output(LogChunk::STDOUT, after_big + 2, "d\n");
  Served live = Read();
  EXPECT_EQ(live.out, "a\n" + big + "d\n") << "the kept output was written; c was not taken";
  EXPECT_TRUE(absl::StrContains(live.text, "[assay] 2 bytes of output did not reach the coordinator live here")) << live.text;
  Finish("a\n" + big + "c\nd\n", "");
  Served served = Read();
  EXPECT_EQ(served.out, "a\n" + big + "c\nd\n") << served.text;
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
