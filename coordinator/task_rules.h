// The task state machine's rules: which pending tasks can move, when a job is over, what a worker's
// result or a lost worker means for a task (its retry policy). Pure decisions over protos, no I/O,
// no locking, no clock; JobManager applies them.
//
//   PENDING --needs succeeded--> (prepared) --> QUEUED --leased--> RUNNING --result--> SUCCEEDED | FAILED
//      |  \--a need did not succeed--> SKIPPED         ^                 |  \--failed, retries left--> QUEUED
//      \--job cancelled--> CANCELLED                    \--worker lost, attempts left--/
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "assay/v1/jobs.pb.h"
#include "assay/v1/worker_link.pb.h"
#include "common/task/task_states.h"
#include "google/protobuf/timestamp.pb.h"

namespace assay {

// What should happen to a job's PENDING tasks now. Tasks are settled in index order (a task's needs
// have lower indexes), so a skip cascades to everything that needs it in one call.
struct Settlement {
  std::vector<int32_t> ready;                              // every need succeeded: prepare it
  std::vector<std::pair<int32_t, std::string>> skipped;    // with the message naming the need
  std::vector<int32_t> cancelled;                          // the job is being cancelled
};
// `index_of`: task id -> index; `preparing(index)`: already handed to preparation (left alone).
Settlement Settle(const assay::v1::Job& job, const absl::flat_hash_map<std::string, int32_t>& index_of,
                  bool cancel_requested, absl::FunctionRef<bool(int32_t)> preparing);

// The worker with most of `task`'s inputs on its disk: the one that ran the needed task whose output
// files are largest ("" when the task needs none, or they ran nowhere: cached results).
std::string WorkerWithInputs(const assay::v1::Job& job, const absl::flat_hash_map<std::string, int32_t>& index_of,
                             const assay::v1::Task& task);

struct JobOutcome {
  int done = 0;                                    // tasks in a final state
  std::optional<assay::v1::JobState> final_state;  // set once every task is final
};
JobOutcome Outcome(const assay::v1::Job& job, bool cancel_requested);

// "exit code 2", or "exit code 139 (signal 11, SIGSEGV)" for 128 + a signal's number.
std::string DescribeExitCode(int exit_code);

// A worker's result for a RUNNING task.
struct ResultDecision {
  std::string failure;     // empty: the task succeeded
  bool retry = false;      // failed, with tries left (spec.retry, of a kind in spec.retry_when): run again
  bool cacheable = false;  // goes to the action cache
  bool flaky = false;      // succeeded after failing runs
  std::vector<std::string> warnings;       // size and time regressions beyond `warn`
  std::vector<assay::v1::FileSize> sizes;  // for the task and reports
  int64_t run_ms = 0;                      // how long the step ran (0: a cached result, or not timed)
};
ResultDecision DecideResult(const assay::v1::Task& task, const assay::v1::TaskResult& result);
// A result from the action cache: its exit code and the step's size rules decide (no retry; a cached
// result is not timed: it did not run now).
ResultDecision DecideCachedResult(const assay::v1::Task& task,
                                  const build::bazel::remote::execution::v2::ActionResult& result);

// A RUNNING task lost its worker (link dropped, lease expired, worker reconnected). It runs again
// unless it has used its attempts: `max_lost_attempts` plus the step's own retries.
struct LostDecision {
  bool give_up = false;
  std::string message;
};
LostDecision DecideLost(const assay::v1::Task& task, const std::string& why, int max_lost_attempts);

}  // namespace assay
