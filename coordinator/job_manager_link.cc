// JobManager's side of the worker link: workers coming and going, heartbeats, log chunks, results,
// lease expiry; and the figures for `assay workers` and the metrics. (The jobs API, the locked
// sections and the group commit are in job_manager.cc.)
#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log_format.h"
#include "coordinator/job_manager.h"
#include "coordinator/task_rules.h"

namespace assay {

using assay::v1::LogChunk;
using assay::v1::Task;

absl::Status JobManager::WorkerConnected(const assay::v1::WorkerHello& hello, std::shared_ptr<WorkerSession> session) {
  if (hello.worker_id().empty()) return absl::InvalidArgumentError("hello.worker_id is empty");
  if (hello.slots() < 1 || hello.slots() > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("hello.slots is ", hello.slots(), "; it must be 1 to 1024"));
  }
  if (hello.prefetch() < 0 || hello.prefetch() > 1024) {
    return absl::InvalidArgumentError(absl::StrCat("hello.prefetch is ", hello.prefetch(), "; it must be 0 to 1024"));
  }
  Locked lock(this);
  for (const Lease& lease : dispatcher_.Connect(hello, session)) {
    if (JobEntry* entry = ActiveLocked(lease.task.job)) {
      Task* task = entry->job.mutable_tasks(lease.task.index);
      if (task->state() == assay::v1::TASK_RUNNING) RequeueLostLocked(entry, task, "worker reconnected; task queued again");
    }
  }
  assay::v1::CoordinatorMessage welcome;
  welcome.mutable_welcome()->set_worker_id(hello.worker_id());
  welcome.mutable_welcome()->set_heartbeat_interval_ms(absl::ToInt64Milliseconds(options_.heartbeat_interval));
  welcome.mutable_welcome()->set_lease_ttl_ms(absl::ToInt64Milliseconds(options_.lease_ttl));
  // Sent with the assignments that may follow in this section, and before them.
  SendEarlyLocked(session, std::move(welcome));
  // Tasks waiting for labels nobody had may now have a worker.
  for (auto& [number, entry] : jobs_) {
    for (Task& task : *entry->job.mutable_tasks()) {
      if (task.state() == assay::v1::TASK_QUEUED && absl::StartsWith(task.message(), "waiting for a worker") &&
          dispatcher_.AnyWorkerCouldRun({task.spec().required_labels().begin(), task.spec().required_labels().end()})) {
        task.clear_message();
        PersistLocked(entry.get(), task, false);
      }
    }
  }
  DispatchLocked();
  return absl::OkStatus();
}

void JobManager::WorkerDisconnected(const std::shared_ptr<WorkerSession>& session) {
  Locked lock(this);
  std::vector<Lease> lost;
  if (!dispatcher_.Disconnect(session, &lost)) return;  // already replaced
  for (const Lease& lease : lost) {
    JobEntry* entry = ActiveLocked(lease.task.job);
    if (entry == nullptr) continue;
    Task* task = entry->job.mutable_tasks(lease.task.index);
    if (task->state() == assay::v1::TASK_RUNNING) {
      RequeueLostLocked(entry, task, absl::StrCat("worker ", session->worker_id(), " disconnected"));
    }
  }
  DispatchLocked();
}

void JobManager::OnHeartbeat(const std::string& worker, const assay::v1::Heartbeat& heartbeat) {
  const absl::Time began = absl::Now();
  OnHeartbeatLocked(worker, heartbeat);
  heartbeat_latency_.Observe(absl::Now() - began);
}

void JobManager::OnHeartbeatLocked(const std::string& worker, const assay::v1::Heartbeat& heartbeat) {
  Locked lock(this);
  std::vector<std::pair<TaskKey, std::string>> leases;
  for (const auto& ref : heartbeat.leases()) {
    uint64_t number = 0;
    if (!absl::SimpleAtoi(ref.job_id(), &number)) continue;
    JobEntry* entry = ActiveLocked(number);
    if (entry == nullptr) continue;
    auto idx = entry->task_index.find(ref.task_id());
    if (idx == entry->task_index.end()) continue;
    leases.emplace_back(TaskKey{number, idx->second}, ref.lease_id());
  }
  if (dispatcher_.Heartbeat(worker, leases)) DispatchLocked();  // back from silence: it may take tasks again
}

void JobManager::OnStopping(const std::string& worker, const assay::v1::Stopping& stopping) {
  Locked lock(this);
  dispatcher_.SetStopping(worker);
  spdlog::info("worker {} is stopping: no new tasks; its running ones have {} s to finish", worker,
               stopping.grace_ms() / 1000);
}

