// JobManager's reads of jobs for the API: a job whole or without its tasks, the changes a watcher
// has not seen (WatchJob with changes_only), one task (an Execute's operation), the newest jobs.
#include <functional>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "coordinator/job_manager.h"

namespace assay {

using assay::v1::Job;
using assay::v1::Task;

namespace {

// The job without its tasks, copied without copying them.
Job WithoutTasks(Job& job) {
  google::protobuf::RepeatedPtrField<Task> tasks;
  tasks.Swap(job.mutable_tasks());
  Job copy = job;
  job.mutable_tasks()->Swap(&tasks);
  return copy;
}

}  // namespace

absl::StatusOr<Job> JobManager::ReadJob(const std::string& id, bool with_tasks, const std::function<Job(JobEntry&)>& read) {
  auto number = ParseJobId(id);
  if (!number.ok()) return number.status();
  std::optional<Job> active = Decide([&](Section& section) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> std::optional<Job> {
    JobEntry* entry = ActiveLocked(*number);
    if (entry == nullptr) return std::nullopt;
    section.NeedWritten(*entry);
    return read(*entry);
  });
  if (active.has_value()) return std::move(*active);
  return store_->LoadJob(*number, with_tasks);
}

absl::StatusOr<Job> JobManager::GetJob(const std::string& id, bool with_tasks) {
  return ReadJob(id, with_tasks, [with_tasks](JobEntry& entry) { return with_tasks ? entry.job : WithoutTasks(entry.job); });
}

absl::StatusOr<Job> JobManager::GetJobChanges(const std::string& id, uint64_t* version) {
  const uint64_t seen = *version;
  *version = 0;  // stays so when the job is no longer in memory: it comes whole from the store
  return ReadJob(id, /*with_tasks=*/true, [&](JobEntry& entry) {
    Job job = WithoutTasks(entry.job);
    for (const Task& task : entry.job.tasks()) {
      const auto index = static_cast<size_t>(task.index());
      const uint64_t changed = index < entry.task_versions.size() ? entry.task_versions[index] : 0;
      if (seen == 0 || changed > seen) *job.add_tasks() = task;
    }
    *version = entry.version;
    return job;
  });
}

absl::StatusOr<Task> JobManager::GetTask(const std::string& id, int32_t index) {
  auto job = ReadJob(id, /*with_tasks=*/true, [index](JobEntry& entry) {
    Job one = WithoutTasks(entry.job);
    if (index >= 0 && index < entry.job.tasks_size()) *one.add_tasks() = entry.job.tasks(index);
    return one;
  });
  if (!job.ok()) return job.status();
  for (const Task& task : job->tasks()) {
    if (task.index() == index) return task;
  }
  return absl::NotFoundError(absl::StrCat("job ", id, " has no task ", index));
}

absl::StatusOr<std::vector<Job>> JobManager::ListJobs(int limit) {
  auto jobs = store_->ListJobs(limit);
  if (!jobs.ok()) return jobs.status();
  Decide([&](Section& section) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (Job& job : *jobs) {
      uint64_t number = 0;
      if (!absl::SimpleAtoi(job.id(), &number)) continue;
      if (JobEntry* entry = ActiveLocked(number)) {
        section.NeedWritten(*entry);
        job = WithoutTasks(entry->job);
      }
    }
  });
  return jobs;
}

}  // namespace assay
