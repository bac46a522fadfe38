#include "coordinator/scheduler.h"

#include <set>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"

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

void Scheduler::AddWorker(const std::string& id, std::vector<std::string> labels, int slots, int prefetch) {
  Worker& w = workers_[id];
  w.labels = std::move(labels);
  w.slots = std::max(slots, 0);
  w.prefetch = std::max(prefetch, 0);
}

std::vector<Lease> Scheduler::RemoveWorker(const std::string& id) {
  std::vector<Lease> lost;
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (it->second.worker == id) {
      lost.push_back(it->second);
      Ended(it->second);
      leases_.erase(it++);
    } else {
      ++it;
    }
  }
  workers_.erase(id);
  std::sort(lost.begin(), lost.end(), [](const Lease& a, const Lease& b) { return a.task < b.task; });
  return lost;
}

void Scheduler::SetEligible(const std::string& id, bool eligible) {
  if (auto it = workers_.find(id); it != workers_.end()) it->second.eligible = eligible;
}

void Scheduler::SetJobPolicy(uint64_t job, int priority, int max_parallel) {
  policies_[job] = Policy{priority, std::max(max_parallel, 0)};
  if (auto it = jobs_.find(job); it != jobs_.end()) {
    it->second.priority = priority;
    it->second.max_parallel = std::max(max_parallel, 0);
  }
}

Scheduler::JobQueue& Scheduler::JobOf(uint64_t job) {
  auto [it, inserted] = jobs_.try_emplace(job);
  if (inserted) {
    if (auto p = policies_.find(job); p != policies_.end()) {
      it->second.priority = p->second.priority;
      it->second.max_parallel = p->second.max_parallel;
    }
  }
  return it->second;
}

void Scheduler::Enqueue(TaskKey task, std::vector<std::string> required_labels, int64_t expected_ms,
                        std::string preferred_worker) {
  auto& queue = JobOf(task.job).queue;
  Queued q{task, std::move(required_labels), clock_->Now(), std::max<int64_t>(expected_ms, 0),
           std::move(preferred_worker)};
  // Before the first task expected to take less (unknown ones count as least); after equals.
  auto at = q.expected_ms == 0 ? queue.end()
                               : std::find_if(queue.begin(), queue.end(),
                                              [&](const Queued& other) { return other.expected_ms < q.expected_ms; });
  queue.insert(at, std::move(q));
  ++queued_;
}

bool Scheduler::Dequeue(TaskKey task) {
  auto j = jobs_.find(task.job);
  if (j == jobs_.end()) return false;
  auto& queue = j->second.queue;
  auto it = std::find_if(queue.begin(), queue.end(), [&](const Queued& q) { return q.task == task; });
  if (it == queue.end()) return false;
  queue.erase(it);
  --queued_;
  return true;
}

int Scheduler::running_of(uint64_t job) const {
  auto it = jobs_.find(job);
  return it == jobs_.end() ? 0 : it->second.running;
}

void Scheduler::Ended(const Lease& lease) {
  auto w = workers_.find(lease.worker);
  if (w != workers_.end() && w->second.busy > 0) w->second.busy--;
  if (w != workers_.end()) {
    auto& held = w->second.held;
    if (lease.held) {
      held.erase(std::remove_if(held.begin(), held.end(), [&](const Held& h) { return h.task == lease.task; }),
                 held.end());
    } else if (!held.empty()) {
      // A slot of the worker is free: it has started the oldest task it held.
      if (auto it = leases_.find(held.front().task); it != leases_.end()) it->second.held = false;
      held.pop_front();
    }
  }
  auto j = jobs_.find(lease.task.job);
  if (j != jobs_.end() && j->second.running > 0) j->second.running--;
}

void Scheduler::DropIfIdle(uint64_t job) {
  auto it = jobs_.find(job);
  if (it != jobs_.end() && it->second.queue.empty() && it->second.running == 0) jobs_.erase(it);
}

std::vector<Lease> Scheduler::Dispatch() {
  std::vector<Lease> granted;
  for (auto it = jobs_.begin(); it != jobs_.end();) {  // jobs with nothing queued or running
    it = it->second.queue.empty() && it->second.running == 0 ? jobs_.erase(it) : std::next(it);
  }
  DispatchPass(0, &granted);
  // Prefetch: only once no matching slot is free anywhere, so a held task never waits while a slot
  // it could use stands idle (and Reclaim takes it back should one free up).
  DispatchPass(1, &granted);
  return granted;
}

