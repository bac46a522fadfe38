#include "worker/outbound_queue.h"

#include "absl/strings/str_cat.h"

namespace assay {
using assay::v1::WorkerMessage;

OutboundQueue::OutboundQueue(WriteFn write, size_t max_log_bytes)
    : write_(std::move(write)), max_log_bytes_(max_log_bytes), writer_([this] { Run(); }) {}

OutboundQueue::~OutboundQueue() { Close(); }

bool OutboundQueue::Send(WorkerMessage message) {
  absl::MutexLock lock(&mu_);
  if (closed_ || broken_) return false;
  if (message.has_heartbeat()) {
    heartbeat_ = std::move(message);  // only the newest matters
    return true;
  }
  const std::string lease = message.has_log()      ? message.log().lease().lease_id()
                            : message.has_result() ? message.result().lease().lease_id()
                                                   : "";
  if (message.has_log()) {
    const size_t size = message.log().data().size();
    if (log_bytes_ + size > max_log_bytes_) {
      dropped_[lease] += static_cast<int64_t>(size);
      dropped_total_ += static_cast<int64_t>(size);
      return true;
    }
  }
  // Once there is room again (or before the result), the task's log says what it lost.
  auto lost = dropped_.find(lease);
  if (lost != dropped_.end() && (message.has_result() || message.has_log())) {
    WorkerMessage note;
    auto* log = note.mutable_log();
    *log->mutable_lease() = message.has_log() ? message.log().lease() : message.result().lease();
    log->set_stream(assay::v1::LogChunk::SYSTEM);
    log->set_data(absl::StrCat("[assay] ", lost->second,
                               " bytes of output were dropped here: the link to the coordinator was too slow\n"));
    log_bytes_ += note.log().data().size();
    queue_.push_back(std::move(note));
    dropped_.erase(lost);
  }
  if (message.has_log()) log_bytes_ += message.log().data().size();
  queue_.push_back(std::move(message));
  return true;
}

void OutboundQueue::Run() {
  while (true) {
    WorkerMessage next;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](OutboundQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
            return q->closed_ || q->heartbeat_.has_value() || !q->queue_.empty();
          },
          this));
      if (closed_) return;
      if (heartbeat_.has_value()) {
        next = std::move(*heartbeat_);
        heartbeat_.reset();
      } else {
        next = std::move(queue_.front());
        queue_.pop_front();
        if (next.has_log()) log_bytes_ -= next.log().data().size();
      }
      writing_ = true;
    }
    const bool ok = write_(next);
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      broken_ = true;
      return;
    }
  }
}

bool OutboundQueue::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return broken_ || closed_ || (queue_.empty() && !heartbeat_.has_value() && !writing_);
  };
  mu_.AwaitWithTimeout(absl::Condition(&settled), timeout);
  return !broken_ && queue_.empty() && !heartbeat_.has_value() && !writing_;
}

void OutboundQueue::Close() {
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

int64_t OutboundQueue::dropped_log_bytes() const {
  absl::MutexLock lock(&mu_);
  return dropped_total_;
}

}  // namespace assay
