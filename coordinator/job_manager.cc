// JobManager: the jobs API (read, cancel, watch, logs), recovery, and applying the task rules
// (settling, finishing, dispatching, requeueing). Submit is in job_manager_submit.cc (Intake does the
// checks), the locked sections and the prepare/apply loop in job_manager_sections.cc, the worker
// link's side in job_manager_link.cc, the ticker in job_manager_tick.cc, the fleet view in
// job_manager_fleet.cc.
#include "coordinator/job_manager.h"

#include <algorithm>
#include <optional>
#include <set>

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/file_util.h"
#include "common/base/status_util.h"
#include "common/tree/merkle.h"
#include "coordinator/complete_log.h"
#include "coordinator/planner.h"
#include "coordinator/task_rules.h"

namespace assay {

using assay::v1::Job;
using assay::v1::LogChunk;
using assay::v1::Task;
using assay::v1::TaskState;

JobManager::JobManager(JobStore* store, BlobStore* blobs, BlobPinner* pinner, ActionCache* action_cache,
                       const Clock* clock, Options options)
    : store_(store),
      blobs_(blobs),
      pinner_(pinner),
      action_cache_(action_cache),
      clock_(clock),
      options_(std::move(options)),
      builder_(blobs, action_cache, pinner),
      intake_(blobs, store, clock,
              Intake::Options{options_.limits, options_.tree_limits,
                              options_.notifier != nullptr ? options_.notifier->Targets()
                                                           : std::map<std::string, NotifyTarget::Kind>{}}),
      dispatcher_(clock, options_.lease_ttl, pinner),
      commit_(options_.state_writer ? options_.state_writer
                                    : [store](rocksdb::WriteBatch* batch, bool sync) { return store->Write(batch, sync); }) {
  commit_.StartBackgroundWriter();
}

absl::Status JobManager::Recover() {
  auto worker_states = store_->LoadWorkerStates();
  if (!worker_states.ok()) return worker_states.status();
  // Cordons and drains hold across restarts, applied when the worker connects.
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    for (const auto& [worker, state] : *worker_states) {
      if (assay::v1::WorkerAdminState_IsValid(state)) {
        dispatcher_.SetAdminState(worker, static_cast<assay::v1::WorkerAdminState>(state));
      }
    }
  });
  auto unfinished = store_->LoadUnfinished();
  if (!unfinished.ok()) return unfinished.status();
  // Log numbering continues after what is stored (read before the lock is taken).
  std::vector<std::vector<uint32_t>> next_seqs;
  for (auto& [number, job] : *unfinished) {
    std::vector<uint32_t>& next = next_seqs.emplace_back();
    for (const Task& task : job.tasks()) next.push_back(store_->NextLogSeq(number, task.index()).value_or(0));
  }
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    size_t job_at = 0;
    for (auto& [number, job] : *unfinished) {
      auto entry = std::make_unique<JobEntry>();
      entry->number = number;
      entry->job = std::move(job);
      entry->told_state = entry->job.state();
      entry->next_seq = std::move(next_seqs[job_at++]);
      for (Task& task : *entry->job.mutable_tasks()) {
        entry->task_index[task.id()] = task.index();
        if (task.state() == assay::v1::TASK_RUNNING || task.state() == assay::v1::TASK_QUEUED) {
          task.set_state(assay::v1::TASK_PENDING);  // made ready again below, with a fresh lease
        }
      }
      JobEntry* raw = entry.get();
      dispatcher_.SetJobPolicy(number, entry->job.priority(), entry->job.max_parallel());
      jobs_[number] = std::move(entry);
      if (!raw->job.submit_request_id().empty()) submissions_[raw->job.submit_request_id()] = number;
      RecoverRemoteLocked(raw);
      if (raw->cancel_requested) continue;
      for (Task& task : *raw->job.mutable_tasks()) {
        if (task.state() == assay::v1::TASK_PENDING && task.attempt() > 0) {
          SystemLogLocked(raw, task, "coordinator restarted; task queued again");
        }
      }
      AdvanceLocked(raw);
      spdlog::info("recovered job {} ({} tasks)", number, raw->job.tasks_size());
    }
    DispatchLocked();
  });
  return absl::OkStatus();
}

