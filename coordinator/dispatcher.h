// Everything about handing work to workers: the connected workers and their sessions, the
// scheduler's queue and leases, and the prepared action of every queued or running task with the
// blobs pinned for it (from the moment it is queued until it is final).
//
// Not thread-safe and does no I/O: JobManager calls it under its lock. Messages are not sent from
// here: Dispatch returns grants, and JobManager sends them once the change is written.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "assay/v1/admin.pb.h"
#include "assay/v1/worker_link.pb.h"
#include "common/base/clock.h"
#include "common/cas/blob_pinner.h"
#include "common/digest/digest.h"
#include "coordinator/scheduler.h"
#include "coordinator/worker_session.h"

namespace assay {

class Dispatcher {
 public:
  // A queued task's action, kept in memory so dispatch reads no blob, and the blobs pinned for it.
  struct ReadyAction {
    reapi::Action action;
    reapi::Command command;
    std::vector<Digest> pins;
    std::vector<reapi::Directory> input_tree;  // small trees only (ActionBuilder::Prepared)
    std::vector<assay::v1::StepCacheUse> caches;  // restored before the run, saved after it
  };
  struct WorkerState {
    assay::v1::WorkerHello hello;
    std::shared_ptr<WorkerSession> session;  // null while disconnected
    int64_t connected_at_ms = 0;
    int64_t last_seen_ms = 0;
    bool connected = false;
    bool stopping = false;  // the worker said it is stopping (SIGTERM); until it connects again
    // A lease of it expired without a heartbeat (a cut link, a hung host): no new tasks until it is
    // heard from again, or every lease TTL it would swallow more.
    bool unresponsive = false;
    // Its host could not run a task (its work disk is full): no new tasks until its next heartbeat.
    bool host_problem = false;
  };
  // A task granted to a worker. `action` is null if the task's action is missing (a bug: the task
  // should fail rather than run something else).
  struct Grant {
    Lease lease;
    std::shared_ptr<WorkerSession> session;
    const ReadyAction* action = nullptr;
  };

  // `pinner` may be null (nothing is evicted).
  Dispatcher(const Clock* clock, absl::Duration lease_ttl, BlobPinner* pinner);
  ~Dispatcher();  // lets go of every pin

  // --- workers
  // Registers a worker's session. If the same worker was still connected (it reconnected before its
  // old stream noticed), the old session is closed and the leases it held are returned, now void.
  std::vector<Lease> Connect(const assay::v1::WorkerHello& hello, std::shared_ptr<WorkerSession> session);
  // A session ended: returns false if it had already been replaced (nothing changes); otherwise the
  // leases it held, now void, in `lost`.
  bool Disconnect(const std::shared_ptr<WorkerSession>& session, std::vector<Lease>* lost);
  // Renews the named leases of a worker and notes that it is alive. True if it had been unresponsive
  // (it may take tasks again).
  bool Heartbeat(const std::string& worker, const std::vector<std::pair<TaskKey, std::string>>& leases);
  // The live session of a connected worker, or null.
  std::shared_ptr<WorkerSession> SessionOf(const std::string& worker) const;
  const std::map<std::string, WorkerState>& workers() const { return workers_; }
  bool AnyWorkerCouldRun(const std::vector<std::string>& required_labels) const {
    return scheduler_.AnyWorkerCouldRun(required_labels);
  }

  // The worker is stopping: it gets no new tasks (until a new session of it connects).
  void SetStopping(const std::string& worker);
  // Renews no lease and gets no new task until its next heartbeat.
  void SetUnresponsive(const std::string& worker);
  // Its host could not run a task (TaskResult.host_problem): no new task until its next heartbeat.
  void SetHostProblem(const std::string& worker);

  // --- admin states (cordon, drain), kept across connects
  void SetAdminState(const std::string& worker, assay::v1::WorkerAdminState state);
  assay::v1::WorkerAdminState AdminState(const std::string& worker) const {
    auto it = admin_states_.find(worker);
    return it == admin_states_.end() ? assay::v1::WORKER_ACTIVE : it->second;
  }

  // --- tasks no worker can run
  // "" when a worker connected now, or seen within `grace`, offers `labels`; otherwise why not,
  // naming the missing labels and the closest workers (those missing the fewest).
  std::string WhyUnschedulable(const std::vector<std::string>& labels, absl::Duration grace) const;
  // Takes off the queue the tasks queued more than `grace` ago that no such worker could run, each
  // with that message.
  std::vector<std::pair<TaskKey, std::string>> TakeUnschedulable(absl::Duration grace);

  // --- tasks
  // How a job shares the slots (Scheduler::SetJobPolicy); ForgetJob once it is over.
  void SetJobPolicy(uint64_t job, int priority, int max_parallel) { scheduler_.SetJobPolicy(job, priority, max_parallel); }
  void ForgetJob(uint64_t job) { scheduler_.ForgetJob(job); }
  // Queues a task for the first time with its prepared action (its pins are now the dispatcher's);
  // `expected_ms` orders it in its job's queue, and it goes to `preferred_worker` (the one with its
  // inputs) when that one has room (Scheduler::Enqueue).
  void Queue(TaskKey task, std::vector<std::string> required_labels, ReadyAction action, int64_t expected_ms = 0,
             std::string preferred_worker = "");
  // Queues a task again (retry, lost worker); its action is kept from the first time.
  void Requeue(TaskKey task, std::vector<std::string> required_labels, int64_t expected_ms = 0);
  // Takes a task off the queue (cancel); false if it was not queued.
  bool Dequeue(TaskKey task) { return scheduler_.Dequeue(task); }
  // The task is final: its action is dropped and its pins let go.
  void Forget(TaskKey task);
  // Grants queued tasks to free, matching slots, then to the workers' prefetch (Scheduler::Dispatch).
  std::vector<Grant> Dispatch();
  // Prefetched tasks to ask back from their workers for free slots elsewhere (Scheduler::Reclaim).
  std::vector<Lease> Reclaim() { return scheduler_.Reclaim(); }
  // A task its worker handed back unstarted goes back to the head of its job's queue.
  bool GiveBack(TaskKey task, const std::string& lease_id, std::vector<std::string> required_labels) {
    return scheduler_.GiveBack(task, lease_id, std::move(required_labels));
  }
  absl::Status CheckLease(TaskKey task, const std::string& lease_id) const { return scheduler_.CheckLease(task, lease_id); }
  bool Release(TaskKey task, const std::string& lease_id) { return scheduler_.Release(task, lease_id); }
  std::vector<Lease> ExpireLeases() { return scheduler_.ExpireLeases(); }
  std::vector<TaskKey> RunningOn(const std::string& worker) const { return scheduler_.running_on(worker); }
  size_t queued() const { return scheduler_.queued(); }
  size_t actions() const { return actions_.size(); }

 private:
  const Clock* clock_;
  BlobPinner* pinner_;
  Scheduler scheduler_;
  std::map<std::string, WorkerState> workers_;
  std::map<TaskKey, ReadyAction> actions_;  // of queued and running tasks
  std::map<std::string, assay::v1::WorkerAdminState> admin_states_;  // workers not ACTIVE

  // Whether the worker may get new tasks: active, not stopping, not unresponsive.
  void UpdateEligibility(const std::string& worker);
};

}  // namespace assay
