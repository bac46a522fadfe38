// The coordinator's side of one connected worker: a queue of messages for its stream's writer.
#pragma once

#include <deque>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "assay/v1/worker_link.pb.h"

namespace assay {

class WorkerSession {
 public:
  explicit WorkerSession(std::string worker_id) : worker_id_(std::move(worker_id)) {}

  const std::string& worker_id() const { return worker_id_; }

  // Never blocks; dropped once the session is closed.
  void Send(assay::v1::CoordinatorMessage message) {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    queue_.push_back(std::move(message));
  }

  // The next message, waiting up to `timeout`; nullopt on timeout or when closed and drained.
  std::optional<assay::v1::CoordinatorMessage> Next(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closed_; };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (queue_.empty()) return std::nullopt;
    auto message = std::move(queue_.front());
    queue_.pop_front();
    return message;
  }

  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  bool closed() const {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

 private:
  const std::string worker_id_;
  mutable absl::Mutex mu_;
  std::deque<assay::v1::CoordinatorMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace assay
