// JobManager's locked sections: how one decision ends (its changes to the group commit, the lock
// let go, messages sent, the wait for the disk) and the prepare/apply loop that builds ready tasks'
// actions without the lock and applies them in sections of their own.
#include <deque>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/task/task_states.h"
#include "coordinator/job_manager.h"
#include "coordinator/task_rules.h"

namespace assay {

using assay::v1::LogChunk;
using assay::v1::Task;

void JobManager::EndSection(const Section& section) {
  Released released = Release(section.needed());
  AfterRelease(&released, section.mode());
  if (!released.ready.empty()) PrepareReady(std::move(released.ready));
}

JobManager::Released JobManager::Release(uint64_t needed) {
  Released out;
  out.ticket = std::max(FlushLocked(), needed);
  out.ready.swap(to_prepare_);
  out.early.swap(early_);
  mu_.Unlock();
  return out;
}

void JobManager::AfterRelease(Released* released, Mode mode) {
  for (auto& [session, message] : released->early) session->Send(std::move(message));
  released->early.clear();
  // (A section that does not wait still does once too much is queued: memory stays bounded.)
  if (released->ticket != 0 && (mode == Mode::kWait || commit_.queued_bytes() > kMaxUnwaitedBytes)) {
    commit_.Wait(released->ticket).IgnoreError();  // failures are logged by the commit
  } else {
    commit_.Leave(released->ticket);  // written with the next waited change, or soon after
  }
}

void JobManager::PrepareReady(std::vector<PrepareWork> work) {
  // In small batches, so the first tasks of a large matrix are dispatched while the rest are built.
  // Tasks a batch makes ready (a cache hit settles its dependents) go to the front: a job's chain of
  // cached steps is followed before the rest of the batch, as the order of the work asks.
  constexpr size_t kBatch = 8;
  std::deque<PrepareWork> pending(std::make_move_iterator(work.begin()), std::make_move_iterator(work.end()));
  while (!pending.empty()) {
    const size_t n = std::min(pending.size(), kBatch);
    std::vector<PrepareWork> batch(std::make_move_iterator(pending.begin()),
                                   std::make_move_iterator(pending.begin() + static_cast<std::ptrdiff_t>(n)));
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(n));
    std::vector<Prepared> prepared;
    prepared.reserve(n);
    for (const PrepareWork& w : batch) {  // no lock held
      prepared.push_back(builder_.Prepare(w));
      Prepared& p = prepared.back();
      if (options_.step_caches != nullptr && p.status.ok() && !p.cached.has_value()) {
        p.caches = options_.step_caches->Resolve(w.pipeline, w.branch, w.task.spec().caches());
      }
    }
    mu_.Lock();
    std::set<uint64_t> jobs;
    for (size_t i = 0; i < n; ++i) {
      ApplyPreparedLocked(batch[i], std::move(prepared[i]));
      jobs.insert(batch[i].key.job);
    }
    for (uint64_t number : jobs) {
      if (JobEntry* entry = ActiveLocked(number)) AdvanceLocked(entry);
    }
    DispatchLocked();
    Released released = Release(/*needed=*/0);
    AfterRelease(&released, Mode::kWait);
    pending.insert(pending.begin(), std::make_move_iterator(released.ready.begin()),
                   std::make_move_iterator(released.ready.end()));
  }
}

void JobManager::PersistLocked(JobEntry* entry, const Task& task, bool job_changed, bool synced) {
  const auto index = static_cast<size_t>(task.index());
  if (entry->task_versions.size() <= index) entry->task_versions.resize(static_cast<size_t>(entry->job.tasks_size()));
  if (index < entry->task_versions.size()) entry->task_versions[index] = ++entry->version;
  dirty_tasks_[entry->number].insert(task.index());
  dirty_synced_ = dirty_synced_ || synced;
  if (job_changed) dirty_jobs_.insert(entry->number);
  touched_jobs_.insert(entry->number);
}

void JobManager::MarkJobChangedLocked(uint64_t number) {
  dirty_jobs_.insert(number);
  touched_jobs_.insert(number);
  dirty_synced_ = true;
}

uint64_t JobManager::FlushLocked() {
  for (const auto& [number, indexes] : dirty_tasks_) {
    JobEntry* entry = ActiveLocked(number);
    if (entry == nullptr) continue;
    for (int32_t index : indexes) store_->PutTask(&pending_.batch, number, entry->job.tasks(index));
  }
  if (dirty_synced_) pending_.sync = true;
  for (uint64_t number : dirty_jobs_) {
    if (JobEntry* entry = ActiveLocked(number)) {
      store_->PutJobSummary(&pending_.batch, number, &entry->job);
      if (options_.notifier != nullptr && entry->job.state() != entry->told_state) {  // events go in this batch
        options_.notifier->OnJobStateLocked(entry->job, entry->told_state, &pending_);
        entry->told_state = entry->job.state();
      }
    }
  }
  // Watchers hear of the change once it is written.
  for (uint64_t number : touched_jobs_) {
    JobEntry* entry = ActiveLocked(number);
    if (entry == nullptr) continue;
    watchers_.AddNotices(number, IsFinal(entry->job.state()), &pending_.after);
  }
  const uint64_t ticket = commit_.Enqueue(std::move(pending_));
  pending_ = GroupCommit::Change();
  if (ticket != 0) {
    for (uint64_t number : touched_jobs_) {
      if (JobEntry* entry = ActiveLocked(number)) entry->last_ticket = ticket;
    }
  }
  dirty_tasks_.clear();
  dirty_synced_ = false;
  dirty_jobs_.clear();
  touched_jobs_.clear();
  return ticket;
}

