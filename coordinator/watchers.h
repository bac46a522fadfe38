// Who hears of a job's changes (JobManager::AddWatcher): callbacks by job and handle, told once a
// change is written, and poked about once a second while the job is unfinished so durations shown
// stay current. Not thread-safe: JobManager holds it under its lock.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "absl/time/time.h"

namespace assay {

class Watchers {
 public:
  // `ended`: the change heard of is the job's last.
  using OnChange = std::function<void(bool ended)>;

  // Returns the handle to Remove it with.
  uint64_t Add(uint64_t job, OnChange on_change);
  void Remove(uint64_t job, uint64_t handle);
  // The job left memory: its watchers are dropped.
  void Forget(uint64_t job) { by_job_.erase(job); }
  // Appends to `out` the calls that tell the job's watchers of a change (run once it is written).
  void AddNotices(uint64_t job, bool ended, std::vector<std::function<void()>>* out) const;
  // True about once a second (the first time at once): time to Poke the watchers of unfinished jobs.
  bool PokeDue(absl::Time now);
  // Tells the job's watchers now that it is still running (nothing was written).
  void Poke(uint64_t job) const;

 private:
  std::map<uint64_t, std::map<uint64_t, OnChange>> by_job_;
  uint64_t next_handle_ = 1;
  absl::Time last_poke_ = absl::InfinitePast();
};

}  // namespace assay
