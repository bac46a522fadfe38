#include "common/task/task_states.h"

#include <algorithm>

#include "absl/strings/match.h"

namespace assay {

bool IsFinal(assay::v1::JobState state) {
  return state == assay::v1::JOB_SUCCEEDED || state == assay::v1::JOB_FAILED || state == assay::v1::JOB_CANCELLED;
}

bool IsFinal(assay::v1::TaskState state) {
  return state == assay::v1::TASK_SUCCEEDED || state == assay::v1::TASK_FAILED ||
         state == assay::v1::TASK_CANCELLED || state == assay::v1::TASK_SKIPPED;
}

bool SelectsTask(absl::string_view selector, absl::string_view task_id) {
  return selector.empty() || task_id == selector ||
         (absl::StartsWith(task_id, selector) && task_id.size() > selector.size() && task_id[selector.size()] == '/');
}

int64_t TimestampMillis(const google::protobuf::Timestamp& t) { return t.seconds() * 1000 + t.nanos() / 1'000'000; }

void ApplyJobChanges(assay::v1::Job update, assay::v1::Job* seen) {
  google::protobuf::RepeatedPtrField<assay::v1::Task> tasks;
  tasks.Swap(seen->mutable_tasks());
  const int count = std::max(update.task_count(), tasks.size());
  for (assay::v1::Task& task : *update.mutable_tasks()) {
    const int index = task.index();
    if (index < 0 || index >= count) continue;
    while (tasks.size() <= index) tasks.Add();
    tasks[index] = std::move(task);
  }
  update.clear_tasks();
  *seen = std::move(update);
  seen->mutable_tasks()->Swap(&tasks);
}

std::string BranchOf(const assay::v1::Job& job) {
  auto it = job.labels().find("branch");
  return it == job.labels().end() ? "" : it->second;
}

}  // namespace assay