void JobManager::SendLocked(const std::shared_ptr<WorkerSession>& session, assay::v1::CoordinatorMessage message) {
  pending_.after.push_back([session, message = std::move(message)]() mutable { session->Send(std::move(message)); });
}

void JobManager::SendEarlyLocked(const std::shared_ptr<WorkerSession>& session, assay::v1::CoordinatorMessage message) {
  early_.emplace_back(session, std::move(message));
}

void JobManager::MakeReadyLocked(JobEntry* entry, Task* task) {
  PrepareWork work;
  work.key = TaskKey{entry->number, task->index()};
  work.source_root_hash = entry->job.source_root().hash();
  work.source_root_size = entry->job.source_root().size_bytes();
  work.task = *task;
  work.task.clear_result();
  work.pipeline = entry->job.name();
  work.branch = BranchOf(entry->job);
  for (const std::string& need : task->needs()) {
    const Task& dep = entry->job.tasks(entry->task_index[need]);
    work.need_files.insert(work.need_files.end(), dep.result().output_files().begin(), dep.result().output_files().end());
    work.need_links.insert(work.need_links.end(), dep.result().output_symlinks().begin(),
                           dep.result().output_symlinks().end());
  }
  preparing_.insert(work.key);
  to_prepare_.push_back(std::move(work));
}

void JobManager::ApplyPreparedLocked(const PrepareWork& work, Prepared prepared) {
  preparing_.erase(work.key);
  JobEntry* entry = ActiveLocked(work.key.job);
  Task* task = entry == nullptr ? nullptr : entry->job.mutable_tasks(work.key.index);
  if (task == nullptr || task->state() != assay::v1::TASK_PENDING || entry->cancel_requested) {
    if (pinner_ != nullptr && !prepared.pins.empty()) pinner_->Unpin(prepared.pins);  // cancelled meanwhile
    return;
  }
  if (!prepared.status.ok()) {
    FinishTaskLocked(entry, task, assay::v1::TASK_FAILED, std::string(prepared.status.message()));
    return;
  }
  *task->mutable_action_digest() = prepared.action_digest.ToProto();
  if (prepared.cached.has_value()) {
    const reapi::ActionResult& cached = *prepared.cached;
    *task->mutable_result() = cached;
    task->set_cached(true);
    task->set_exit_code(cached.exit_code());
    SystemLogLocked(entry, *task, absl::StrCat("cache hit for action ", prepared.action_digest.hash().substr(0, 12),
                                                ": not run again"));
    for (LogChunk& chunk : prepared.cached_logs) AppendLogLocked(entry, *task, std::move(chunk));
    task->set_started_at_ms(UnixMillis(clock_->Now()));
    const ResultDecision decision = DecideCachedResult(*task, cached);
    ApplySizesLocked(entry, task, decision);
    if (!decision.failure.empty()) SystemLogLocked(entry, *task, decision.failure);
    FinishTaskLocked(entry, task, decision.failure.empty() ? assay::v1::TASK_SUCCEEDED : assay::v1::TASK_FAILED,
                     decision.failure);
    return;
  }
  task->set_state(assay::v1::TASK_QUEUED);
  task->set_queued_at_ms(UnixMillis(clock_->Now()));
  std::vector<std::string> required(task->spec().required_labels().begin(), task->spec().required_labels().end());
  if (!dispatcher_.AnyWorkerCouldRun(required)) {
    entry->awaiting_worker.insert(task->index());
    task->set_message(absl::StrCat("waiting for a worker with labels: ",
                                   required.empty() ? "(any)" : absl::StrJoin(required, ", ")));
  } else {
    task->clear_message();
  }
  dispatcher_.Queue(work.key, std::move(required),
                    Dispatcher::ReadyAction{std::move(prepared.action), std::move(prepared.command),
                                            std::move(prepared.pins), std::move(prepared.input_tree),
                                            std::move(prepared.caches)},
                    ExpectedMsLocked(entry, *task), WorkerWithInputs(entry->job, entry->task_index, *task));
  PersistLocked(entry, *task, false, /*synced=*/false);  // prepared again after a crash
}

}  // namespace assay
