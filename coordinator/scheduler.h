// Matches queued tasks to free worker slots and tracks the leases that result.
// Pure logic: no locking, no I/O; the caller serializes calls and supplies time through a Clock.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/base/clock.h"

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
  // Granted beyond the worker's slots (prefetched): the worker holds it until a slot frees. As far
  // as the scheduler knows it has not started: the worker starts held tasks in the order it got
  // them, one each time a task of it ends.
  bool held = false;
};

// True when every required label is offered: "k=v" needs that exact label, "k" needs "k" or any "k=...".
bool LabelsMatch(const std::vector<std::string>& required, const std::vector<std::string>& offered);

class Scheduler {
 public:
  Scheduler(const Clock* clock, absl::Duration lease_ttl) : clock_(clock), lease_ttl_(lease_ttl) {}

  // `prefetch`: tasks the worker takes beyond its slots, started as its slots free. They are granted
  // only once every matching worker's slots are full, and asked back (Reclaim) when a slot frees
  // elsewhere before they started.
  void AddWorker(const std::string& id, std::vector<std::string> labels, int slots, int prefetch = 0);
  // Forgets a worker; returns the leases it held, now void.
  std::vector<Lease> RemoveWorker(const std::string& id);
  bool HasWorker(const std::string& id) const { return workers_.contains(id); }
  // A worker that is not eligible (cordoned, draining, stopping, unresponsive, or with a host
  // problem) keeps its running tasks and gets no new ones; those it holds unstarted are asked back.
  void SetEligible(const std::string& id, bool eligible);

  // How a job shares the farm: higher `priority` first; among equal priorities, free slots go to the
  // job with the fewest running tasks (round-robin between jobs); `max_parallel` > 0 caps its running
  // tasks. Jobs without a policy have priority 0 and no cap.
  void SetJobPolicy(uint64_t job, int priority, int max_parallel);
  // The job is over: its policy is dropped.
  void ForgetJob(uint64_t job) { policies_.erase(job); }
  // `expected_ms`: how long the task and the longest chain of tasks waiting for it ran last time
  // (0: not known). A job's queue keeps its known tasks longest first, ahead of unknown ones (which
  // keep their order): the longest work starts first and a job's last steps are its short ones.
  // `preferred_worker`: the worker that has most of the task's inputs on its disk (it ran the step
  // whose outputs they are): the task goes there when that worker has room, and a slot freed there
  // may go to it ahead of the tasks queued before it in its job (see kMaxPassedOver). Never a wait:
  // with no room there, it goes wherever there is.
  void Enqueue(TaskKey task, std::vector<std::string> required_labels, int64_t expected_ms = 0,
               std::string preferred_worker = "");
  // How often a task may be passed over for a later one of its job that has its inputs on the free
  // slot's worker, and how far down its job's queue such a task is looked for.
  static constexpr int kMaxPassedOver = 4;
  static constexpr int kLocalLookAhead = 64;
  // Takes a task off the queue (cancel); false if it was not queued.
  bool Dequeue(TaskKey task);

  // Grants as many queued tasks as free, matching slots allow: by job priority, then to the job with
  // the fewest running tasks, each job's tasks in queue order (Enqueue). Then, with every matching slot busy,
  // the same way to the workers' prefetch (held leases).
  std::vector<Lease> Dispatch();
  // Held leases to ask back from their workers (CancelTask.if_not_started) and queue again: those a
  // worker with a free slot, and nothing queued for it, could run now (a free slot is matched to one
  // lease at most), and those of workers that are not eligible. A lease is named once.
  std::vector<Lease> Reclaim();