JobManager::JobEntry* JobManager::ActiveLocked(uint64_t number) {
  auto it = jobs_.find(number);
  return it == jobs_.end() ? nullptr : it->second.get();
}

absl::StatusOr<JobManager::JobEntry*> JobManager::FindLocked(const std::string& id) {
  auto number = ParseJobId(id);
  if (!number.ok()) return number.status();
  if (JobEntry* entry = ActiveLocked(*number)) return entry;
  return absl::NotFoundError(absl::StrCat("job ", id, " is not active"));
}

absl::StatusOr<Job> JobManager::Cancel(const std::string& id) {
  auto number = ParseJobId(id);
  if (!number.ok()) return number.status();
  std::optional<absl::StatusOr<Job>> cancelled =
      Decide([&](Section& section) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> std::optional<absl::StatusOr<Job>> {
        JobEntry* entry = ActiveLocked(*number);
        if (entry == nullptr) return std::nullopt;
        return CancelLocked(&section, entry);
      });
  if (cancelled.has_value()) return std::move(*cancelled);
  // Not in memory: finished long ago, or never existed (read without the lock).
  auto job = store_->LoadJob(*number, false);
  if (!job.ok()) return job.status();
  return absl::FailedPreconditionError(
      absl::StrCat("job ", id, " has already finished (", assay::v1::JobState_Name(job->state()), ")"));
}

absl::StatusOr<Job> JobManager::CancelLocked(Section* section, JobEntry* entry) {
  const std::string& id = entry->job.id();
  if (IsFinal(entry->job.state())) {
    return absl::FailedPreconditionError(absl::StrCat("job ", id, " has already finished (",
                                                      assay::v1::JobState_Name(entry->job.state()), ")"));
  }
  entry->cancel_requested = true;
  CancelTasksLocked(entry, "cancelled");
  AdvanceLocked(entry);
  spdlog::info("job {} cancelled", id);
  section->NeedWritten(*entry);  // (the section's own changes are waited for anyway)
  return entry->job;
}

void JobManager::CancelTasksLocked(JobEntry* entry, const std::string& reason) {
  for (Task& task : *entry->job.mutable_tasks()) CancelTaskLocked(entry, &task, reason);
}

void JobManager::CancelTaskLocked(JobEntry* entry, Task* task, const std::string& reason) {
  if (IsFinal(task->state())) return;
  TaskKey key{entry->number, task->index()};
  if (task->state() == assay::v1::TASK_QUEUED) dispatcher_.Dequeue(key);
  if (task->state() == assay::v1::TASK_RUNNING) {
    if (auto session = dispatcher_.SessionOf(task->worker())) {
      SendLocked(session, CancelMessage(entry->job, *task, /*lease_id=*/"", reason));
    }
    // The slot stays taken until the worker reports the task ended (or the lease expires).
  }
  FinishTaskLocked(entry, task, assay::v1::TASK_CANCELLED, reason);
}

absl::StatusOr<uint64_t> JobManager::AddWatcher(const std::string& id, std::function<void(bool)> on_change) {
  auto number = ParseJobId(id);
  if (!number.ok()) return number.status();
  return Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<uint64_t> {
    JobEntry* entry = ActiveLocked(*number);
    if (entry == nullptr) return absl::NotFoundError(absl::StrCat("job ", id, " is not active"));
    return watchers_.Add(*number, std::move(on_change));
  });
}

void JobManager::RemoveWatcher(const std::string& id, uint64_t watcher) {
  auto number = ParseJobId(id);
  if (!number.ok()) return;
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    watchers_.Remove(*number, watcher);
  });
}

