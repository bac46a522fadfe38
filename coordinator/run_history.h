// How long each step of a pipeline ran last time, so that a job's longest work is queued first
// (Scheduler::Enqueue): a matrix's long steps start early and its last ones are short, so fewer
// lanes stand idle at the end. Kept in memory by pipeline (name and file) and task id; a restart of
// the coordinator forgets it, and the order of a queue is all it changes.
//
// Not thread-safe: JobManager calls it under its lock. Pure logic, no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "assay/v1/job.pb.h"
#include "build/bazel/remote/execution/v2/remote_execution.pb.h"

namespace assay {

class RunHistory {
 public:
  static constexpr size_t kMaxEntries = 100'000;  // then it starts over

  // Notes the task's run (from the worker's execution timestamps; nothing if they are missing).
  void Record(const assay::v1::Job& job, const assay::v1::Task& task,
              const build::bazel::remote::execution::v2::ExecutedActionMetadata& run);
  // The task's last run plus the longest chain of last runs of the tasks waiting for it, in ms;
  // 0 if the task's own last run is not known. `dependents`: Dependents(job).
  int64_t Expected(const assay::v1::Job& job, int32_t index, const std::vector<std::vector<int32_t>>& dependents) const;
  // By task index, the indexes of the tasks that need it.
  static std::vector<std::vector<int32_t>> Dependents(const assay::v1::Job& job);
  // The task's own last run in ms (0: not known).
  int64_t Last(const assay::v1::Job& job, const std::string& task_id) const;

 private:
  absl::flat_hash_map<std::string, int64_t> last_ms_;
};

}  // namespace assay
