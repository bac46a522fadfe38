// JobManager's side of the worker link: workers coming and going, heartbeats, log chunks, results
// (their inline blobs stored first). The ticker is in job_manager_tick.cc, the fleet view in
// job_manager_fleet.cc, the locked sections in job_manager_sections.cc.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/byte_size.h"
#include "common/base/log_format.h"
#include "common/task/task_states.h"
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
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
        if (task.state() == assay::v1::TASK_QUEUED && entry->awaiting_worker.contains(task.index()) &&
            dispatcher_.AnyWorkerCouldRun({task.spec().required_labels().begin(), task.spec().required_labels().end()})) {
          entry->awaiting_worker.erase(task.index());
          task.clear_message();  // it said which labels the task waited for
          PersistLocked(entry.get(), task, false);
        }
      }
    }
    DispatchLocked();
  });
  return absl::OkStatus();
}

void JobManager::WorkerDisconnected(const std::shared_ptr<WorkerSession>& session) {
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
  });
}

void JobManager::OnHeartbeat(const std::string& worker, const assay::v1::Heartbeat& heartbeat) {
  const absl::Time began = absl::Now();
  RenewLeases(worker, heartbeat);
  heartbeat_latency_.Observe(absl::Now() - began);
}

void JobManager::RenewLeases(const std::string& worker, const assay::v1::Heartbeat& heartbeat) {
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
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
  });
}

void JobManager::OnStopping(const std::string& worker, const assay::v1::Stopping& stopping) {
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { dispatcher_.SetStopping(worker); });
  spdlog::info("worker {} is stopping: no new tasks; its running ones have {} s to finish", worker,
               stopping.grace_ms() / 1000);
}

void JobManager::OnLog(const std::string& worker, const assay::v1::TaskLog& log) {
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { TakeLogLocked(log); }, Mode::kNoWait);
}

void JobManager::TakeLogLocked(const assay::v1::TaskLog& log) {
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
  if (log.stream() == LogChunk::STDOUT || log.stream() == LogChunk::STDERR) {
    // A disk refusing writes for long: what waits for it stays bounded (the next chunk taken notes
    // the bytes skipped as a gap; the finished log is the step's whole output). The byte count first:
    // it needs no lock, and is below the bound nearly always.
    if (commit_.queued_bytes() > options_.max_kept_bytes && commit_.failing()) return;
    TakeOutputLocked(entry, *task, log);
    return;
  }
  LogChunk chunk;
  chunk.set_stream(log.stream());
  chunk.set_data(log.data());
  LiveOutput& live = entry->live_output[task->index()];
  if (log.has_gap()) {  // the worker's note of output it dropped: it stands for those bytes
    *chunk.mutable_gap() = log.gap();
    const assay::v1::LogGap& gap = log.gap();
    if (gap.stdout_bytes() > 0) live.bytes[0] = std::max(live.bytes[0], gap.stdout_offset() + gap.stdout_bytes());
    if (gap.stderr_bytes() > 0) live.bytes[1] = std::max(live.bytes[1], gap.stderr_offset() + gap.stderr_bytes());
  }
  if (!log.data().empty()) live.mid_line = log.data().back() != '\n';
  AppendLogLocked(entry, *task, std::move(chunk));
}

void JobManager::TakeOutputLocked(JobEntry* entry, const Task& task, const assay::v1::TaskLog& log) {
  LiveOutput& live = entry->live_output[task.index()];
  const int stream = log.stream() == LogChunk::STDOUT ? 0 : 1;
  const auto size = static_cast<int64_t>(log.data().size());
  int64_t& have = live.bytes[stream];
  if (log.offset() > have && !live.untracked) {  // bytes before this chunk never came
    assay::v1::LogGap gap;
    if (stream == 0) {
      gap.set_stdout_offset(have);
      gap.set_stdout_bytes(log.offset() - have);
    } else {
      gap.set_stderr_offset(have);
      gap.set_stderr_bytes(log.offset() - have);
    }
    AppendMissingNoteLocked(entry, task, &live, gap);
  }
  size_t skip = 0;
  if (log.offset() < have) {
    // Either bytes the log holds already, or a worker that sends no offsets (each chunk at 0).
    if (log.offset() == 0) live.untracked = true;
    if (!live.untracked) skip = static_cast<size_t>(std::min(have - log.offset(), size));
  }
  have = std::max(have, log.offset() + size);
  if (skip == log.data().size()) return;
  LogChunk chunk;
  chunk.set_stream(log.stream());
  chunk.set_data(log.data().substr(skip));
  live.mid_line = chunk.data().back() != '\n';
  AppendLogLocked(entry, task, std::move(chunk));
}

