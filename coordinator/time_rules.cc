#include "coordinator/time_rules.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/task/run_time.h"
#include "common/task/task_states.h"

namespace assay {

int64_t MedianMillis(std::vector<int64_t> ms) {
  if (ms.empty()) return 0;
  std::sort(ms.begin(), ms.end());
  const size_t mid = ms.size() / 2;
  return ms.size() % 2 == 1 ? ms[mid] : (ms[mid - 1] + ms[mid]) / 2;
}

bool IsTimeBaselineJob(const assay::v1::Job& job, const std::string& name, const std::string& branch) {
  return IsFinal(job.state()) && job.name() == name && BranchOf(job) == branch;
}

int64_t BaselineRunMillis(const assay::v1::Task& task) {
  if (task.state() != assay::v1::TASK_SUCCEEDED || task.cached()) return 0;
  return task.run_ms() > 0 ? task.run_ms() : RunMillis(task.result());
}

void TimeBaselineCollector::Add(const assay::v1::Job& job) {
  for (const assay::v1::Task& task : job.tasks()) {
    auto wanted = wanted_.find(task.id());
    if (wanted == wanted_.end()) continue;
    std::vector<Run>& runs = runs_[task.id()];
    const int64_t ms = BaselineRunMillis(task);
    if (ms > 0 && static_cast<int>(runs.size()) < wanted->second) runs.push_back(Run{ms, job.id()});
  }
}

bool TimeBaselineCollector::Full() const {
  return std::all_of(wanted_.begin(), wanted_.end(), [this](const auto& entry) {
    auto it = runs_.find(entry.first);
    return it != runs_.end() && static_cast<int>(it->second.size()) >= entry.second;
  });
}

std::map<std::string, assay::v1::TimeBaseline> TimeBaselineCollector::Baselines() const {
  std::map<std::string, assay::v1::TimeBaseline> out;
  for (const auto& [task_id, runs] : runs_) {
    if (runs.empty()) continue;
    assay::v1::TimeBaseline& baseline = out[task_id];
    std::vector<int64_t> ms;
    for (const Run& run : runs) {
      ms.push_back(run.ms);
      baseline.add_job_ids(run.job_id);
    }
    baseline.set_median_ms(MedianMillis(std::move(ms)));
    baseline.set_runs(static_cast<int32_t>(runs.size()));
  }
  return out;
}

TimeVerdict CheckTime(const assay::v1::Task& task, const build::bazel::remote::execution::v2::ActionResult& result) {
  TimeVerdict v;
  v.run_ms = RunMillis(result);
  if (!task.spec().has_time_regression() || !task.spec().has_time_baseline() || v.run_ms <= 0) return v;
  const assay::v1::TimeRegression& rule = task.spec().time_regression();
  const assay::v1::TimeBaseline& baseline = task.spec().time_baseline();
  if (baseline.median_ms() <= 0) return v;
  const double percent = TimeChangePercent(v.run_ms, baseline.median_ms());
  const std::string against = baseline.runs() == 1
                                  ? absl::StrCat("the last run's ", FormatRunTime(baseline.median_ms()))
                                  : absl::StrCat("the median ", FormatRunTime(baseline.median_ms()), " of the last ",
                                                 baseline.runs(), " runs");
  const std::string what = absl::StrFormat("time regression: %s ran %s, %+.0f%% against %s", task.id(),
                                           FormatRunTime(v.run_ms), percent, against);
  if (rule.fail_percent() > 0 && percent > rule.fail_percent()) {
    v.failure = absl::StrFormat("%s, more than %g%%", what, rule.fail_percent());
  } else if (rule.warn_percent() > 0 && percent > rule.warn_percent()) {
    v.warning = absl::StrFormat("%s, more than %g%%", what, rule.warn_percent());
  }
  return v;
}

}  // namespace assay
