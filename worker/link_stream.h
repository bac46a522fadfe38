// The worker's end of one WorkerLink session (internal to the worker agent).
#pragma once

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <grpcpp/support/sync_stream.h>

#include "absl/synchronization/mutex.h"
#include "assay/v1/worker_link.grpc.pb.h"
#include "worker/executor.h"
#include "worker/outbound_queue.h"

namespace assay {

// The stream of one session, on gRPC's synchronous API: one reader thread reads the coordinator's
// messages and hands them to the session's thread (Next); outgoing ones go through a bounded queue
// (outbound_queue.h) whose one writer thread writes each in turn, so no sender ever waits on the
// link. (gRPC's callback API costs a worker two more threads of its own, which hand every event
// over, and on this link a few wake-ups per message: measured in docs/benchmarks.md, issue 24.)
class LinkStream final {
 public:
  static constexpr size_t kMaxQueuedLogBytes = 8 << 20;
  static constexpr size_t kMaxInbox = 10'000;  // a coordinator that floods us is cut off

  LinkStream(assay::v1::WorkerLink::Stub* stub, grpc::ClientContext* context,
             size_t max_queued_log_bytes = kMaxQueuedLogBytes, absl::Duration log_batch = absl::ZeroDuration())
      : context_(context),
        stream_(stub->Connect(context)),
        reader_([this] { ReadAll(); }),
        queue_(
            [this](const assay::v1::WorkerMessage& m, bool more) {
              grpc::WriteOptions options;
              if (more) options.set_buffer_hint();  // sent with the next one, in one write
              return stream_->Write(m, options);
            },
            max_queued_log_bytes, log_batch) {}

  LinkStream(const LinkStream&) = delete;
  LinkStream& operator=(const LinkStream&) = delete;
  ~LinkStream() { Finish(); }

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
    stream_->WritesDone();
    // The coordinator ends the call once it has handled everything before the half-close; the read
    // then ends.
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

  // Ends the call: cancels it, stops the writer and the reader, and returns the call's status (the
  // coordinator's, when it ended the call first). Once only; later calls return the same status.
  grpc::Status Finish() {
    if (finished_) return status_;
    finished_ = true;
    bool ended = false;
    {
      absl::MutexLock lock(&mu_);
      ended = read_ended_;
    }
    // A call the coordinator ended keeps its status (a cancel now would turn it into CANCELLED); one
    // still open is cancelled, so that a write or read in progress returns.
    if (!ended) context_->TryCancel();
    queue_.Close();  // joins the writer thread: no write after this
    reader_.join();
    status_ = stream_->Finish();
    return status_;
  }

 private:
  // The reader thread: every message into the inbox, until the stream ends or floods us.
  void ReadAll() {
    assay::v1::CoordinatorMessage in;
    bool ok = true;
    while (ok && stream_->Read(&in)) {
      absl::MutexLock lock(&mu_);
      ok = inbox_.size() < kMaxInbox;
      if (ok) inbox_.push_back(std::move(in));
      in.Clear();
    }
    if (!ok) context_->TryCancel();
    absl::MutexLock lock(&mu_);
    read_ended_ = true;
  }

  grpc::ClientContext* const context_;
  const std::unique_ptr<grpc::ClientReaderWriter<assay::v1::WorkerMessage, assay::v1::CoordinatorMessage>> stream_;
  absl::Mutex mu_;
  std::deque<assay::v1::CoordinatorMessage> inbox_ ABSL_GUARDED_BY(mu_);
  bool read_ended_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ = false;  // the session's thread only
  grpc::Status status_;
  std::thread reader_;
  OutboundQueue queue_;  // last: its writer thread stops first
};

}  // namespace assay
