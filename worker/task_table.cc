#include "worker/task_table.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace assay {

std::string TaskTable::Key(const assay::v1::LeaseRef& lease) { return absl::StrCat(lease.job_id(), "/", lease.task_id()); }

RunningTask* TaskTable::FindLocked(const assay::v1::LeaseRef& lease) {
  auto it = tasks_.find(Key(lease));
  if (it == tasks_.end()) return nullptr;
  const assay::v1::LeaseRef& held = it->second.lease;
  if (lease.attempt() != 0 && held.attempt() != lease.attempt()) return nullptr;
  if (!lease.lease_id().empty() && held.lease_id() != lease.lease_id()) return nullptr;
  return &it->second;
}

std::vector<assay::v1::LeaseRef> TaskTable::Leases() {
  std::vector<assay::v1::LeaseRef> leases;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, task] : tasks_) {
    if (!task.done) leases.push_back(task.lease);
  }
  return leases;
}

std::vector<RunningTask> TaskTable::TakeDoneAndReplaced(const assay::v1::LeaseRef& lease) {
  const std::string key = Key(lease);
  std::vector<RunningTask> taken;
  absl::MutexLock lock(&mu_);
  for (auto it = tasks_.begin(); it != tasks_.end();) {
    if (it->second.done || it->first == key) {
      if (!it->second.done) spdlog::warn("task {} assigned again; the older attempt is cancelled", key);
      it->second.cancel->Cancel();
      taken.push_back(std::move(it->second));
      it = tasks_.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

void TaskTable::Add(const assay::v1::LeaseRef& lease, std::shared_ptr<CancelToken> cancel,
                    const std::function<void(RunningTask*)>& start) {
  absl::MutexLock lock(&mu_);
  RunningTask& task = tasks_[Key(lease)];
  task.lease = lease;
  task.cancel = std::move(cancel);
  start(&task);
}

bool TaskTable::WithTask(const assay::v1::LeaseRef& lease, const std::function<void(RunningTask*)>& fn) {
  absl::MutexLock lock(&mu_);
  RunningTask* task = FindLocked(lease);
  if (task == nullptr) return false;
  fn(task);
  return true;
}

void TaskTable::MarkDone(const assay::v1::LeaseRef& lease) {
  absl::MutexLock lock(&mu_);
  if (RunningTask* task = FindLocked(lease)) task->done = true;
}

std::vector<RunningTask> TaskTable::CancelAndTakeAll() {
  std::vector<RunningTask> taken;
  absl::MutexLock lock(&mu_);
  for (auto& [key, task] : tasks_) {
    task.cancel->Cancel();
    taken.push_back(std::move(task));
  }
  tasks_.clear();
  return taken;
}

}  // namespace assay
