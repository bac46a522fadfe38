#include "coordinator/watchers.h"

#include <utility>

namespace assay {

uint64_t Watchers::Add(uint64_t job, OnChange on_change) {
  const uint64_t handle = next_handle_++;
  by_job_[job][handle] = std::move(on_change);
  return handle;
}

void Watchers::Remove(uint64_t job, uint64_t handle) {
  auto it = by_job_.find(job);
  if (it == by_job_.end()) return;
  it->second.erase(handle);
  if (it->second.empty()) by_job_.erase(it);
}

void Watchers::AddNotices(uint64_t job, bool ended, std::vector<std::function<void()>>* out) const {
  auto it = by_job_.find(job);
  if (it == by_job_.end()) return;
  for (const auto& [handle, on_change] : it->second) out->push_back([on_change = on_change, ended] { on_change(ended); });
}

bool Watchers::PokeDue(absl::Time now) {
  if (now - last_poke_ < absl::Seconds(1)) return false;
  last_poke_ = now;
  return true;
}

void Watchers::Poke(uint64_t job) const {
  auto it = by_job_.find(job);
  if (it == by_job_.end()) return;
  for (const auto& [handle, on_change] : it->second) on_change(false);
}

}  // namespace assay
