#include "coordinator/worker_session.h"

#include <spdlog/spdlog.h>

namespace assay {

void WorkerSession::Attach(StartWrite start_write, std::function<void()> on_close) {
  mu_.Lock();
  start_write_ = std::move(start_write);
  on_close_ = std::move(on_close);
  PumpLocked();
}

void WorkerSession::Send(assay::v1::CoordinatorMessage message) {
  mu_.Lock();
  if (closed_) {
    mu_.Unlock();
    return;
  }
  if (queue_.size() >= max_queued_) {
    spdlog::warn("worker {} is not reading its link ({} messages waiting); closing it", worker_id_, queue_.size());
    auto on_close = CloseLocked();
    mu_.Unlock();
    if (on_close) on_close();
    return;
  }
  queue_.push_back(std::move(message));
  PumpLocked();
}

void WorkerSession::PumpLocked() {
  if (writing_ || closed_ || !start_write_ || queue_.empty()) {
    mu_.Unlock();
    return;
  }
  writing_ = true;
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  const assay::v1::CoordinatorMessage* message = &in_flight_;
  StartWrite start = start_write_;
  mu_.Unlock();
  // in_flight_ is not touched again until WriteDone: the pointer stays valid.
  start(message);
}

void WorkerSession::WriteDone(bool ok) {
  mu_.Lock();
  writing_ = false;
  if (!ok) closed_ = true;  // the stream is broken
  if (closed_) {
    auto on_close = on_close_;  // the stream may end now that no write is in flight
    mu_.Unlock();
    if (on_close) on_close();
    return;
  }
  PumpLocked();
}

bool WorkerSession::idle() const {
  absl::MutexLock lock(&mu_);
  return !writing_;
}

std::optional<assay::v1::CoordinatorMessage> WorkerSession::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || closed_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (queue_.empty()) return std::nullopt;
  auto message = std::move(queue_.front());
  queue_.pop_front();
  return message;
}

std::function<void()> WorkerSession::CloseLocked() {
  if (closed_) return nullptr;
  closed_ = true;
  return on_close_;
}

void WorkerSession::Close() {
  mu_.Lock();
  auto on_close = CloseLocked();
  mu_.Unlock();
  if (on_close) on_close();
}

}  // namespace assay
