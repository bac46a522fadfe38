// Small rules about a job's and a task's state, written once for the coordinator and the CLI.
#pragma once

#include <cstdint>
#include <string>

#include <google/protobuf/timestamp.pb.h>

#include "absl/strings/string_view.h"
#include "assay/v1/job.pb.h"

namespace assay {

// A job or task in one of these states changes no more.
bool IsFinal(assay::v1::JobState state);
bool IsFinal(assay::v1::TaskState state);
// Whether a task selector picks the task: empty picks every task, "CELL" the cell's tasks, "CELL/STEP"
// that one (as `assay logs` and `assay artifacts` take it).
bool SelectsTask(absl::string_view selector, absl::string_view task_id);
// A protobuf timestamp as milliseconds since the epoch.
int64_t TimestampMillis(const google::protobuf::Timestamp& t);

// WatchJob with changes_only (jobs.proto): applies one message (the whole job first, then the job
// without tasks plus the tasks changed since the message before) to the job seen so far. A task whose
// index is outside the job is ignored.
void ApplyJobChanges(assay::v1::Job update, assay::v1::Job* seen);

// The job's `branch` label ("" without one): size baselines and step caches are kept per branch.
std::string BranchOf(const assay::v1::Job& job);

}  // namespace assay
