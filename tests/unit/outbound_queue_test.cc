// OutboundQueue with a link that can be held: senders never wait on it, heartbeats jump the queue,
// log chunks beyond the bound are dropped and reported in the task's log before its result, a
// step's output is sent in batches (each task's whole and in order, before its result), and a broken
// or closed link refuses further messages.
#include "worker/outbound_queue.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace assay {
namespace {
using assay::v1::WorkerMessage;

// A link whose writes wait until released; it records what was written.
class HeldLink {
 public:
  bool Write(const WorkerMessage& m, bool more) {  // called by the queue's one writer thread
    if (!writing_.HasBeenNotified()) writing_.Notify();
    release_.WaitForNotification();
    absl::MutexLock lock(&mu_);
    written_.push_back(m);
    more_.push_back(more);
    return !broken_;
  }
  // Whether each written message was said to have another right behind it.
  std::vector<bool> more() {
    absl::MutexLock lock(&mu_);
    return more_;
  }
  void Release() { release_.Notify(); }
  void Break() {
    absl::MutexLock lock(&mu_);
    broken_ = true;
  }
  bool WaitWriting() { return writing_.WaitForNotificationWithTimeout(absl::Seconds(10)); }
  // Waits until `n` messages were written.
  std::vector<WorkerMessage> WaitWritten(size_t n) {
    absl::MutexLock lock(&mu_);
    want_ = n;
    mu_.AwaitWithTimeout(absl::Condition(this, &HeldLink::Enough), absl::Seconds(10));
    return written_;
  }

 private:
  bool Enough() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return written_.size() >= want_; }

  absl::Notification writing_, release_;
  absl::Mutex mu_;
  std::vector<WorkerMessage> written_ ABSL_GUARDED_BY(mu_);
  std::vector<bool> more_ ABSL_GUARDED_BY(mu_);
  size_t want_ ABSL_GUARDED_BY(mu_) = 0;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
};

WorkerMessage Log(const std::string& lease, const std::string& data) {
  WorkerMessage m;
  m.mutable_log()->mutable_lease()->set_lease_id(lease);
  m.mutable_log()->set_data(data);
  return m;
}
WorkerMessage Output(const std::string& lease, assay::v1::LogChunk::Stream stream, int64_t offset,
                     const std::string& data, const std::string& preface = "") {
  WorkerMessage m = Log(lease, data);
  m.mutable_log()->set_stream(stream);
  m.mutable_log()->set_offset(offset);
  m.mutable_log()->set_preface(preface);
  return m;
}
WorkerMessage Result(const std::string& lease) {
  WorkerMessage m;
  m.mutable_result()->mutable_lease()->set_lease_id(lease);
  return m;
}
WorkerMessage Beat() {
  WorkerMessage m;
  m.mutable_heartbeat();
  return m;
}

TEST(OutboundQueueTest, SendersNeverWaitOnAHeldLinkAndHeartbeatsGoFirst) {
  HeldLink link;
  OutboundQueue queue([&](const WorkerMessage& m, bool more) { return link.Write(m, more); }, 1 << 20);
  ASSERT_TRUE(queue.Send(Log("L", "first")));
  ASSERT_TRUE(link.WaitWriting()) << "the writer never started";
  // The link is stuck on "first": 10 MiB more of output and a heartbeat are queued at once.
  absl::Notification sent;
  std::thread sender([&] {
    for (int i = 0; i < 160; ++i) queue.Send(Log("L", std::string(64 << 10, 'x')));
    queue.Send(Beat());
    queue.Send(Result("L"));
    sent.Notify();
  });
  EXPECT_TRUE(sent.WaitForNotificationWithTimeout(absl::Seconds(10))) << "a sender waited on the link";
  link.Release();
  sender.join();
  // first (in flight, not queued), the heartbeat, the 16 chunks that fill 1 MiB, the note about the
  // other 144, the result.
  std::vector<WorkerMessage> written = link.WaitWritten(20);
  ASSERT_EQ(written.size(), 20u);
  EXPECT_EQ(written[0].log().data(), "first");
  EXPECT_TRUE(written[1].has_heartbeat()) << "the heartbeat must not wait behind queued output";
  const WorkerMessage& note = written[written.size() - 2];
  ASSERT_TRUE(note.has_log());
  EXPECT_EQ(note.log().stream(), assay::v1::LogChunk::SYSTEM);
  EXPECT_TRUE(absl::StrContains(note.log().data(), "bytes of output were dropped")) << note.log().data();
  EXPECT_TRUE(written.back().has_result()) << "a result is never dropped and follows the task's output";
  // "first" went alone; the rest, queued by then, each with the next right behind it.
  std::vector<bool> more(20, true);
  more.front() = more.back() = false;
  EXPECT_EQ(link.more(), more);
  EXPECT_EQ(queue.dropped_log_bytes(), static_cast<int64_t>(160 - 16) * (64 << 10));
  EXPECT_TRUE(absl::StrContains(note.log().data(), std::to_string(144 * (64 << 10)))) << note.log().data();
}

