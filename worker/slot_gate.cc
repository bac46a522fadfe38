#include "worker/slot_gate.h"

namespace assay {

uint64_t SlotGate::Join() {
  absl::MutexLock lock(&mu_);
  line_.insert(next_);
  return next_++;
}

SlotGate::Admission SlotGate::Enter(uint64_t ticket, const CancelToken& cancel) {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return withdrawn_.contains(ticket) || cancel.cancelled() ||
           (free_ > 0 && !line_.empty() && *line_.begin() == ticket);
  };
  mu_.Await(absl::Condition(&ready));
  if (withdrawn_.erase(ticket) > 0) return Admission::kWithdrawn;
  line_.erase(ticket);
  if (cancel.cancelled()) return Admission::kCancelled;
  --free_;
  return Admission::kEntered;
}

void SlotGate::Leave() {
  absl::MutexLock lock(&mu_);
  ++free_;
}

void SlotGate::Abandon(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  line_.erase(ticket);
  withdrawn_.erase(ticket);
}

bool SlotGate::Withdraw(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  if (line_.erase(ticket) == 0) return false;
  withdrawn_.insert(ticket);
  return true;
}

int SlotGate::WithdrawAll() {
  absl::MutexLock lock(&mu_);
  const int n = static_cast<int>(line_.size());
  withdrawn_.insert(line_.begin(), line_.end());
  line_.clear();
  return n;
}

void SlotGate::Wake() { absl::MutexLock lock(&mu_); }

int SlotGate::waiting() {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(line_.size());
}

}  // namespace assay