void JobManager::OnLog(const std::string& worker, const assay::v1::TaskLog& log) {
  Locked lock(this, Locked::kNoWait);
  uint64_t number = 0;
  if (!absl::SimpleAtoi(log.lease().job_id(), &number)) return;
  JobEntry* entry = ActiveLocked(number);
  if (entry == nullptr) return;
  auto idx = entry->task_index.find(log.lease().task_id());
  if (idx == entry->task_index.end()) return;
  if (!dispatcher_.CheckLease(TaskKey{number, idx->second}, log.lease().lease_id()).ok()) return;
  Task* task = entry->job.mutable_tasks(idx->second);
  if (task->state() != assay::v1::TASK_RUNNING) return;
  AppendPrefaceLocked(entry, *task, log.preface());
  LogChunk chunk;
  chunk.set_stream(log.stream());
  chunk.set_data(log.data());
  if (log.has_gap()) *chunk.mutable_gap() = log.gap();
  AppendLogLocked(entry, *task, std::move(chunk));
}

void JobManager::AppendPrefaceLocked(JobEntry* entry, const Task& task, const std::string& preface) {
  if (preface.empty()) return;
  LogChunk chunk;
  chunk.set_stream(LogChunk::SYSTEM);
  chunk.set_data(preface.substr(0, 4096));  // the worker's own lines about the task: a few at most
  AppendLogLocked(entry, task, std::move(chunk));
}

absl::Status JobManager::OnResult(const std::string& worker, const assay::v1::TaskResult& result) {
  std::optional<std::pair<Digest, reapi::ActionResult>> to_cache;
  absl::Status status;
  {
    Locked lock(this);
    status = ApplyResultLocked(worker, result, &to_cache);
  }
  // The action cache is written after the task's state, outside the lock.
  if (to_cache.has_value()) {
    absl::Status s = action_cache_->Put("", to_cache->first, to_cache->second);
    if (!s.ok()) spdlog::warn("job {} {}: result not cached: {}", result.lease().job_id(), result.lease().task_id(), s.message());
  }
  return status;
}

absl::Status JobManager::ApplyResultLocked(const std::string& worker, const assay::v1::TaskResult& result,
                                           std::optional<std::pair<Digest, reapi::ActionResult>>* to_cache) {
  uint64_t number = 0;
  if (!absl::SimpleAtoi(result.lease().job_id(), &number)) {
    return absl::InvalidArgumentError(absl::StrCat("result names job '", result.lease().job_id(), "'"));
  }
  JobEntry* entry = ActiveLocked(number);
  if (entry == nullptr) return absl::NotFoundError(absl::StrCat("result for job ", number, ", which is not active"));
  auto idx = entry->task_index.find(result.lease().task_id());
  if (idx == entry->task_index.end()) {
    return absl::NotFoundError(absl::StrCat("job ", number, " has no task '", result.lease().task_id(), "'"));
  }
  TaskKey key{number, idx->second};
  Task* task = entry->job.mutable_tasks(idx->second);
  if (absl::Status s = dispatcher_.CheckLease(key, result.lease().lease_id()); !s.ok()) {
    spdlog::warn("refusing result from worker {} for {} {}: {}", worker, number, task->id(), s.message());
    return s;
  }
  if (result.not_started()) {  // a prefetched task handed back: the next free slot takes it
    if (task->state() != assay::v1::TASK_RUNNING) {  // cancelled meanwhile
      dispatcher_.Release(key, result.lease().lease_id());
    } else {
      dispatcher_.GiveBack(key, result.lease().lease_id(),
                           {task->spec().required_labels().begin(), task->spec().required_labels().end()});
      SystemLogLocked(entry, *task, absl::StrCat("worker ", worker, " handed the task back before starting it"));
      task->set_state(assay::v1::TASK_QUEUED);
      task->set_attempt(task->attempt() - 1);  // it did not run
      task->set_started_at_ms(0);
      task->clear_worker();
      PersistLocked(entry, *task, false);
    }
    DispatchLocked();
    return absl::OkStatus();
  }
  dispatcher_.Release(key, result.lease().lease_id());
  if (IsFinal(task->state())) {  // cancelled while it ran
    DispatchLocked();
    return absl::OkStatus();
  }
  if (!result.host_problem().empty()) {  // not the step's fault: another worker runs it
    dispatcher_.SetHostProblem(worker);
    AppendPrefaceLocked(entry, *task, result.log_preface());
    task->clear_worker();
    RequeueLostLocked(entry, task,
                      absl::StrCat("worker ", worker, " could not run the task: ", result.host_problem(),
                                   "; queued again for another worker"));
    DispatchLocked();
    return absl::OkStatus();
  }
  // A prefetched task waited on its worker for a slot: its run began when the worker started it.
  const auto& run = result.result().execution_metadata();
  if (run.has_worker_start_timestamp() && run.has_worker_completed_timestamp()) {
    const int64_t ran_ms = (run.worker_completed_timestamp().seconds() - run.worker_start_timestamp().seconds()) * 1000 +
                           (run.worker_completed_timestamp().nanos() - run.worker_start_timestamp().nanos()) / 1'000'000;
    const int64_t busy_ms = std::max<int64_t>(ran_ms - std::max<int64_t>(result.slot_wait_ms(), 0), 0);
    task->set_started_at_ms(std::max(task->started_at_ms(), UnixMillis(clock_->Now()) - busy_ms));
  }
  AppendPrefaceLocked(entry, *task, result.log_preface());
  history_.Record(entry->job, *task, run);
  const ResultDecision decision = DecideResult(*task, result);
  *task->mutable_result() = result.result();
  task->set_exit_code(result.result().exit_code());
  task->set_timed_out(result.timed_out());
  if (decision.retry) {
    task->set_failed_runs(task->failed_runs() + 1);
    SystemLogLocked(entry, *task, absl::StrCat(decision.failure, "; retrying (", task->attempt(), " of ",
                                               task->spec().retry() + 1, ")"));
    QueueAgainLocked(entry, task);
    DispatchLocked();
    return absl::OkStatus();
  }
  if (decision.cacheable) {
    auto digest = Digest::FromProto(task->action_digest());
    if (digest.ok()) to_cache->emplace(*digest, result.result());
  }
  task->set_flaky(decision.flaky);
  if (decision.flaky) {
    SystemLogLocked(entry, *task, absl::StrCat("passed on attempt ", task->attempt(), " after ", task->failed_runs(),
                                               " failed run(s): flaky"));
  }
  ApplySizesLocked(entry, task, decision);
  if (!decision.failure.empty()) SystemLogLocked(entry, *task, decision.failure);
  FinishTaskLocked(entry, task, decision.failure.empty() ? assay::v1::TASK_SUCCEEDED : assay::v1::TASK_FAILED,
                   decision.failure);
  AdvanceLocked(entry);
  DispatchLocked();
  return absl::OkStatus();
}