TEST(OutboundQueueTest, ADropNoteIsALineOfItsOwnNamingTheStdoutAndStderrItStandsForAndTheWorkersLinesAreKept) {
  using assay::v1::LogChunk;
  HeldLink link;
  OutboundQueue queue([&](const WorkerMessage& m, bool more) { return link.Write(m, more); }, 100);
  ASSERT_TRUE(queue.Send(Output("L", LogChunk::STDOUT, 0, "abc")));
  ASSERT_TRUE(link.WaitWriting()) << "the writer never started";
  // "abc" is in flight; 60 bytes fill the queue to 60 of 100, so what follows is dropped.
  queue.Send(Output("L", LogChunk::STDOUT, 3, std::string(60, 'x')));
  queue.Send(Output("L", LogChunk::STDOUT, 63, std::string(60, 'y'), "[assay] inputs: 1 file\n"));
  queue.Send(Output("L", LogChunk::STDERR, 0, std::string(50, 'e')));
  queue.Send(Output("L", LogChunk::STDOUT, 123, std::string(60, 'z')));
  // The worker's own line does not fit either, and is queued all the same.
  queue.Send(Output("L", LogChunk::SYSTEM, 0, "[assay] qemu: passed, 1 expectation(s) met, and more words\n"));
  queue.Send(Result("L"));
  link.Release();
  std::vector<WorkerMessage> written = link.WaitWritten(5);
  ASSERT_EQ(written.size(), 5u);
  EXPECT_EQ(written[1].log().data(), std::string(60, 'x'));
  const assay::v1::TaskLog& note = written[2].log();
  EXPECT_EQ(note.stream(), LogChunk::SYSTEM);
  EXPECT_TRUE(absl::StartsWith(note.data(), "\n[assay] 170 bytes of output were dropped here")) << note.data();
  EXPECT_EQ(note.gap().stdout_offset(), 63);
  EXPECT_EQ(note.gap().stdout_bytes(), 120);
  EXPECT_EQ(note.gap().stderr_offset(), 0);
  EXPECT_EQ(note.gap().stderr_bytes(), 50);
  EXPECT_EQ(note.preface(), "[assay] inputs: 1 file\n") << "a dropped chunk's preface rides with the note";
  EXPECT_EQ(written[3].log().stream(), LogChunk::SYSTEM);
  EXPECT_TRUE(absl::StartsWith(written[3].log().data(), "[assay] qemu: passed"));
  EXPECT_TRUE(written[4].has_result());
}

TEST(OutboundQueueTest, OutputWaitingForItsBatchTimeIsJoinedByTheNextBytesOfItsStreamAndAResultSendsItAtOnce) {
  using assay::v1::LogChunk;
  HeldLink link;
  link.Release();
  // A batch time no test waits for: only the result can have sent what is held.
  OutboundQueue queue([&](const WorkerMessage& m, bool more) { return link.Write(m, more); }, 1 << 20, absl::Hours(1));
  queue.Send(Output("L", LogChunk::STDOUT, 0, "a\n"));
  queue.Send(Output("L", LogChunk::STDOUT, 2, "b\n"));
  queue.Send(Output("L", LogChunk::STDERR, 0, "e\n"));                       // another stream
  queue.Send(Output("L", LogChunk::STDOUT, 4, "c\n"));
  queue.Send(Output("L", LogChunk::STDOUT, 6, "d\n", "[assay] a line\n"));  // a preface of its own
  queue.Send(Output("L", LogChunk::STDOUT, 9, "f\n"));                       // not the next bytes
  queue.Send(Output("M", LogChunk::STDOUT, 11, "g\n"));                      // another task
  queue.Send(Result("L"));
  std::vector<WorkerMessage> written = link.WaitWritten(7);
  ASSERT_EQ(written.size(), 7u);
  EXPECT_EQ(written[0].log().data(), "a\nb\n");
  EXPECT_EQ(written[0].log().offset(), 0);
  EXPECT_EQ(written[1].log().data(), "e\n");
  EXPECT_EQ(written[2].log().data(), "c\n");
  EXPECT_EQ(written[3].log().data(), "d\n");
  EXPECT_EQ(written[3].log().preface(), "[assay] a line\n");
  EXPECT_EQ(written[4].log().data(), "f\n");
  EXPECT_EQ(written[5].log().data(), "g\n");
  EXPECT_TRUE(written[6].has_result()) << "the result follows its task's output";
  // All of it was queued when the result came: each but the last had the next right behind it.
  EXPECT_EQ(link.more(), std::vector<bool>({true, true, true, true, true, true, false}));
}

