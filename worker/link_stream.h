// The worker's end of one WorkerLink session (internal to the worker agent).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/support/client_callback.h>

#include "absl/synchronization/mutex.h"
#include "assay/v1/worker_link.grpc.pb.h"
#include "worker/executor.h"
#include "worker/outbound_queue.h"

namespace assay {

// The stream of one session, on gRPC's callback API. Incoming messages are handed to the session's
// thread (Next) as they are read; outgoing ones go through a bounded queue (outbound_queue.h) whose
// one writer thread starts each write and waits for it, so one write is in flight and no sender ever
// waits on the link.
class LinkStream final : public grpc::ClientBidiReactor<assay::v1::WorkerMessage, assay::v1::CoordinatorMessage> {
 public:
  static constexpr size_t kMaxQueuedLogBytes = 8 << 20;
  static constexpr size_t kMaxInbox = 10'000;  // a coordinator that floods us is cut off

  LinkStream(assay::v1::WorkerLink::Stub* stub, grpc::ClientContext* context,
             size_t max_queued_log_bytes = kMaxQueuedLogBytes, absl::Duration log_batch = absl::ZeroDuration())
      : context_(context),
        queue_([this](const assay::v1::WorkerMessage& m) { return WriteAndWait(m); }, max_queued_log_bytes,
               log_batch) {
    stub->async()->Connect(context, this);
    // The writer thread starts writes from outside the reactions: a hold keeps the stream alive
    // (and OnDone away) until that thread has stopped, released in Finish.
    AddHold();
    StartRead(&in_);
    StartCall();
  }

  bool Send(assay::v1::WorkerMessage message) { return queue_.Send(std::move(message)); }

  // Ends the stream the polite way: writes what is queued, half-closes, and waits (up to `timeout`)
  // for the coordinator to end the call, so every result sent is taken before the worker leaves.
  bool CloseGracefully(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    const bool flushed = queue_.Flush(timeout);
    queue_.Close();  // no write after this one: the half-close must be the last
    {
      absl::MutexLock lock(&mu_);
      if (read_ended_) return flushed;
    }
    StartWritesDone();
    // The coordinator ends the call once it has handled everything before the half-close; the read
    // then ends (OnDone itself waits for the hold that Finish releases).
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithDeadline(absl::Condition(&read_ended_), deadline) && flushed;
  }

  // The next message from the coordinator; nullopt once the stream has ended.
  std::optional<assay::v1::CoordinatorMessage> Next() {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !inbox_.empty() || read_ended_; };
    mu_.Await(absl::Condition(&ready));
    if (inbox_.empty()) return std::nullopt;
    assay::v1::CoordinatorMessage m = std::move(inbox_.front());
    inbox_.pop_front();
    return m;
  }

  // Ends the call: cancels it, stops the writer, and waits until gRPC is done with this reactor.
  grpc::Status Finish() {
    context_->TryCancel();
    queue_.Close();  // joins the writer thread: no StartWrite after this
    RemoveHold();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
    return status_;
  }

  void OnReadDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (!ok || inbox_.size() >= kMaxInbox) {
      if (ok) context_->TryCancel();
      read_ended_ = true;
      return;
    }
    inbox_.push_back(std::move(in_));
    in_.Clear();
    StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    write_done_ = true;
    write_ok_ = ok;
  }
  void OnDone(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    read_ended_ = true;
    done_ = true;
  }

 private:
  // Called by the queue's writer thread only.
  bool WriteAndWait(const assay::v1::WorkerMessage& message) {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return false;
      write_done_ = false;
    }
    StartWrite(&message);
    absl::MutexLock lock(&mu_);
    auto finished = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return write_done_ || done_; };
    mu_.Await(absl::Condition(&finished));
    return write_done_ && write_ok_;
  }

  grpc::ClientContext* const context_;
  assay::v1::CoordinatorMessage in_;  // one read at a time
  absl::Mutex mu_;
  std::deque<assay::v1::CoordinatorMessage> inbox_ ABSL_GUARDED_BY(mu_);
  bool read_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool write_done_ ABSL_GUARDED_BY(mu_) = false;
  bool write_ok_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
  OutboundQueue queue_;  // last: its writer thread stops first
};

}  // namespace assay