void JobManager::NoteMissingOutputLocked(JobEntry* entry, const Task& task, int64_t stdout_bytes,
                                         int64_t stderr_bytes) {
  auto it = entry->live_output.find(task.index());
  LiveOutput live = it != entry->live_output.end() ? it->second : LiveOutput();
  if (it != entry->live_output.end()) entry->live_output.erase(it);
  if (live.untracked) return;
  assay::v1::LogGap gap;
  if (stdout_bytes > live.bytes[0]) {
    gap.set_stdout_offset(live.bytes[0]);
    gap.set_stdout_bytes(stdout_bytes - live.bytes[0]);
  }
  if (stderr_bytes > live.bytes[1]) {
    gap.set_stderr_offset(live.bytes[1]);
    gap.set_stderr_bytes(stderr_bytes - live.bytes[1]);
  }
  if (gap.stdout_bytes() > 0 || gap.stderr_bytes() > 0) AppendMissingNoteLocked(entry, task, &live, gap);
}

void JobManager::AppendMissingNoteLocked(JobEntry* entry, const Task& task, LiveOutput* live,
                                         const assay::v1::LogGap& gap) {
  spdlog::warn("job {} {}: {} bytes of stdout and {} of stderr did not reach the coordinator live; the finished "
               "log serves them from the stored output",
               entry->job.id(), task.id(), gap.stdout_bytes(), gap.stderr_bytes());
  LogChunk note;
  note.set_stream(LogChunk::SYSTEM);
  note.set_data(absl::StrCat(live->mid_line ? "\n" : "", "[assay] ", gap.stdout_bytes() + gap.stderr_bytes(),
                             " bytes of output did not reach the coordinator live here (the log is whole once the "
                             "step has finished)\n"));
  *note.mutable_gap() = gap;
  live->mid_line = false;
  AppendLogLocked(entry, task, std::move(note));
}

void JobManager::AppendPrefaceLocked(JobEntry* entry, const Task& task, const std::string& preface) {
  if (preface.empty()) return;
  LogChunk chunk;
  chunk.set_stream(LogChunk::SYSTEM);
  chunk.set_data(preface.substr(0, 4096));  // the worker's own lines about the task: a few at most
  AppendLogLocked(entry, task, std::move(chunk));
}

absl::Status JobManager::OnResult(const std::string& worker, assay::v1::TaskResult result) {
  StoreInlineBlobs(worker, &result);
  ResultEffects effects;
  // Whether the CAS holds a result's outputs is asked here, without the lock (CAS I/O), so that a
  // cacheable result's action-cache record is written in the same batch as the task's end: whoever
  // hears that the task is done (an Execute stream, WatchJob) finds it in the action cache, also
  // after a crash.
  const bool may_cache = result.error().empty() && !result.timed_out() && !result.not_started() &&
                         result.host_problem().empty();
  effects.complete = may_cache ? action_cache_->CheckComplete(result.result())
                               : absl::FailedPreconditionError("the run did not end normally");
  absl::Status status = Decide(
      [&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ApplyResultLocked(worker, result, &effects); });
  effects.job_id = result.lease().job_id();
  effects.task_id = result.lease().task_id();
  ApplyResultEffects(effects);
  return status;
}

void JobManager::ApplyResultEffects(const ResultEffects& effects) {
  if (effects.wanted_cache && !effects.complete.ok()) {
    spdlog::warn("job {} {}: result not cached: {}", effects.job_id, effects.task_id, effects.complete.message());
  }
  if (effects.recorded.has_value()) {  // the database has it: now the bucket (--cas-store) too
    absl::Status s = action_cache_->Mirror(effects.cache_instance, effects.recorded->first, effects.recorded->second);
    if (!s.ok()) spdlog::warn("job {} {}: result not kept in the bucket: {}", effects.job_id, effects.task_id, s.message());
  }
  // The step caches are recorded after the task's state, outside the lock.
  for (const assay::v1::SavedStepCache& saved : effects.caches) {
    if (options_.step_caches == nullptr) break;
    // A worker's word is not enough: the tree it names must be in the CAS (its files are checked by
    // the worker that restores it, as any input tree).
    auto root = Digest::FromProto(saved.root());
    auto missing = root.ok() ? blobs_->FindMissing({*root}) : absl::StatusOr<std::vector<Digest>>(root.status());
    if (!missing.ok() || !missing->empty() || saved.bytes() < 0 || saved.key().empty() ||
        saved.key().size() > kMaxCacheKeyBytes) {
      spdlog::warn("job {} {}: step cache '{}' refused: its tree is not in the CAS or its figures are not valid",
                   effects.job_id, effects.task_id, saved.key().substr(0, 80));
      continue;
    }
    auto kept = options_.step_caches->Record(effects.pipeline, effects.branch, effects.job_id, effects.task_id, saved);
    if (!kept.ok()) {
      spdlog::warn("job {} {}: step cache '{}' not recorded: {}", effects.job_id, effects.task_id, saved.key(),
                   kept.status().message());
    } else if (*kept) {
      spdlog::info("job {} {}: step cache '{}' saved ({} files, {})", effects.job_id, effects.task_id, saved.key(),
                   saved.files(), FormatBytes(saved.bytes()));
    }
  }
}

