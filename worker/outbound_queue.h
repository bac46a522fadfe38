// Everything a worker sends to its coordinator goes through one queue and one writer thread, so no
// sender ever waits on the link: a step's output callback (which also watches the step's timeout)
// and the heartbeat thread return at once however slow the link is. The queue is bounded: output
// chunks beyond `max_log_bytes` queued are dropped and counted (the worker's own SYSTEM lines never
// are), and a SYSTEM line in the task's log says how many bytes were lost, on a line of its own. That
// note carries the stdout and stderr ranges it stands for (TaskLog.gap): once the task has finished,
// the coordinator serves those bytes from the stored stdout/stderr in its place. A dropped chunk's
// preface (the worker's own lines) rides with the note. Heartbeats jump the queue (only the newest is
// kept); results are never dropped and follow their task's output.
//
// Output is sent in batches: a chunk of a step's stdout or stderr waits up to `log_delay` in the
// queue, and the chunks that follow it on the same stream within that time join it (up to
// kMaxBatchBytes), so a step that prints a line at a time costs one message per `log_delay`, not
// one per line (each message is work for both daemons: the link, the coordinator's lock, a write to
// its store). A line of one stream cut by the other stream's output is completed first while its
// start still waits. Anything else queued behind them (a result, a Flush) sends them at once.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "assay/v1/worker_link.pb.h"

namespace assay {

class OutboundQueue {
 public:
  // Writes one message to the link; false when the link is broken. `more`: another message is
  // written right after it (the link may hold this one back and send both in one go).
  using WriteFn = std::function<bool(const assay::v1::WorkerMessage&, bool more)>;

  static constexpr size_t kMaxBatchBytes = 64 << 10;
  OutboundQueue(WriteFn write, size_t max_log_bytes, absl::Duration log_delay = absl::ZeroDuration());
  ~OutboundQueue();
  OutboundQueue(const OutboundQueue&) = delete;
  OutboundQueue& operator=(const OutboundQueue&) = delete;

  // Queues a message without waiting. False once the link broke or the queue was closed.
  bool Send(assay::v1::WorkerMessage message);
  // Waits until everything queued has been written (true), the link broke or `timeout` passed.
  bool Flush(absl::Duration timeout);
  // Stops the writer (after the write in flight, if any) and waits for it; later sends fail.
  void Close();

  int64_t dropped_log_bytes() const;

 private:
  void Run();
  // Send's work under the lock; `report` gets a line to log (after it) when a drop note is queued.
  bool Enqueue(assay::v1::WorkerMessage message, std::string* report);

  // Whether `message` can join the last queued chunk (same task and stream, next bytes, no gap, no
  // preface of its own); if so it does. When only chunks of the task's other stream are queued behind
  // that chunk and it ends mid-line, the end of its line (up to the first newline of `message`) joins
  // it instead, and `message` keeps the rest: a line is not cut by the other stream's output.
  bool JoinLastLocked(assay::v1::WorkerMessage& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether the writer should wait before taking the front message: it is output younger than
  // log_delay_ with only output behind it, and nobody flushes.
  bool HoldFrontLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WriteFn write_;
  const size_t max_log_bytes_;
  const absl::Duration log_delay_;
  mutable absl::Mutex mu_;
  struct Queued {
    assay::v1::WorkerMessage message;
    absl::Time at;  // when it was queued
  };
  std::deque<Queued> queue_ ABSL_GUARDED_BY(mu_);
  int others_ ABSL_GUARDED_BY(mu_) = 0;    // queued messages that are not logs (results)
  int flushing_ ABSL_GUARDED_BY(mu_) = 0;  // Flush calls waiting
  std::optional<assay::v1::WorkerMessage> heartbeat_ ABSL_GUARDED_BY(mu_);
  size_t log_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  struct Dropped {
    int64_t bytes = 0;
    assay::v1::LogGap gap;  // the ranges of stdout and stderr dropped since the last note
    std::string preface;    // the dropped chunks' prefaces
  };
  void Drop(const std::string& lease, const assay::v1::TaskLog& log) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::map<std::string, Dropped> dropped_ ABSL_GUARDED_BY(mu_);  // by lease id, not yet reported
  std::map<std::string, bool> mid_line_ ABSL_GUARDED_BY(mu_);     // by lease id: its last output ended mid-line
  int64_t dropped_total_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;  // a message taken off the queue is being written
  std::thread writer_;
};

}  // namespace assay
