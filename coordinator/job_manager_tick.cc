// JobManager's ticker (Tick, called periodically): watchers poked so durations stay current, tasks no
// worker can run failed after the grace period, leases not renewed expired.
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "coordinator/job_manager.h"
#include "coordinator/task_rules.h"

namespace assay {

using assay::v1::Task;

void JobManager::Tick() {
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    // Watchers of unfinished jobs hear from us about once a second, so running durations stay current.
    if (watchers_.PokeDue(clock_->Now())) {
      for (auto& [number, entry] : jobs_) {
        if (!IsFinal(entry->job.state())) watchers_.Poke(number);
      }
      FailUnschedulableLocked();
      CancelAbandonedLocked();
      CloseIdleJobsLocked();
    }
    ExpireLeasesLocked();
    DispatchLocked();
  });
}

void JobManager::FailUnschedulableLocked() {
  // A task that no worker connected or seen within the grace period could run fails, naming the
  // labels it needs, instead of waiting forever.
  for (const auto& [key, why] : dispatcher_.TakeUnschedulable(options_.unschedulable_grace)) {
    JobEntry* entry = ActiveLocked(key.job);
    if (entry == nullptr) continue;
    Task* task = entry->job.mutable_tasks(key.index);
    if (task->state() != assay::v1::TASK_QUEUED) continue;
    const std::string message = absl::StrCat(why, " (waited ", absl::FormatDuration(options_.unschedulable_grace), ")");
    SystemLogLocked(entry, *task, message);
    FinishTaskLocked(entry, task, assay::v1::TASK_FAILED, message);
    AdvanceLocked(entry);
  }
}

void JobManager::ExpireLeasesLocked() {
  for (const Lease& lease : dispatcher_.ExpireLeases()) {
    dispatcher_.SetUnresponsive(lease.worker);
    JobEntry* entry = ActiveLocked(lease.task.job);
    if (entry == nullptr) continue;
    Task* task = entry->job.mutable_tasks(lease.task.index);
    if (task->state() != assay::v1::TASK_RUNNING) continue;
    if (auto session = dispatcher_.SessionOf(lease.worker)) {
      SendLocked(session, CancelMessage(entry->job, *task, lease.lease_id, "lease expired"));
    }
    RequeueLostLocked(entry, task, absl::StrCat("lease on worker ", lease.worker, " expired (no heartbeat)"));
  }
}

}  // namespace assay
