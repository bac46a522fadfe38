// The coordinator's side of one connected worker: the messages decided for it, written to its stream
// one at a time (gRPC allows one write in flight), in the order they were sent.
//
// Senders never block: Send queues the message and, when no write is in flight, hands it to the
// stream's writer (Attach). The queue is bounded: a worker that stops reading while its queue grows
// past the bound is cut off (its session closed, its tasks queued elsewhere), rather than letting
// the coordinator's memory grow without end. Without a writer attached (unit tests), messages wait
// for Next.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "assay/v1/worker_link.pb.h"

namespace assay {

class WorkerSession {
 public:
  static constexpr size_t kMaxQueued = 10'000;
  // Starts writing `message` (which stays valid until WriteDone).
  using StartWrite = std::function<void(const assay::v1::CoordinatorMessage* message)>;

  explicit WorkerSession(std::string worker_id, size_t max_queued = kMaxQueued)
      : worker_id_(std::move(worker_id)), max_queued_(max_queued) {}

  const std::string& worker_id() const { return worker_id_; }

  // From now on, messages go to `start_write`. `on_close` is called when the session closes and again
  // when a write ends on a closed session: it must be idempotent, and end the stream once idle().
  void Attach(StartWrite start_write, std::function<void()> on_close);

  // Never blocks; dropped once the session is closed.
  void Send(assay::v1::CoordinatorMessage message);
  // The stream's writer finished the current write; starts the next one, if any. A failed write closes.
  void WriteDone(bool ok);
  // True when no write is in flight.
  bool idle() const;

  // The next message, waiting up to `timeout`; nullopt on timeout or when closed and drained. Only
  // for sessions without a writer attached.
  std::optional<assay::v1::CoordinatorMessage> Next(absl::Duration timeout);

  void Close();
  bool closed() const {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

 private:
  // Starts the next write if none is in flight (called with mu_ held; releases it to call out).
  void PumpLocked() ABSL_UNLOCK_FUNCTION(mu_);
  // Marks closed and returns the close callback to call (once), with mu_ held.
  std::function<void()> CloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string worker_id_;
  const size_t max_queued_;
  mutable absl::Mutex mu_;
  std::deque<assay::v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mu_);
  assay::v1::CoordinatorMessage in_flight_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  StartWrite start_write_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_close_ ABSL_GUARDED_BY(mu_);
};

}  // namespace assay