// An emulator's console: its stdout comes a few characters at a time, and a warning on stderr lands
// in the middle of a line. While the line's start waits, its end joins it: the warning follows the line.
TEST(OutboundQueueTest, ALineCutByTheOtherStreamIsCompletedWhileItsStartWaits) {
  using assay::v1::LogChunk;
  HeldLink link;
  link.Release();
  OutboundQueue queue([&](const WorkerMessage& m, bool more) { return link.Write(m, more); }, 1 << 20, absl::Hours(1));
  queue.Send(Output("L", LogChunk::STDOUT, 0, "tick 1\n[bli"));
  queue.Send(Output("L", LogChunk::STDERR, 0, "Timer with period zero, disabling\n"));
  queue.Send(Output("L", LogChunk::STDOUT, 11, "nk] tick 2\n[rep"));
  queue.Send(Output("L", LogChunk::STDOUT, 26, "ort] sum=45\n"));
  queue.Send(Output("M", LogChunk::STDOUT, 0, "other task: mid-"));
  queue.Send(Output("L", LogChunk::STDERR, 34, "late\n"));
  queue.Send(Output("M", LogChunk::STDOUT, 16, "line\n"));  // another task's output between: not joined
  queue.Send(Result("L"));
  std::vector<WorkerMessage> written = link.WaitWritten(7);
  ASSERT_EQ(written.size(), 7u);
  EXPECT_EQ(written[0].log().data(), "tick 1\n[blink] tick 2\n");
  EXPECT_EQ(written[1].log().data(), "Timer with period zero, disabling\n");
  EXPECT_EQ(written[2].log().data(), "[report] sum=45\n");
  EXPECT_EQ(written[2].log().offset(), 22);
  EXPECT_EQ(written[3].log().data(), "other task: mid-");
  EXPECT_EQ(written[4].log().data(), "late\n");
  EXPECT_EQ(written[5].log().data(), "line\n");
  EXPECT_TRUE(written[6].has_result());
}

TEST(OutboundQueueTest, HeldOutputGoesByItselfOnceItsBatchTimeIsOverOrAtOnceOnAFlush) {
  using assay::v1::LogChunk;
  HeldLink link;
  link.Release();
  {
    OutboundQueue queue([&](const WorkerMessage& m, bool more) { return link.Write(m, more); }, 1 << 20, absl::Milliseconds(20));
    queue.Send(Output("L", LogChunk::STDOUT, 0, "alone\n"));
    std::vector<WorkerMessage> written = link.WaitWritten(1);  // nothing else comes: the time sends it
    ASSERT_EQ(written.size(), 1u);
    EXPECT_EQ(written[0].log().data(), "alone\n");
  }
  OutboundQueue queue([&](const WorkerMessage& m, bool more) { return link.Write(m, more); }, 1 << 20, absl::Hours(1));
  queue.Send(Output("L", LogChunk::STDOUT, 6, "flushed\n"));
  EXPECT_TRUE(queue.Flush(absl::Seconds(10))) << "a flush does not wait for the batch time";
  std::vector<WorkerMessage> written = link.WaitWritten(2);
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[1].log().data(), "flushed\n");
  EXPECT_EQ(link.more(), std::vector<bool>({false, false})) << "nothing followed either at once";
}