absl::StatusOr<JobManager::LogRead> JobManager::ReadLogs(const std::string& id, const std::string& task_prefix,
                                                         LogCursor* cursor, size_t max_chunks) {
  auto number = ParseJobId(id);
  if (!number.ok()) return number.status();
  auto matches = [&](const Task& t) {
    return SelectsTask(task_prefix, t.id());
  };
  std::vector<int32_t> indexes;
  std::string first_task;
  std::map<int32_t, FinishedOutput> finished;  // tasks whose log is served whole (complete_log.h)
  auto add = [&](const Task& t) {
    if (!matches(t)) return;
    if (indexes.empty()) first_task = t.id();
    indexes.push_back(t.index());
    if (IsFinal(t.state()) && t.has_result()) {
      finished[t.index()] = FinishedOutput{t.attempt(), t.result().stdout_digest(), t.result().stderr_digest()};
    }
  };
  bool final_state = false;
  bool active = false;
  Decide([&](Section& section) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (JobEntry* entry = ActiveLocked(*number)) {
      active = true;
      section.NeedWritten(*entry);  // every chunk announced so far is in the store when we read
      final_state = IsFinal(entry->job.state());
      for (const Task& t : entry->job.tasks()) add(t);
    }
  });
  if (!active) {
    auto job = store_->LoadJob(*number, true);
    if (!job.ok()) return job.status();
    final_state = IsFinal(job->state());
    for (const Task& t : job->tasks()) add(t);
  }
  if (indexes.empty()) return absl::NotFoundError(absl::StrCat("job ", id, " has no task '", task_prefix, "'"));
  LogRead out;
  for (int32_t index : indexes) {
    uint32_t& next = cursor->next_seq[index];
    auto done = finished.find(index);
    absl::Status s = store_->ReadLogs(*number, index, next, [&](const LogChunk& chunk) {
      if (out.chunks.size() >= max_chunks) {
        out.more = true;
        return false;
      }
      next = chunk.seq() + 1;
      if (chunk.has_gap() && done != finished.end() && chunk.attempt() == done->second.attempt) {
        for (LogChunk& piece : FillGap(*blobs_, done->second, chunk)) out.chunks.push_back(std::move(piece));
      } else {
        out.chunks.push_back(chunk);
      }
      return true;
    });
    if (!s.ok()) return s;
    if (out.more) break;
  }
  out.over = final_state && !out.more;
  if (out.chunks.empty() && final_state && !cursor->removed_note_sent) {
    // Log retention (log_retention.h) may have removed them: say when and why, once.
    if (auto removed = store_->LogsRemoved(*number); removed.ok()) {
      LogChunk note;
      note.set_task_id(first_task);
      note.set_stream(LogChunk::SYSTEM);
      note.set_data(absl::StrCat("[assay] this job's logs were ", *removed, "\n"));
      out.chunks.push_back(std::move(note));
      cursor->removed_note_sent = true;
    }
  }
  return out;
}

void JobManager::AppendLogLocked(JobEntry* entry, const Task& task, LogChunk chunk) {
  uint32_t& seq = entry->next_seq[static_cast<size_t>(task.index())];
  chunk.set_task_id(task.id());
  chunk.set_seq(seq++);
  chunk.set_attempt(task.attempt());
  if (chunk.time_ms() == 0) chunk.set_time_ms(UnixMillis(clock_->Now()));
  store_->PutLog(&pending_.batch, entry->number, task.index(), chunk);
  touched_jobs_.insert(entry->number);
}

void JobManager::ApplySizesLocked(JobEntry* entry, Task* task, const ResultDecision& decision) {
  task->set_run_ms(decision.run_ms);
  task->clear_sizes();
  for (const auto& size : decision.sizes) *task->add_sizes() = size;
  task->clear_warnings();
  for (const std::string& warning : decision.warnings) {
    task->add_warnings(warning);
    SystemLogLocked(entry, *task, absl::StrCat("warning: ", warning));
  }
}

void JobManager::SystemLogLocked(JobEntry* entry, const Task& task, const std::string& line) {
  LogChunk chunk;
  chunk.set_stream(LogChunk::SYSTEM);
  chunk.set_data(absl::StrCat("[assay] ", line, "\n"));
  AppendLogLocked(entry, task, std::move(chunk));
}

