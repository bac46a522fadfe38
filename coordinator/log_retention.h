// Log retention: the coordinator removes the stored logs of finished jobs that are older than
// --log-retention, and, while its disk is low (below twice --min-free-disk), those of the oldest
// finished jobs, one job at a time, so a farm's own logs never fill its disk. A job's record, its
// tasks, results and artifacts stay; asking for its logs afterwards says when and why they went.
// Runs on a thread of its own (Start), never under the job manager's lock.
#pragma once

#include <functional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"
#include "coordinator/job_store.h"

namespace assay {

class LogRetention {
 public:
  struct Options {
    absl::Duration max_age = absl::ZeroDuration();  // 0: kept however old
    std::string max_age_text = "0";                 // as the flag said, for the reason recorded
    // True while the disk is low (DiskReserve::Low); null: never.
    std::function<bool()> disk_low;
    std::string min_free_text;                      // --min-free-disk as given, for the reason
    absl::Duration interval = absl::Seconds(10);    // between passes (1 s while the disk is low)
    int max_jobs_per_pass = 64;
  };
  LogRetention(JobStore* store, const Clock* clock, Options options);
  ~LogRetention();

  // One pass: removes the logs of finished jobs older than max_age, then, while the disk is low,
  // those of the oldest finished jobs. Returns how many jobs' logs it removed.
  absl::StatusOr<int> RunOnce();

  // Passes every `interval` on a thread of its own, until Stop (or destruction).
  void Start();
  void Stop();

 private:
  JobStore* const store_;
  const Clock* const clock_;
  const Options options_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// "90d", "12h", "30m", "0": a retention period (absl durations, plus days); InvalidArgument naming
// the text otherwise.
absl::StatusOr<absl::Duration> ParseRetention(const std::string& text);

}  // namespace assay