void Scheduler::DispatchPass(int extra, std::vector<Lease>* granted) {
  const absl::Time now = clock_->Now();
  // With every slot busy there is nothing to do: a long queue is not walked on every result.
  int free = 0;
  for (const auto& [id, w] : workers_) free += std::max(0, Capacity(w, extra) - w.busy);
  std::set<uint64_t> stuck;  // jobs none of whose queued tasks fits a free slot now
  while (free > 0 && queued_ > 0) {
    // The job that gets the next slot: highest priority, then fewest running, then oldest.
    JobQueue* pick = nullptr;
    uint64_t pick_id = 0;
    for (auto& [id, q] : jobs_) {
      if (q.queue.empty() || stuck.contains(id) || (q.max_parallel > 0 && q.running >= q.max_parallel)) continue;
      if (pick == nullptr || q.priority > pick->priority ||
          (q.priority == pick->priority && q.running < pick->running)) {
        pick = &q;
        pick_id = id;
      }
    }
    if (pick == nullptr) break;
    bool placed = false;
    for (auto it = pick->queue.begin(); it != pick->queue.end(); ++it) {
      auto [best_id, best] = WorkerFor(*it, extra);
      if (best == nullptr) continue;
      const auto chosen = *best_id == it->preferred ? it : LocalTaskFor(*best_id, *best, pick->queue, it);
      if (chosen != it) ++it->passed_over;
      const bool held = best->busy >= best->slots;
      best->busy++;
      pick->running++;
      --free;
      Lease lease{chosen->task, *best_id, RandomHex(8), now + lease_ttl_, held};
      if (held) best->held.push_back(Held{chosen->task, chosen->required});
      leases_[chosen->task] = lease;
      granted->push_back(std::move(lease));
      pick->queue.erase(chosen);
      --queued_;
      placed = true;
      break;
    }
    if (!placed) stuck.insert(pick_id);
  }
}

std::pair<const std::string*, Scheduler::Worker*> Scheduler::WorkerFor(const Queued& task, int extra) {
  if (!task.preferred.empty()) {
    auto it = workers_.find(task.preferred);
    if (it != workers_.end() && it->second.busy < Capacity(it->second, extra) && LabelsMatch(task.required, it->second.labels)) {
      return {&it->first, &it->second};
    }
  }
  Worker* best = nullptr;
  const std::string* best_id = nullptr;
  for (auto& [id, w] : workers_) {
    if (w.busy >= Capacity(w, extra) || !LabelsMatch(task.required, w.labels)) continue;
    if (best == nullptr || Capacity(w, extra) - w.busy > Capacity(*best, extra) - best->busy) {
      best = &w;
      best_id = &id;
    }
  }
  return {best_id, best};
}

std::deque<Scheduler::Queued>::iterator Scheduler::LocalTaskFor(const std::string& worker_id, const Worker& worker,
                                                                std::deque<Queued>& queue,
                                                                std::deque<Queued>::iterator head) {
  if (head->passed_over >= kMaxPassedOver) return head;
  // Worth it only for a task another worker could take (with one worker every task is local).
  auto elsewhere = [&](const Queued& q) {
    return std::any_of(workers_.begin(), workers_.end(), [&](const auto& w) {
      return w.first != worker_id && w.second.eligible && LabelsMatch(q.required, w.second.labels);
    });
  };
  auto it = std::next(head);
  for (int looked = 0; it != queue.end() && looked < kLocalLookAhead; ++it, ++looked) {
    if (it->preferred == worker_id && LabelsMatch(it->required, worker.labels) && elsewhere(*it)) return it;
  }
  return head;
}

std::vector<Lease> Scheduler::Reclaim() {
  std::vector<Lease> out;
  if (std::none_of(workers_.begin(), workers_.end(), [](const auto& kv) { return !kv.second.held.empty(); })) {
    return out;
  }
  // A worker that may take no new task (cordoned, draining, stopping) starts none it holds either.
  for (auto& [id, w] : workers_) {
    if (w.eligible) continue;
    for (Held& h : w.held) {
      auto it = leases_.find(h.task);
      if (h.reclaiming || it == leases_.end()) continue;
      h.reclaiming = true;
      out.push_back(it->second);
    }
  }
  for (auto& [id, idle] : workers_) {
    if (!idle.eligible || idle.busy >= idle.slots) continue;
    int free = idle.slots - idle.busy;
    for (auto& [other_id, other] : workers_) {
      if (free == 0) break;
      if (&other == &idle) continue;
      for (Held& h : other.held) {
        if (free == 0) break;
        if (h.reclaiming || !LabelsMatch(h.required, idle.labels)) continue;
        auto it = leases_.find(h.task);
        if (it == leases_.end()) continue;
        h.reclaiming = true;
        --free;
        out.push_back(it->second);
      }
    }
  }
  return out;
}

bool Scheduler::GiveBack(TaskKey task, const std::string& lease_id, std::vector<std::string> required_labels) {
  auto it = leases_.find(task);
  if (it == leases_.end() || it->second.lease_id != lease_id) return false;
  // Taken out of its worker's held tasks by name: no other held task of it has started.
  Lease ended = it->second;
  ended.held = true;
  Ended(ended);
  leases_.erase(it);
  // Handed back for a slot free elsewhere: no preference for where it was.
  JobOf(task.job).queue.push_front(Queued{task, std::move(required_labels), clock_->Now(), 0, "", 0});
  ++queued_;
  return true;
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
  const uint64_t job = it->second.task.job;
  Ended(it->second);
  leases_.erase(it);
  DropIfIdle(job);
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
      Ended(it->second);
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
  for (auto& [job, q] : jobs_) {
    for (auto it = q.queue.begin(); it != q.queue.end();) {
      if (it->queued_at < queued_before && !satisfiable(it->required)) {
        out.emplace_back(it->task, std::move(it->required));
        it = q.queue.erase(it);
        --queued_;
      } else {
        ++it;
      }
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
