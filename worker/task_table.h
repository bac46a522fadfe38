// The tasks a worker runs, each on a thread of its own, by "job/task" (one attempt of a task at a
// time). Owned by the worker agent; the session adds and cancels tasks as the coordinator says,
// heartbeats read their leases, and a task's thread marks it done when its result is sent. Threads
// are joined outside the table's lock.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "assay/v1/worker_link.pb.h"
#include "worker/executor.h"

namespace assay {

// A task this worker runs, on a thread of its own.
struct RunningTask {
  assay::v1::LeaseRef lease;
  std::shared_ptr<CancelToken> cancel;
  std::thread thread;
  uint64_t ticket = 0;  // its place in the worker's SlotGate
  bool done = false;    // its result was sent; its thread is ending
};

class TaskTable {
 public:
  TaskTable() = default;
  TaskTable(const TaskTable&) = delete;
  TaskTable& operator=(const TaskTable&) = delete;

  // The leases of the tasks not done yet (a heartbeat's).
  std::vector<assay::v1::LeaseRef> Leases();

  // Takes out the tasks that are done, and a running older attempt of `lease`'s task (cancelled, and
  // logged), for the caller to join outside the lock before it adds the new one.
  std::vector<RunningTask> TakeDoneAndReplaced(const assay::v1::LeaseRef& lease);

  // Adds the task `lease` names; `start` sets its ticket and starts its thread, under the table's
  // lock (so that the thread finds it to mark it done).
  void Add(const assay::v1::LeaseRef& lease, std::shared_ptr<CancelToken> cancel,
           const std::function<void(RunningTask*)>& start);

  // Calls `fn` under the table's lock with the task `lease` names (the same task, attempt and lease;
  // an attempt of 0 or an empty lease id matches any). False when there is none.
  bool WithTask(const assay::v1::LeaseRef& lease, const std::function<void(RunningTask*)>& fn);

  // The task's result was sent (its exact lease: a newer attempt's entry stays running).
  void MarkDone(const assay::v1::LeaseRef& lease);

  // Cancels every task and takes them all out, for the caller to join (the session ended).
  std::vector<RunningTask> CancelAndTakeAll();

 private:
  static std::string Key(const assay::v1::LeaseRef& lease);
  // The task `lease` names (see WithTask), or null.
  RunningTask* FindLocked(const assay::v1::LeaseRef& lease) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::map<std::string, RunningTask> tasks_ ABSL_GUARDED_BY(mu_);
};

}  // namespace assay
