// JobManager's view of the fleet: the workers for `assay workers`, cordon/drain/activate, and the
// figures for the metrics.
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/job_manager.h"
#include "coordinator/queued_requirements.h"
#include "coordinator/task_rules.h"

namespace assay {

using assay::v1::Task;

JobManager::Stats JobManager::GetStats() {
  return Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Stats s;
    for (const auto& [number, entry] : jobs_) {
      if (IsFinal(entry->job.state())) continue;
      ++s.jobs_active;
      for (const Task& t : entry->job.tasks()) {
        s.tasks_pending += t.state() == assay::v1::TASK_PENDING;
        if (t.state() == assay::v1::TASK_QUEUED) {
          ++s.tasks_queued;
          ++s.tasks_queued_by_requirements[RequirementsKey(t.spec().required_labels())];
        }
        s.tasks_running += t.state() == assay::v1::TASK_RUNNING;
      }
    }
    for (const auto& [id, w] : dispatcher_.workers()) {
      if (!w.connected) continue;
      ++s.workers_connected;
      s.slots += w.hello.slots();
      s.slots_busy += static_cast<int64_t>(dispatcher_.RunningOn(id).size());
    }
    s.jobs_finished = jobs_finished_;
    s.heartbeat_seconds = heartbeat_latency_.Read();
    s.tasks_finished = tasks_finished_;
    s.state_writes = static_cast<int64_t>(commit_.groups());
    s.state_writes_synced = static_cast<int64_t>(commit_.synced_groups());
    s.state_bytes_waiting = static_cast<int64_t>(commit_.queued_bytes());
    return s;
  });
}


std::vector<assay::v1::Worker> JobManager::ListWorkers() {
  return Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<assay::v1::Worker> out;
    for (const auto& [id, w] : dispatcher_.workers()) {
      assay::v1::Worker worker;
      worker.set_id(id);
      worker.set_hostname(w.hello.hostname());
      for (const auto& l : w.hello.labels()) worker.add_labels(l);
      worker.set_slots(w.hello.slots());
      worker.set_connected(w.connected);
      worker.set_connected_at_ms(w.connected_at_ms);
      worker.set_last_seen_ms(w.last_seen_ms);
      for (const TaskKey& key : dispatcher_.RunningOn(id)) {
        if (JobEntry* entry = ActiveLocked(key.job)) {
          worker.add_running(absl::StrCat(key.job, "/", entry->job.tasks(key.index).id()));
        }
      }
      worker.set_busy(worker.running_size());
      worker.set_admin_state(dispatcher_.AdminState(id));
      worker.set_drained(worker.admin_state() == assay::v1::WORKER_DRAINING && worker.running_size() == 0);
      for (const auto& e : w.hello.executors()) worker.add_executors(e);
      worker.set_version(w.hello.version());
      worker.set_stopping(w.connected && w.stopping);
      worker.set_unresponsive(w.connected && w.unresponsive);
      out.push_back(std::move(worker));
    }
    return out;
  });
}


absl::StatusOr<assay::v1::Worker> JobManager::SetWorkerState(const std::string& worker,
                                                            assay::v1::WorkerAdminState state) {
  if (!assay::v1::WorkerAdminState_IsValid(state)) return absl::InvalidArgumentError("unknown worker state");
  absl::Status known = Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (dispatcher_.workers().contains(worker)) return absl::OkStatus();
    std::vector<std::string> ids;
    for (const auto& [id, w] : dispatcher_.workers()) ids.push_back(id);
    return absl::NotFoundError(absl::StrCat("unknown worker '", worker, "' (known: ",
                                            ids.empty() ? "none" : absl::StrJoin(ids, ", "), ")"));
  });
  if (!known.ok()) return known;
  // Written (fsynced) before it takes effect, outside the lock.
  if (absl::Status s = store_->PutWorkerState(worker, state); !s.ok()) return s;
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    dispatcher_.SetAdminState(worker, state);
    DispatchLocked();
  });
  spdlog::info("worker {} is now {}", worker, assay::v1::WorkerAdminState_Name(state));
  for (auto& w : ListWorkers()) {
    if (w.id() == worker) return w;
  }
  return absl::NotFoundError(absl::StrCat("unknown worker '", worker, "'"));
}


}  // namespace assay