void JobManager::StoreInlineBlobs(const std::string& worker, assay::v1::TaskResult* result) {
  // All of them in one batch, not synced: the result's record, written (synced) after them to the
  // same database before the worker is answered, makes them durable with it: one fsync a result.
  std::vector<absl::StatusOr<BlobToPut>> items;
  for (const auto& blob : result->inline_blobs()) {
    items.push_back(BlobToPut::FromProto(blob.digest(), blob.data()));
  }
  for (const absl::Status& s : PutEach(*blobs_, items, PutSync::kByCaller)) {
    if (s.ok()) continue;
    spdlog::warn("worker {}: a blob sent with a result was refused: {}", worker, s.message());
    if (result->error().empty()) result->set_error(absl::StrCat("storing an output: ", s.message()));
  }
  result->clear_inline_blobs();
}

absl::Status JobManager::ApplyResultLocked(const std::string& worker, const assay::v1::TaskResult& result,
                                           ResultEffects* effects) {
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
    TakeBackLocked(worker, entry, task, result.lease().lease_id());
  } else {
    dispatcher_.Release(key, result.lease().lease_id());
    if (IsFinal(task->state())) {
      // Cancelled while it ran: there is nothing to take.
    } else if (!result.host_problem().empty()) {  // not the step's fault: another worker runs it
      dispatcher_.SetHostProblem(worker);
      AppendPrefaceLocked(entry, *task, result.log_preface());
      task->clear_worker();
      RequeueLostLocked(entry, task,
                        absl::StrCat("worker ", worker, " could not run the task: ", result.host_problem(),
                                     "; queued again for another worker"));
    } else {
      TakeRunLocked(entry, task, result, effects);
    }
  }
  DispatchLocked();
  return absl::OkStatus();
}

void JobManager::TakeBackLocked(const std::string& worker, JobEntry* entry, Task* task, const std::string& lease_id) {
  const TaskKey key{entry->number, task->index()};
  if (task->state() != assay::v1::TASK_RUNNING) {  // cancelled meanwhile
    dispatcher_.Release(key, lease_id);
    return;
  }
  dispatcher_.GiveBack(key, lease_id, {task->spec().required_labels().begin(), task->spec().required_labels().end()});
  SystemLogLocked(entry, *task, absl::StrCat("worker ", worker, " handed the task back before starting it"));
  task->set_state(assay::v1::TASK_QUEUED);
  task->set_attempt(task->attempt() - 1);  // it did not run
  task->set_started_at_ms(0);
  task->clear_worker();
  PersistLocked(entry, *task, false);
}

void JobManager::TakeRunLocked(JobEntry* entry, Task* task, const assay::v1::TaskResult& result,
                               ResultEffects* effects) {
  // A prefetched task waited on its worker for a slot: its run began when the worker started it.
  const auto& run = result.result().execution_metadata();
  if (run.has_worker_start_timestamp() && run.has_worker_completed_timestamp()) {
    const int64_t ran_ms = TimestampMillis(run.worker_completed_timestamp()) - TimestampMillis(run.worker_start_timestamp());
    const int64_t busy_ms = std::max<int64_t>(ran_ms - std::max<int64_t>(result.slot_wait_ms(), 0), 0);
    task->set_started_at_ms(std::max(task->started_at_ms(), UnixMillis(clock_->Now()) - busy_ms));
  }
  AppendPrefaceLocked(entry, *task, result.log_preface());
  // The output that never reached the log live is served from the run's stdout/stderr once it ends.
  NoteMissingOutputLocked(entry, *task, result.result().stdout_digest().size_bytes(),
                          result.result().stderr_digest().size_bytes());
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
    return;
  }
  if (decision.cacheable) {
    effects->wanted_cache = true;
    auto digest = Digest::FromProto(task->action_digest());
    if (digest.ok() && effects->complete.ok()) {  // written with the task's state (FlushLocked)
      action_cache_->AddToBatch(&pending_.batch, task->spec().instance_name(), *digest, result.result());
      effects->recorded.emplace(*digest, result.result());
      effects->cache_instance = task->spec().instance_name();
    }
  }
  task->set_flaky(decision.flaky);
  if (decision.flaky) {
    SystemLogLocked(entry, *task, absl::StrCat("passed on attempt ", task->attempt(), " after ", task->failed_runs(),
                                               " failed run(s): flaky"));
  }
  ApplySizesLocked(entry, task, decision);
  if (!decision.failure.empty()) SystemLogLocked(entry, *task, decision.failure);
  if (decision.failure.empty() && result.saved_caches_size() > 0) {  // a failed step saves no cache
    effects->pipeline = entry->job.name();
    effects->branch = BranchOf(entry->job);
    for (const assay::v1::SavedStepCache& saved : result.saved_caches()) {  // only keys the step has
      const auto& specs = task->spec().caches();
      if (std::any_of(specs.begin(), specs.end(), [&](const auto& c) { return c.key() == saved.key(); })) {
        effects->caches.push_back(saved);
      }
    }
  }
  FinishTaskLocked(entry, task, decision.failure.empty() ? assay::v1::TASK_SUCCEEDED : assay::v1::TASK_FAILED,
                   decision.failure);
  AdvanceLocked(entry);
}

}  // namespace assay