void JobManager::AdvanceLocked(JobEntry* entry) {
  // The job's tasks being prepared, read here under the lock (Settle's callback runs inside it).
  absl::flat_hash_set<int32_t> preparing;
  for (auto it = preparing_.lower_bound(TaskKey{entry->number, 0});
       it != preparing_.end() && it->job == entry->number; ++it) {
    preparing.insert(it->index);
  }
  const Settlement settlement = Settle(entry->job, entry->task_index, entry->cancel_requested,
                                       [&](int32_t index) { return preparing.contains(index); });
  for (int32_t index : settlement.cancelled) {
    preparing_.erase(TaskKey{entry->number, index});
    FinishTaskLocked(entry, entry->job.mutable_tasks(index), assay::v1::TASK_CANCELLED, "cancelled");
  }
  for (const auto& [index, message] : settlement.skipped) {
    FinishTaskLocked(entry, entry->job.mutable_tasks(index), assay::v1::TASK_SKIPPED, message);
  }
  if (entry->job.fail_fast() && !entry->fail_fast_done && !entry->cancel_requested) {
    const Task* failed = nullptr;
    for (const Task& t : entry->job.tasks()) {
      if (t.state() == assay::v1::TASK_FAILED) {
        failed = &t;
        break;
      }
    }
    if (failed != nullptr) {
      entry->fail_fast_done = true;
      CancelTasksLocked(entry, absl::StrCat("cancelled by fail_fast: ", failed->id(), " failed"));
    }
  }
  if (!entry->fail_fast_done) {
    for (int32_t index : settlement.ready) MakeReadyLocked(entry, entry->job.mutable_tasks(index));
  }

  const JobOutcome outcome = Outcome(entry->job, entry->cancel_requested);
  bool job_changed = entry->job.tasks_done() != outcome.done;
  entry->job.set_tasks_done(outcome.done);
  // An open job (remote actions) takes more tasks: it ends once idle (CloseIdleJobsLocked).
  if (outcome.final_state.has_value() && !IsFinal(entry->job.state()) && !entry->job.open()) {
    entry->job.set_state(*outcome.final_state);
    entry->job.set_finished_at_ms(UnixMillis(clock_->Now()));
    job_changed = true;
    finished_.push_back(entry->number);
    dispatcher_.ForgetJob(entry->number);
    jobs_finished_[assay::v1::JobState_Name(entry->job.state())]++;
    spdlog::info("job {} {}", entry->job.id(), assay::v1::JobState_Name(entry->job.state()));
  }
  if (job_changed) MarkJobChangedLocked(entry->number);
  RetireFinishedLocked();
}

void JobManager::RetireFinishedLocked() {
  // A job leaves memory only once all of it is on disk (readers then find it in the store).
  while (finished_.size() > options_.finished_jobs_in_memory) {
    JobEntry* old = ActiveLocked(finished_.front());
    if (old != nullptr) {
      if (touched_jobs_.contains(old->number) || old->last_ticket > commit_.written()) return;  // later
      submissions_.erase(old->job.submit_request_id());
    }
    watchers_.Forget(finished_.front());
    jobs_.erase(finished_.front());
    finished_.erase(finished_.begin());
  }
}

void JobManager::FinishTaskLocked(JobEntry* entry, Task* task, TaskState state, std::string message) {
  task->set_state(state);
  task->set_message(std::move(message));
  task->set_finished_at_ms(UnixMillis(clock_->Now()));
  entry->awaiting_worker.erase(task->index());
  tasks_finished_[{assay::v1::TaskState_Name(state), task->cached()}]++;
  dispatcher_.Forget(TaskKey{entry->number, task->index()});
  if (task->spec().remote()) ForgetInFlightLocked(*entry, *task);
  if (state == assay::v1::TASK_SKIPPED || state == assay::v1::TASK_CANCELLED) {
    if (!task->message().empty()) SystemLogLocked(entry, *task, task->message());
  }
  PersistLocked(entry, *task, false);
}

