// Time regressions of a step's runs (`time_regression`, docs/pipeline.md "Time regressions"): pure
// decisions over how long the step's command or emulator ran on the worker (RunMillis,
// common/task/run_time.h: no queueing, input fetching or uploading) and the
// baseline Intake fixed into the task's spec at submit: the median of the task's last successful,
// not cached runs of the same pipeline name and `branch` label. No I/O, no clock, no lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "assay/v1/job.pb.h"
#include "build/bazel/remote/execution/v2/remote_execution.pb.h"

namespace assay {

// The median (the mean of the middle two for an even count, rounded down); 0 for none.
int64_t MedianMillis(std::vector<int64_t> ms);

// Whether an earlier job may hold baseline runs: finished, the same pipeline name and `branch` label.
bool IsTimeBaselineJob(const assay::v1::Job& job, const std::string& name, const std::string& branch);

// The run time `task` adds to a baseline: its run_ms (else RunMillis of its result) when it succeeded
// and really ran (a cached result is not a run); 0 when it adds none.
int64_t BaselineRunMillis(const assay::v1::Task& task);

// Gathers each timed task's baseline from earlier jobs, fed newest first (IsTimeBaselineJob ones, with
// their tasks), until every task has the runs it wants.
class TimeBaselineCollector {
 public:
  // task id -> how many runs its median is over (TimeRegression.runs).
  explicit TimeBaselineCollector(std::map<std::string, int> wanted) : wanted_(std::move(wanted)) {}

  void Add(const assay::v1::Job& job);
  // Every task has all its runs: older jobs need not be read.
  bool Full() const;
  // task id -> its baseline, for the tasks with at least one run.
  std::map<std::string, assay::v1::TimeBaseline> Baselines() const;

 private:
  struct Run {
    int64_t ms;
    std::string job_id;
  };
  std::map<std::string, int> wanted_;
  std::map<std::string, std::vector<Run>> runs_;
};

struct TimeVerdict {
  int64_t run_ms = 0;    // the run's time; 0 when the result carries none
  std::string failure;   // slower than the baseline by more than `fail`
  std::string warning;   // slower by more than `warn`
};
// A finished run of `task`: checked when its spec asks for it and has a baseline.
TimeVerdict CheckTime(const assay::v1::Task& task, const build::bazel::remote::execution::v2::ActionResult& result);

}  // namespace assay