  // OK when `lease_id` is the live lease of `task`; FAILED_PRECONDITION for a stale or unknown one.
  absl::Status CheckLease(TaskKey task, const std::string& lease_id) const;
  // Ends a lease (task finished or given up); frees the worker's slot. False if it was not live.
  bool Release(TaskKey task, const std::string& lease_id);
  // Extends the named leases of a worker to now + ttl. Returns how many were renewed.
  int Renew(const std::string& worker, const std::vector<std::pair<TaskKey, std::string>>& leases);
  // A lease handed back unstarted: ended like Release, and its task queued again at the head of its
  // job's queue (it was the job's next task). False if the lease was not live.
  bool GiveBack(TaskKey task, const std::string& lease_id, std::vector<std::string> required_labels);
  // Removes and returns every lease whose expiry is strictly before now.
  std::vector<Lease> ExpireLeases();

  size_t queued() const { return queued_; }
  int running_of(uint64_t job) const;
  // Takes off the queue every task queued before `queued_before` whose labels `satisfiable` says no
  // worker has; returns them with their required labels. The queue is walked only when asked.
  std::vector<std::pair<TaskKey, std::vector<std::string>>> TakeUnschedulable(
      absl::Time queued_before, const std::function<bool(const std::vector<std::string>&)>& satisfiable);
  // Queued tasks no connected worker could ever take (for messages and metrics).
  bool AnyWorkerCouldRun(const std::vector<std::string>& required) const;
  int free_slots(const std::string& worker) const;
  std::vector<TaskKey> running_on(const std::string& worker) const;

 private:
  struct Held {
    TaskKey task;
    std::vector<std::string> required;
    bool reclaiming = false;  // asked back (Reclaim)
  };
  struct Worker {
    std::vector<std::string> labels;
    int slots = 0;
    int prefetch = 0;
    int busy = 0;              // live leases, held ones included
    bool eligible = true;      // may take new tasks (SetEligible)
    std::deque<Held> held;     // its held leases, oldest first
  };
  struct Queued {
    TaskKey task;
    std::vector<std::string> required;
    absl::Time queued_at;
    int64_t expected_ms = 0;
    std::string preferred;  // the worker with its inputs ("": none)
    int passed_over = 0;    // times a later task of its job took a slot first (kMaxPassedOver)
  };

  struct JobQueue {
    std::deque<Queued> queue;  // oldest first
    int priority = 0;
    int max_parallel = 0;      // 0: no cap
    int running = 0;           // live leases
  };
  void Ended(const Lease& lease);  // a lease is gone: its worker's slot and its job's count
  struct Policy {
    int priority = 0;
    int max_parallel = 0;
  };
  JobQueue& JobOf(uint64_t job);
  void DropIfIdle(uint64_t job);
  // Grants queued tasks to workers with fewer than slots + `extra` live leases.
  void DispatchPass(int extra, std::vector<Lease>* granted);
  // How many leases `w` may hold in a pass: its slots, plus its prefetch when `extra` (none when it
  // takes no new work).
  static int Capacity(const Worker& w, int extra) { return !w.eligible ? 0 : w.slots + (extra > 0 ? w.prefetch : 0); }
  // The worker for `task` among those with room (Capacity): its preferred one, else the matching
  // worker with the most room, so work spreads across hosts. Null when none has room.
  std::pair<const std::string*, Worker*> WorkerFor(const Queued& task, int extra);
  // The task of `queue` to give the slot of `worker` that `head` (the job's next task) would take:
  // a later one that has its inputs there and that another worker could take first, unless `head`
  // was passed over often enough already.
  std::deque<Queued>::iterator LocalTaskFor(const std::string& worker_id, const Worker& worker, std::deque<Queued>& queue,
                                            std::deque<Queued>::iterator head);

  const Clock* clock_;
  absl::Duration lease_ttl_;
  std::map<std::string, Worker> workers_;
  std::map<uint64_t, JobQueue> jobs_;  // jobs with queued or running tasks
  std::map<uint64_t, Policy> policies_;  // of unfinished jobs
  size_t queued_ = 0;
  absl::flat_hash_map<TaskKey, Lease> leases_;
};

}  // namespace assay