void JobManager::DispatchLocked() {
  for (const Dispatcher::Grant& grant : dispatcher_.Dispatch()) {
    const Lease& lease = grant.lease;
    JobEntry* entry = ActiveLocked(lease.task.job);
    if (entry == nullptr || grant.session == nullptr) {
      dispatcher_.Release(lease.task, lease.lease_id);
      continue;
    }
    Task* task = entry->job.mutable_tasks(lease.task.index);
    task->set_state(assay::v1::TASK_RUNNING);
    task->set_attempt(task->attempt() + 1);
    entry->live_output.erase(task->index());  // a new attempt's output starts at 0
    task->set_worker(lease.worker);
    task->set_started_at_ms(UnixMillis(clock_->Now()));
    task->clear_message();
    entry->awaiting_worker.erase(task->index());
    bool job_started = entry->job.state() == assay::v1::JOB_QUEUED;
    if (job_started) entry->job.set_state(assay::v1::JOB_RUNNING);
    // Not fsynced: the assignment goes out before it is written at all (SendEarlyLocked), and a
    // task a crash forgot was handed out runs again.
    PersistLocked(entry, *task, job_started, /*synced=*/false);
    SystemLogLocked(entry, *task, absl::StrCat("attempt ", task->attempt(), " on worker ", lease.worker));
    // The action was kept in memory when the task was queued: dispatch reads nothing from the CAS.
    if (grant.action == nullptr) {
      dispatcher_.Release(lease.task, lease.lease_id);
      FinishTaskLocked(entry, task, assay::v1::TASK_FAILED, "internal error: the task's action is not prepared");
      AdvanceLocked(entry);
      continue;
    }
    assay::v1::CoordinatorMessage message;
    auto* assign = message.mutable_assign();
    auto* ref = assign->mutable_lease();
    ref->set_job_id(entry->job.id());
    ref->set_task_id(task->id());
    ref->set_lease_id(lease.lease_id);
    ref->set_attempt(task->attempt());
    *assign->mutable_action_digest() = task->action_digest();
    *assign->mutable_action() = grant.action->action;
    *assign->mutable_command() = grant.action->command;
    for (const auto& dir : grant.action->input_tree) *assign->add_input_tree() = dir;
    for (const auto& cache : grant.action->caches) *assign->add_caches() = cache;
    assign->set_display_name(absl::StrCat("job ", entry->job.id(), " ", task->id()));
    SendEarlyLocked(grant.session, std::move(message));
  }
  // A slot is free with nothing queued for it while another worker holds a prefetched task: ask for
  // it back (the worker answers only if it has not started it; the task is then queued again).
  for (const Lease& lease : dispatcher_.Reclaim()) {
    JobEntry* entry = ActiveLocked(lease.task.job);
    auto session = dispatcher_.SessionOf(lease.worker);
    if (entry == nullptr || session == nullptr) continue;
    SendEarlyLocked(session, CancelMessage(entry->job, entry->job.tasks(lease.task.index), lease.lease_id,
                                           "a slot is free on another worker", /*if_not_started=*/true));
  }
}

assay::v1::CoordinatorMessage JobManager::CancelMessage(const assay::v1::Job& job, const Task& task,
                                                        const std::string& lease_id, const std::string& reason,
                                                        bool if_not_started) {
  assay::v1::CoordinatorMessage message;
  auto* cancel = message.mutable_cancel();
  cancel->mutable_lease()->set_job_id(job.id());
  cancel->mutable_lease()->set_task_id(task.id());
  cancel->mutable_lease()->set_lease_id(lease_id);
  cancel->mutable_lease()->set_attempt(task.attempt());
  cancel->set_reason(reason);
  cancel->set_if_not_started(if_not_started);
  return message;
}

void JobManager::RequeueLostLocked(JobEntry* entry, Task* task, const std::string& why) {
  SystemLogLocked(entry, *task, why);
  const LostDecision decision = DecideLost(*task, why, options_.max_lost_attempts);
  if (decision.give_up) {
    FinishTaskLocked(entry, task, assay::v1::TASK_FAILED, decision.message);
    AdvanceLocked(entry);
    return;
  }
  task->set_message(decision.message);
  QueueAgainLocked(entry, task);
}

void JobManager::QueueAgainLocked(JobEntry* entry, Task* task) {
  task->set_state(assay::v1::TASK_QUEUED);
  task->set_queued_at_ms(UnixMillis(clock_->Now()));
  dispatcher_.Requeue(TaskKey{entry->number, task->index()},
                      {task->spec().required_labels().begin(), task->spec().required_labels().end()},
                      ExpectedMsLocked(entry, *task));
  PersistLocked(entry, *task, false);
}

int64_t JobManager::ExpectedMsLocked(JobEntry* entry, const Task& task) {
  if (history_.Last(entry->job, task.id()) == 0) return 0;
  if (entry->dependents.empty()) entry->dependents = RunHistory::Dependents(entry->job);
  return history_.Expected(entry->job, task.index(), entry->dependents);
}

}  // namespace assay
