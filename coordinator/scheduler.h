// Matches queued tasks to free worker slots and tracks the leases that result.
// Pure logic: no locking, no I/O; the caller serializes calls and supplies time through a Clock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace assay {

struct TaskKey {
  uint64_t job = 0;
  int32_t index = 0;
  friend bool operator==(const TaskKey&, const TaskKey&) = default;
  friend auto operator<=>(const TaskKey&, const TaskKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const TaskKey& k) {
    return H::combine(std::move(h), k.job, k.index);
  }
};

struct Lease {
  TaskKey task;
  std::string worker;
  std::string lease_id;
  absl::Time expires;
};

// True when every required label is offered: "k=v" needs that exact label, "k" needs "k" or any "k=...".
bool LabelsMatch(const std::vector<std::string>& required, const std::vector<std::string>& offered);

class Scheduler {
 public:
  Scheduler(const Clock* clock, absl::Duration lease_ttl) : clock_(clock), lease_ttl_(lease_ttl) {}

  void AddWorker(const std::string& id, std::vector<std::string> labels, int slots);
  // Forgets a worker; returns the leases it held, now void.
  std::vector<Lease> RemoveWorker(const std::string& id);
  bool HasWorker(const std::string& id) const { return workers_.contains(id); }

  void Enqueue(TaskKey task, std::vector<std::string> required_labels);
  // Takes a task off the queue (cancel); false if it was not queued.
  bool Dequeue(TaskKey task);

  // Grants as many queued tasks as free, matching slots allow, oldest first.
  std::vector<Lease> Dispatch();

  // OK when `lease_id` is the live lease of `task`; FAILED_PRECONDITION for a stale or unknown one.
  absl::Status CheckLease(TaskKey task, const std::string& lease_id) const;
  // Ends a lease (task finished or given up); frees the worker's slot. False if it was not live.
  bool Release(TaskKey task, const std::string& lease_id);
  // Extends the named leases of a worker to now + ttl. Returns how many were renewed.
  int Renew(const std::string& worker, const std::vector<std::pair<TaskKey, std::string>>& leases);
  // Removes and returns every lease whose expiry is strictly before now.
  std::vector<Lease> ExpireLeases();

  size_t queued() const { return queue_.size(); }
  // Takes off the queue every task queued before `queued_before` whose labels `satisfiable` says no
  // worker has; returns them with their required labels. The queue is walked only when asked.
  std::vector<std::pair<TaskKey, std::vector<std::string>>> TakeUnschedulable(
      absl::Time queued_before, const std::function<bool(const std::vector<std::string>&)>& satisfiable);
  // Queued tasks no connected worker could ever take (for messages and metrics).
  bool AnyWorkerCouldRun(const std::vector<std::string>& required) const;
  int free_slots(const std::string& worker) const;
  std::vector<TaskKey> running_on(const std::string& worker) const;

 private:
  struct Worker {
    std::vector<std::string> labels;
    int slots = 0;
    int busy = 0;
  };
  struct Queued {
    TaskKey task;
    std::vector<std::string> required;
    absl::Time queued_at;
  };

  const Clock* clock_;
  absl::Duration lease_ttl_;
  std::map<std::string, Worker> workers_;
  std::deque<Queued> queue_;
  absl::flat_hash_map<TaskKey, Lease> leases_;
};

}  // namespace assay
