#include "worker/outbound_queue.h"

#include <spdlog/spdlog.h>

#include <iterator>

#include "absl/strings/str_cat.h"

namespace assay {
using assay::v1::WorkerMessage;

OutboundQueue::OutboundQueue(WriteFn write, size_t max_log_bytes, absl::Duration log_delay)
    : write_(std::move(write)), max_log_bytes_(max_log_bytes), log_delay_(log_delay), writer_([this] { Run(); }) {}

OutboundQueue::~OutboundQueue() { Close(); }

bool OutboundQueue::Send(WorkerMessage message) {
  std::string report;  // logged after the lock is released
  const bool queued = Enqueue(std::move(message), &report);
  if (!report.empty()) spdlog::info("{}", report);
  return queued;
}

bool OutboundQueue::Enqueue(WorkerMessage message, std::string* report) {
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
    // The worker's own lines (SYSTEM: a few, small) are never dropped; the step's output may be.
    if (log_bytes_ + size > max_log_bytes_ && message.log().stream() != assay::v1::LogChunk::SYSTEM) {
      Drop(lease, message.log());
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
    log->set_data(absl::StrCat(mid_line_[lease] ? "\n" : "", "[assay] ", lost->second.bytes,
                               " bytes of output were dropped here: the link to the coordinator was too slow "
                               "(the log is whole once the step has finished)\n"));
    *log->mutable_gap() = lost->second.gap;
    *report = absl::StrCat("job ", log->lease().job_id(), " task ", log->lease().task_id(), ": ", lost->second.bytes,
                           " bytes of live output dropped (the link to the coordinator is too slow; the finished log "
                           "is whole)");
    log->set_preface(std::move(lost->second.preface));
    log_bytes_ += note.log().data().size();
    queue_.push_back({std::move(note), absl::Now()});
    dropped_.erase(lost);
    mid_line_[lease] = false;
  }
  if (message.has_log() && !message.log().data().empty()) mid_line_[lease] = message.log().data().back() != '\n';
  if (message.has_result()) mid_line_.erase(lease);
  if (message.has_log()) log_bytes_ += message.log().data().size();
  if (JoinLastLocked(message)) return true;  // (it may also have given the start of its data to an earlier chunk)
  others_ += !message.has_log();
  queue_.push_back({std::move(message), absl::Now()});
  return true;
}

namespace {

bool IsOutput(const assay::v1::TaskLog& log) {
  return log.stream() == assay::v1::LogChunk::STDOUT || log.stream() == assay::v1::LogChunk::STDERR;
}

// Whether `next` is the following bytes of `last`'s stream and task, and may be appended to it.
bool Follows(const assay::v1::TaskLog& last, const assay::v1::TaskLog& next, size_t bytes) {
  return next.stream() == last.stream() && !next.has_gap() && !last.has_gap() && next.preface().empty() &&
         next.lease().lease_id() == last.lease().lease_id() &&
         next.offset() == last.offset() + static_cast<int64_t>(last.data().size()) &&
         last.data().size() + bytes <= OutboundQueue::kMaxBatchBytes;
}

}  // namespace

bool OutboundQueue::JoinLastLocked(WorkerMessage& message) {
  if (log_delay_ <= absl::ZeroDuration() || queue_.empty() || !message.has_log() || !IsOutput(message.log())) {
    return false;
  }
  assay::v1::TaskLog& next = *message.mutable_log();
  // Behind the task's other stream: the queued chunk of this one whose line it ends, if that chunk
  // ended mid-line; the end of that line joins it, so the other stream's lines do not cut it.
  auto at = queue_.end();
  while (at != queue_.begin()) {
    const WorkerMessage& queued = std::prev(at)->message;
    if (!queued.has_log() || !IsOutput(queued.log()) || queued.log().stream() == next.stream() ||
        queued.log().lease().lease_id() != next.lease().lease_id()) {
      break;
    }
    --at;
  }
  if (at == queue_.begin() || !std::prev(at)->message.has_log()) return false;
  assay::v1::TaskLog& last = *std::prev(at)->message.mutable_log();
  if (at == queue_.end()) {  // right behind it: all of it joins
    if (!Follows(last, next, next.data().size())) return false;
    last.mutable_data()->append(next.data());
    return true;
  }
  const size_t line_end = next.data().find('\n');
  if (last.data().empty() || last.data().back() == '\n' || line_end == std::string::npos ||
      !Follows(last, next, line_end + 1)) {
    return false;
  }
  last.mutable_data()->append(next.data(), 0, line_end + 1);  // the rest is queued as it comes
  next.set_offset(next.offset() + static_cast<int64_t>(line_end + 1));
  next.mutable_data()->erase(0, line_end + 1);
  return next.data().empty();
}

bool OutboundQueue::HoldFrontLocked() const {
  if (log_delay_ <= absl::ZeroDuration() || queue_.empty() || others_ > 0 || flushing_ > 0) return false;
  return queue_.front().message.has_log() && absl::Now() < queue_.front().at + log_delay_;
}

void OutboundQueue::Drop(const std::string& lease, const assay::v1::TaskLog& log) {
  const auto size = static_cast<int64_t>(log.data().size());
  Dropped& dropped = dropped_[lease];
  dropped.bytes += size;
  dropped_total_ += size;
  dropped.preface += log.preface();
  assay::v1::LogGap& gap = dropped.gap;
  // Every chunk of a stream between two notes is dropped: its range grows from the first one's offset.
  if (log.stream() == assay::v1::LogChunk::STDOUT) {
    if (gap.stdout_bytes() == 0) gap.set_stdout_offset(log.offset());
    gap.set_stdout_bytes(log.offset() + size - gap.stdout_offset());
  } else if (log.stream() == assay::v1::LogChunk::STDERR) {
    if (gap.stderr_bytes() == 0) gap.set_stderr_offset(log.offset());
    gap.set_stderr_bytes(log.offset() + size - gap.stderr_offset());
  }
}

void OutboundQueue::Run() {
  while (true) {
    WorkerMessage next;
    bool more = false;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](OutboundQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
            return q->closed_ || q->heartbeat_.has_value() || !q->queue_.empty();
          },
          this));
      if (closed_) return;
      if (!heartbeat_.has_value() && HoldFrontLocked()) {
        // Output waits for more to join it, until its time is up or something else must go.
        mu_.AwaitWithDeadline(absl::Condition(
                                  +[](OutboundQueue* q) ABSL_EXCLUSIVE_LOCKS_REQUIRED(q->mu_) {
                                    return q->closed_ || q->heartbeat_.has_value() || q->others_ > 0 || q->flushing_ > 0;
                                  },
                                  this),
                              queue_.front().at + log_delay_);
        continue;
      }
      if (heartbeat_.has_value()) {
        next = std::move(*heartbeat_);
        heartbeat_.reset();
      } else {
        next = std::move(queue_.front().message);
        queue_.pop_front();
        if (next.has_log()) log_bytes_ -= next.log().data().size();
        others_ -= !next.has_log();
      }
      writing_ = true;
      // The next one goes right after it (nothing may hold it): both can leave in one write.
      more = heartbeat_.has_value() || (!queue_.empty() && !HoldFrontLocked());
    }
    const bool ok = write_(next, more);
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
  ++flushing_;  // held output goes now
  struct Done {
    int& flushing;
    ~Done() { --flushing; }
  } done{flushing_};
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
