// The disk of a worker's work directory, as a resource: a task is not started while its free space
// is below the reserve (--min-free-disk), and a task that failed while the disk was full failed
// because of this host, not because of its step. Both are a host problem
// (TaskResult.host_problem): the coordinator runs the task on another worker.
#pragma once

#include <filesystem>
#include <string>

#include "common/base/clock.h"
#include "common/cas/disk_space.h"

namespace assay {

class WorkDisk {
 public:
  // A failure leaves the disk "full" when less than this is free above the reserve.
  static constexpr int64_t kFullSlack = 1 << 20;

  WorkDisk(const std::filesystem::path& dir, MinFreeDisk min_free, const Clock* clock,
           DiskProbe probe = StatFileSystem);

  // "" when a task may start; otherwise why not (free space below the reserve).
  std::string BeforeTask();
  // After a task failed with `failure` (an error, or a failing exit): "" when the disk has room
  // (the failure is the task's), otherwise the host problem, naming the disk and the failure.
  std::string AfterFailure(const std::string& failure);

 private:
  DiskReserve reserve_;
};

}  // namespace assay