void JobManager::Tick() {
  Locked lock(this);
  // Watchers of unfinished jobs hear from us about once a second, so running durations stay current.
  const absl::Time now = clock_->Now();
  if (now - last_poke_ >= absl::Seconds(1)) {
    last_poke_ = now;
    for (auto& [number, entry] : jobs_) {
      if (IsFinal(entry->job.state())) continue;
      for (const auto& [handle, on_change] : entry->watchers) on_change(false);
    }
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
  DispatchLocked();
}

JobManager::Stats JobManager::GetStats() {
  Locked lock(this);
  Stats s;
  for (const auto& [number, entry] : jobs_) {
    if (IsFinal(entry->job.state())) continue;
    ++s.jobs_active;
    for (const Task& t : entry->job.tasks()) {
      s.tasks_pending += t.state() == assay::v1::TASK_PENDING;
      s.tasks_queued += t.state() == assay::v1::TASK_QUEUED;
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
  return s;
}

std::vector<assay::v1::Worker> JobManager::ListWorkers() {
  Locked lock(this);
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
}

absl::StatusOr<assay::v1::Worker> JobManager::SetWorkerState(const std::string& worker,
                                                            assay::v1::WorkerAdminState state) {
  if (!assay::v1::WorkerAdminState_IsValid(state)) return absl::InvalidArgumentError("unknown worker state");
  {
    Locked lock(this);
    if (!dispatcher_.workers().contains(worker)) {
      std::vector<std::string> known;
      for (const auto& [id, w] : dispatcher_.workers()) known.push_back(id);
      return absl::NotFoundError(absl::StrCat("unknown worker '", worker, "' (known: ",
                                              known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
    }
  }
  // Written (fsynced) before it takes effect, outside the lock.
  if (absl::Status s = store_->PutWorkerState(worker, state); !s.ok()) return s;
  {
    Locked lock(this);
    dispatcher_.SetAdminState(worker, state);
    spdlog::info("worker {} is now {}", worker, assay::v1::WorkerAdminState_Name(state));
    DispatchLocked();
  }
  for (auto& w : ListWorkers()) {
    if (w.id() == worker) return w;
  }
  return absl::NotFoundError(absl::StrCat("unknown worker '", worker, "'"));
}

}  // namespace assay
