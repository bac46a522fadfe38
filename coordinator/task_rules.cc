#include "coordinator/task_rules.h"

#include <signal.h>
#include <string.h>

#include <algorithm>

#include "coordinator/size_rules.h"
#include "coordinator/time_rules.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace assay {

using assay::v1::Job;
using assay::v1::Task;
using assay::v1::TaskState;

std::string WorkerWithInputs(const Job& job, const absl::flat_hash_map<std::string, int32_t>& index_of,
                             const Task& task) {
  std::string worker;
  int64_t most = -1;
  for (const std::string& need : task.needs()) {
    auto it = index_of.find(need);
    if (it == index_of.end() || it->second < 0 || it->second >= job.tasks_size()) continue;
    const Task& dep = job.tasks(it->second);
    if (dep.worker().empty() || dep.cached()) continue;
    int64_t bytes = 0;
    for (const auto& file : dep.result().output_files()) bytes += file.digest().size_bytes();
    if (bytes > most) {
      most = bytes;
      worker = dep.worker();
    }
  }
  return worker;
}

Settlement Settle(const Job& job, const absl::flat_hash_map<std::string, int32_t>& index_of, bool cancel_requested,
                  absl::FunctionRef<bool(int32_t)> preparing) {
  Settlement out;
  // States as they will be once this settlement is applied (skips feed later tasks' decisions).
  std::vector<TaskState> state;
  state.reserve(static_cast<size_t>(job.tasks_size()));
  for (const Task& t : job.tasks()) state.push_back(t.state());
  for (const Task& task : job.tasks()) {
    const auto index = static_cast<size_t>(task.index());
    if (task.state() != assay::v1::TASK_PENDING) continue;
    if (cancel_requested) {
      out.cancelled.push_back(task.index());
      state[index] = assay::v1::TASK_CANCELLED;
      continue;
    }
    if (preparing(task.index())) continue;
    bool all_final = true;
    std::string blocked_by;
    for (const std::string& need : task.needs()) {
      auto it = index_of.find(need);
      if (it == index_of.end()) {
        blocked_by = need;  // cannot happen for a planned job; never run a task whose need is unknown
        break;
      }
      const TaskState dep = state[static_cast<size_t>(it->second)];
      if (!IsFinal(dep)) {
        all_final = false;
      } else if (dep != assay::v1::TASK_SUCCEEDED) {
        blocked_by = need;
        break;
      }
    }
    if (!blocked_by.empty()) {
      out.skipped.emplace_back(task.index(), absl::StrCat("skipped: needs ", blocked_by, ", which did not succeed"));
      state[index] = assay::v1::TASK_SKIPPED;
    } else if (all_final) {
      out.ready.push_back(task.index());
    }
  }
  return out;
}

JobOutcome Outcome(const Job& job, bool cancel_requested) {
  JobOutcome out;
  bool any_failed = false;
  for (const Task& task : job.tasks()) {
    if (IsFinal(task.state())) ++out.done;
    if (task.state() == assay::v1::TASK_FAILED || task.state() == assay::v1::TASK_SKIPPED) any_failed = true;
  }
  if (out.done == job.tasks_size()) {
    out.final_state = cancel_requested ? assay::v1::JOB_CANCELLED
                      : any_failed     ? assay::v1::JOB_FAILED
                                       : assay::v1::JOB_SUCCEEDED;
  }
  return out;
}

std::string DescribeExitCode(int exit_code) {
  // 128 + N: how shells, the executors and container engines report a process that signal N ended.
  const int signal = exit_code - 128;
  const char* name = signal > 0 && signal < NSIG ? ::sigabbrev_np(signal) : nullptr;
  if (name == nullptr) return absl::StrCat("exit code ", exit_code);
  return absl::StrCat("exit code ", exit_code, " (signal ", signal, ", SIG", name, ")");
}

ResultDecision DecideResult(const Task& task, const assay::v1::TaskResult& result) {
  ResultDecision out;
  const auto& ar = result.result();
  std::string kind;  // of a failure the step's `retry.when` can name
  if (!result.error().empty()) {
    out.failure = absl::StrCat("worker error: ", result.error());
  } else if (result.timed_out()) {
    kind = "timeout";
    out.failure = absl::StrCat("timed out after ", absl::FormatDuration(absl::Milliseconds(task.spec().timeout_ms())),
                               "; process tree killed");
  } else if (ar.exit_code() != 0) {
    kind = "exit_code";
    out.failure = DescribeExitCode(ar.exit_code());
  }
  if (!result.failure().empty()) absl::StrAppend(&out.failure, ": ", result.failure());
  const auto& when = task.spec().retry_when();
  const bool retry_kind = when.empty() || kind.empty() ||  // infrastructure errors are always retried
                          std::find(when.begin(), when.end(), kind) != when.end();
  // spec.retry extra tries: attempt 1 is the first run, so attempts up to retry leave one more.
  out.retry = !out.failure.empty() && retry_kind && task.attempt() <= task.spec().retry();
  out.cacheable = !out.retry && task.spec().cache() && result.error().empty() && !result.timed_out() &&
                  (ar.exit_code() == 0 || task.spec().cache_failures());
  if (out.failure.empty()) {
    out.flaky = task.failed_runs() > 0;
    SizeVerdict sizes = CheckSizes(task.spec(), ar);
    out.failure = std::move(sizes.failure);
    out.warnings = std::move(sizes.warnings);
    out.sizes = std::move(sizes.sizes);
  }
  TimeVerdict timing = CheckTime(task, ar);
  out.run_ms = timing.run_ms;
  if (out.failure.empty()) {  // only a run that passed is held to its time
    // Not cached when too slow: a cache hit is never timed, so it would pass the next job unchecked.
    if (!timing.failure.empty()) out.cacheable = false;
    out.failure = std::move(timing.failure);
    if (!timing.warning.empty()) out.warnings.push_back(std::move(timing.warning));
  }
  return out;
}

ResultDecision DecideCachedResult(const Task& task, const build::bazel::remote::execution::v2::ActionResult& result) {
  ResultDecision out;
  if (result.exit_code() != 0) {
    out.failure = absl::StrCat(DescribeExitCode(result.exit_code()), " (cached)");
    return out;
  }
  SizeVerdict sizes = CheckSizes(task.spec(), result);
  out.failure = std::move(sizes.failure);
  out.warnings = std::move(sizes.warnings);
  out.sizes = std::move(sizes.sizes);
  return out;
}

LostDecision DecideLost(const Task& task, const std::string& why, int max_lost_attempts) {
  LostDecision out;
  out.give_up = task.attempt() >= max_lost_attempts + task.spec().retry();
  out.message = out.give_up ? absl::StrCat(why, "; gave up after ", task.attempt(), " attempts") : why;
  return out;
}

}  // namespace assay