// A message is written as having another right behind it (the link then sends both in one go) only
// when that one goes at once: not when it is output held for its batch time.
TEST(OutboundQueueTest, AMessageHasAnotherBehindItOnlyWhenThatOneGoesAtOnce) {
  using assay::v1::LogChunk;
  HeldLink link;
  OutboundQueue queue([&](const WorkerMessage& m, bool more) { return link.Write(m, more); }, 1 << 20, absl::Hours(1));
  ASSERT_TRUE(queue.Send(Result("K")));
  ASSERT_TRUE(link.WaitWriting()) << "the writer never started";
  queue.Send(Result("L"));
  queue.Send(Output("M", LogChunk::STDOUT, 0, "held\n"));  // another task's output, held for its time
  link.Release();
  std::vector<WorkerMessage> written = link.WaitWritten(2);
  ASSERT_EQ(written.size(), 2u);
  EXPECT_TRUE(written[1].has_result());
  EXPECT_EQ(link.more(), std::vector<bool>({false, false}));
}

// Tasks printing at once, with heartbeats between: each task's output reaches the link whole, in
// order, in chunks that follow on from each other, and before its result, whatever the batch time.
TEST(OutboundQueueTest, EachTasksOutputIsWrittenWholeInOrderAndBeforeItsResultWhateverTheBatchTime) {
  using assay::v1::LogChunk;
  for (absl::Duration delay : {absl::ZeroDuration(), absl::Microseconds(200), absl::Milliseconds(5)}) {
    absl::Mutex mu;
    std::vector<WorkerMessage> written;
    int results = 0;
    OutboundQueue queue(
        [&](const WorkerMessage& m, bool) {
          absl::MutexLock lock(&mu);
          written.push_back(m);
          results += m.has_result();
          return true;
        },
        1 << 20, delay);
    constexpr int kTasks = 4, kChunks = 300;
    std::vector<std::thread> tasks;
    for (int t = 0; t < kTasks; ++t) {
      tasks.emplace_back([&queue, t] {
        const std::string lease = "T" + std::to_string(t);
        int64_t offset = 0;
        for (int i = 0; i < kChunks; ++i) {
          const std::string data = std::to_string(i) + "\n";
          queue.Send(Output(lease, LogChunk::STDOUT, offset, data));
          offset += static_cast<int64_t>(data.size());
          if (i % 50 == 0) queue.Send(Beat());
        }
        queue.Send(Result(lease));
      });
    }
    for (std::thread& t : tasks) t.join();
    absl::MutexLock lock(&mu);
    ASSERT_TRUE(mu.AwaitWithTimeout(absl::Condition(
                                        +[](int* n) { return *n == kTasks; }, &results),
                                    absl::Seconds(10)));
    for (int t = 0; t < kTasks; ++t) {
      const std::string lease = "T" + std::to_string(t);
      std::string out, want;
      for (int i = 0; i < kChunks; ++i) want += std::to_string(i) + "\n";
      bool ended = false;
      for (const WorkerMessage& m : written) {
        if (m.has_result() && m.result().lease().lease_id() == lease) ended = true;
        if (!m.has_log() || m.log().lease().lease_id() != lease) continue;
        EXPECT_FALSE(ended) << lease << ": output after its result";
        EXPECT_EQ(m.log().offset(), static_cast<int64_t>(out.size())) << lease;
        out += m.log().data();
      }
      EXPECT_TRUE(ended) << lease;
      EXPECT_EQ(out, want) << lease << " with a batch time of " << delay;
    }
  }
}

TEST(OutboundQueueTest, ABrokenOrClosedLinkRefusesMessages) {
  HeldLink link;
  OutboundQueue queue([&](const WorkerMessage& m, bool more) { return link.Write(m, more); }, 1 << 20);
  link.Break();
  link.Release();
  ASSERT_TRUE(queue.Send(Log("L", "x")));
  link.WaitWritten(1);
  // The writer saw the break: later sends fail (the session is over; the coordinator requeues).
  bool refused = false;
  for (int i = 0; i < 1000 && !refused; ++i) {
    refused = !queue.Send(Result("L"));
    if (!refused) std::this_thread::yield();
  }
  EXPECT_TRUE(refused);
  queue.Close();
  EXPECT_FALSE(queue.Send(Beat()));
}

}  // namespace
}  // namespace assay
