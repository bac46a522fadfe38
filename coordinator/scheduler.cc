#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace assay {

bool LabelsMatch(const std::vector<std::string>& required, const std::vector<std::string>& offered) {
  for (const std::string& want : required) {
    bool found = false;
    for (const std::string& have : offered) {
      if (have == want || (want.find('=') == std::string::npos && absl::StartsWith(have, want + "="))) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

void Scheduler::AddWorker(const std::string& id, std::vector<std::string> labels, int slots) {
  Worker& w = workers_[id];
  w.labels = std::move(labels);
  w.slots = std::max(slots, 0);
}

std::vector<Lease> Scheduler::RemoveWorker(const std::string& id) {
  std::vector<Lease> lost;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.worker == id) {
      lost.push_back(it->second);
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  workers_.erase(id);
  std::sort(lost.begin(), lost.end(), [](const Lease& a, const Lease& b) { return a.task < b.task; });
  return lost;
}

void Scheduler::Enqueue(TaskKey task, std::vector<std::string> required_labels) {
  queue_.push_back(Queued{task, std::move(required_labels), clock_->Now()});
}

bool Scheduler::Dequeue(TaskKey task) {
  auto it = std::find_if(queue_.begin(), queue_.end(), [&](const Queued& q) { return q.task == task; });
  if (it == queue_.end()) return false;
  queue_.erase(it);
  return true;
}

std::vector<Lease> Scheduler::Dispatch() {
  std::vector<Lease> granted;
  const absl::Time now = clock_->Now();
  // With every slot busy there is nothing to do: a long queue is not walked on every result.
  int free = 0;
  for (const auto& [id, w] : workers_) free += std::max(0, w.slots - w.busy);
  for (auto it = queue_.begin(); it != queue_.end() && free > 0;) {
    // The matching worker with the most free slots, so work spreads across hosts.
    Worker* best = nullptr;
    const std::string* best_id = nullptr;
    for (auto& [id, w] : workers_) {
      if (w.busy >= w.slots || !LabelsMatch(it->required, w.labels)) continue;
      if (best == nullptr || w.slots - w.busy > best->slots - best->busy) {
        best = &w;
        best_id = &id;
      }
    }
    if (best == nullptr) {
      ++it;
      continue;
    }
    best->busy++;
    --free;
    Lease lease{it->task, *best_id, RandomHex(8), now + lease_ttl_};
    leases_[it->task] = lease;
    granted.push_back(std::move(lease));
    it = queue_.erase(it);
  }
  return granted;
}

absl::Status Scheduler::CheckLease(TaskKey task, const std::string& lease_id) const {
  auto it = leases_.find(task);
  if (it == leases_.end() || it->second.lease_id != lease_id) {
    return absl::FailedPreconditionError(
        absl::StrCat("lease ", lease_id, " for task ", task.job, ":", task.index, " is not live (expired or replaced)"));
  }
  return absl::OkStatus();
}

bool Scheduler::Release(TaskKey task, const std::string& lease_id) {
  auto it = leases_.find(task);
  if (it == leases_.end() || it->second.lease_id != lease_id) return false;
  auto w = workers_.find(it->second.worker);
  if (w != workers_.end() && w->second.busy > 0) w->second.busy--;
  leases_.erase(it);
  return true;
}

int Scheduler::Renew(const std::string& worker, const std::vector<std::pair<TaskKey, std::string>>& leases) {
  const absl::Time expires = clock_->Now() + lease_ttl_;
  int renewed = 0;
  for (const auto& [task, lease_id] : leases) {
    auto it = leases_.find(task);
    if (it != leases_.end() && it->second.lease_id == lease_id && it->second.worker == worker) {
      it->second.expires = expires;
      ++renewed;
    }
  }
  return renewed;
}

std::vector<Lease> Scheduler::ExpireLeases() {
  const absl::Time now = clock_->Now();
  std::vector<Lease> expired;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.expires < now) {
      auto w = workers_.find(it->second.worker);
      if (w != workers_.end() && w->second.busy > 0) w->second.busy--;
      expired.push_back(it->second);
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  std::sort(expired.begin(), expired.end(), [](const Lease& a, const Lease& b) { return a.task < b.task; });
  return expired;
}

std::vector<std::pair<TaskKey, std::vector<std::string>>> Scheduler::TakeUnschedulable(
    absl::Time queued_before, const std::function<bool(const std::vector<std::string>&)>& satisfiable) {
  std::vector<std::pair<TaskKey, std::vector<std::string>>> out;
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (it->queued_at < queued_before && !satisfiable(it->required)) {
      out.emplace_back(it->task, std::move(it->required));
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

bool Scheduler::AnyWorkerCouldRun(const std::vector<std::string>& required) const {
  return std::any_of(workers_.begin(), workers_.end(),
                     [&](const auto& kv) { return kv.second.slots > 0 && LabelsMatch(required, kv.second.labels); });
}

int Scheduler::free_slots(const std::string& worker) const {
  auto it = workers_.find(worker);
  return it == workers_.end() ? 0 : it->second.slots - it->second.busy;
}

std::vector<TaskKey> Scheduler::running_on(const std::string& worker) const {
  std::vector<TaskKey> out;
  for (const auto& [task, lease] : leases_) {
    if (lease.worker == worker) out.push_back(task);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace assay
