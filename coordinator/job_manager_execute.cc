// JobManager's part of remote execution (REAPI Execute, docs/bazel.md): an action a client sent,
// already checked by ExecuteIntake, becomes a task of its invocation's open job, and goes through
// the same scheduler, leases and workers as a pipeline's steps. An identical action in flight is
// joined instead. Open jobs end once idle.
#include <algorithm>
#include <optional>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "coordinator/job_manager.h"

namespace assay {

using assay::v1::Job;
using assay::v1::Task;

namespace {

std::string InFlightKey(const std::string& instance, const std::string& digest) {
  return absl::StrCat(instance, "\n", digest);
}

std::string InFlightKey(const Task& task) {
  return InFlightKey(task.spec().instance_name(),
                     absl::StrCat(task.action_digest().hash(), "/", task.action_digest().size_bytes()));
}

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

constexpr const char* kInvocationLabel = "invocation";

// The tool_invocation_id an open job was made for ("" when its client sent none).
std::string InvocationOf(const Job& job) {
  auto label = job.labels().find(kInvocationLabel);
  return label == job.labels().end() ? "" : label->second;
}

}  // namespace

absl::StatusOr<JobManager::ExecuteTicket> JobManager::Execute(const RemoteAction& action) {
  const std::string key = InFlightKey(action.instance_name, action.action_digest.ToString());
  const bool may_join = !action.action.do_not_cache();
  // Joins the identical action in flight, or adds to the invocation's open job; nullopt: that job
  // has to be created first.
  auto existing = [&](Section& section) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_)
      -> std::optional<absl::StatusOr<ExecuteTicket>> {
    if (auto it = in_flight_.find(key); may_join && it != in_flight_.end()) {
      if (JobEntry* entry = ActiveLocked(it->second.job)) {
        section.NeedWritten(*entry);
        FollowLocked(it->second);
        return ExecuteTicket{entry->job.id(), it->second.index, /*joined=*/true};
      }
    }
    // Never queued forever, never UNAVAILABLE (which Bazel retries, then aborts the whole build).
    // With no worker known at all (a coordinator that just started, its workers not yet back) the
    // action waits, and fails after the grace period like any task no worker comes for.
    if (std::string why = dispatcher_.workers().empty()
                              ? std::string()
                              : dispatcher_.WhyUnschedulable(action.required_labels, options_.unschedulable_grace);
        !why.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("no worker can run this action's platform: ", why));
    }
    auto job = invocations_.find(action.invocation_id);
    JobEntry* entry = job == invocations_.end() ? nullptr : ActiveLocked(job->second);
    if (entry == nullptr || !entry->job.open()) return std::nullopt;
    return AddRemoteTaskLocked(entry, action);
  };
  auto added = Decide([&](Section& section) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return existing(section); });
  if (added.has_value()) return std::move(*added);
  auto number = store_->NextJobNumber();  // a persisted counter with a lock of its own: not under mu_
  if (!number.ok()) return number.status();
  return Decide([&](Section& section) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> absl::StatusOr<ExecuteTicket> {
    // Another Execute of the invocation may have created its job meanwhile (this number then stays
    // unused: numbers are never reused, gaps are harmless).
    if (auto again = existing(section); again.has_value()) return std::move(*again);
    std::unique_ptr<JobEntry> fresh = NewRemoteJobLocked(*number, action);
    JobEntry* entry = fresh.get();
    jobs_[*number] = std::move(fresh);
    invocations_[action.invocation_id] = *number;
    dispatcher_.SetJobPolicy(*number, entry->job.priority(), /*max_parallel=*/0);
    MarkJobChangedLocked(*number);
    spdlog::info("job {} opened for {} invocation {}", *number, action.tool,
                 action.invocation_id.empty() ? "(none given)" : action.invocation_id);
    return AddRemoteTaskLocked(entry, action);
  });
}

std::unique_ptr<JobManager::JobEntry> JobManager::NewRemoteJobLocked(uint64_t number, const RemoteAction& action) {
  auto entry = std::make_unique<JobEntry>();
  entry->number = number;
  Job& job = entry->job;
  job.set_id(absl::StrCat(number));
  job.set_state(assay::v1::JOB_QUEUED);
  job.set_name(action.tool.substr(0, action.tool.find(' ')));  // "bazel"
  (*job.mutable_labels())[kInvocationLabel] = action.invocation_id;
  (*job.mutable_labels())["tool"] = action.tool;
  if (!action.instance_name.empty()) (*job.mutable_labels())["instance"] = action.instance_name;
  job.set_created_at_ms(UnixMillis(clock_->Now()));
  // REAPI: a lower ExecutionPolicy.priority runs sooner; Assay's job priorities run higher first.
  job.set_priority(-action.priority);
  job.set_open(true);
  return entry;
}

JobManager::ExecuteTicket JobManager::AddRemoteTaskLocked(JobEntry* entry, const RemoteAction& action) {
  const int32_t index = entry->job.tasks_size();
  Task task;
  // A row per action in `assay job` (its digest's first 12 hex digits), a column per kind.
  std::string cell = action.action_digest.hash().substr(0, 12);
  const std::string step = action.mnemonic.empty() ? Basename(action.command.arguments(0)) : action.mnemonic;
  if (entry->task_index.contains(absl::StrCat(cell, "/", step))) absl::StrAppend(&cell, "-", index);  // ran before
  task.set_id(absl::StrCat(cell, "/", step));
  task.set_cell(cell);
  task.set_step(step);
  task.set_index(index);
  task.set_state(assay::v1::TASK_PENDING);
  if (!action.target.empty()) (*task.mutable_matrix())["target"] = action.target;
  *task.mutable_action_digest() = action.action_digest.ToProto();
  assay::v1::TaskSpec* spec = task.mutable_spec();
  spec->set_remote(true);
  spec->set_instance_name(action.instance_name);
  for (const std::string& label : action.required_labels) spec->add_required_labels(label);
  const auto& timeout = action.action.timeout();
  spec->set_timeout_ms(timeout.seconds() * 1000 + timeout.nanos() / 1'000'000);
  spec->set_cache(!action.action.do_not_cache());
  entry->task_index[task.id()] = index;
  entry->next_seq.push_back(0);
  *entry->job.add_tasks() = std::move(task);
  entry->job.set_task_count(entry->job.tasks_size());
  entry->last_added_ms = UnixMillis(clock_->Now());
  const Task& added = entry->job.tasks(index);
  if (spec->cache()) in_flight_[InFlightKey(added)] = TaskKey{entry->number, index};
  FollowLocked(TaskKey{entry->number, index});
  PersistLocked(entry, added, /*job_changed=*/true);
  AdvanceLocked(entry);  // ready at once (no needs): prepared as the section ends
  DispatchLocked();
  return ExecuteTicket{entry->job.id(), index, /*joined=*/false};
}

void JobManager::ForgetInFlightLocked(const JobEntry& entry, const Task& task) {
  followers_.erase(TaskKey{entry.number, task.index()});
  abandoned_since_.erase(TaskKey{entry.number, task.index()});
  auto it = in_flight_.find(InFlightKey(task));
  if (it != in_flight_.end() && it->second == TaskKey{entry.number, task.index()}) in_flight_.erase(it);
}

void JobManager::RecoverRemoteLocked(JobEntry* entry) {
  if (!entry->job.open()) return;
  invocations_[InvocationOf(entry->job)] = entry->number;
  entry->last_added_ms = UnixMillis(clock_->Now());  // idle from now: its client may come back
  for (const Task& task : entry->job.tasks()) {
    if (!task.spec().remote() || IsFinal(task.state())) continue;
    if (task.spec().cache()) in_flight_[InFlightKey(task)] = TaskKey{entry->number, task.index()};
    // Its client's stream broke with the restart: it has the grace period to WaitExecution again.
    abandoned_since_[TaskKey{entry->number, task.index()}] = entry->last_added_ms;
  }
}

void JobManager::FollowRemoteTask(const std::string& job_id, int32_t index, bool following) {
  auto number = ParseJobId(job_id);
  if (!number.ok()) return;
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    JobEntry* entry = ActiveLocked(*number);
    if (entry == nullptr || index < 0 || index >= entry->job.tasks_size()) return;
    if (IsFinal(entry->job.tasks(index).state())) return;
    const TaskKey key{*number, index};
    if (following) {
      FollowLocked(key);
      return;
    }
    auto it = followers_.find(key);
    if (it == followers_.end() || --it->second > 0) return;
    followers_.erase(it);
    abandoned_since_[key] = UnixMillis(clock_->Now());
  });
}

void JobManager::FollowLocked(TaskKey key) {
  ++followers_[key];
  abandoned_since_.erase(key);
}

void JobManager::CancelAbandonedLocked() {
  const int64_t now = UnixMillis(clock_->Now());
  const int64_t grace = absl::ToInt64Milliseconds(options_.remote_abandoned_grace);
  std::vector<TaskKey> due;
  for (const auto& [key, since] : abandoned_since_) {
    if (now - since >= grace) due.push_back(key);
  }
  for (const TaskKey& key : due) {
    abandoned_since_.erase(key);
    JobEntry* entry = ActiveLocked(key.job);
    if (entry == nullptr || key.index >= entry->job.tasks_size()) continue;
    CancelTaskLocked(entry, entry->job.mutable_tasks(key.index),
                     absl::StrCat("cancelled: no client has waited for this action for ",
                                  absl::FormatDuration(options_.remote_abandoned_grace),
                                  " (every Execute and WaitExecution stream of it ended)"));
    AdvanceLocked(entry);
  }
}

void JobManager::CloseIdleJobsLocked() {
  const int64_t now = UnixMillis(clock_->Now());
  std::vector<uint64_t> idle;
  for (const auto& [number, entry] : jobs_) {
    const Job& job = entry->job;
    if (job.open() && job.tasks_done() == job.task_count() &&
        now - entry->last_added_ms >= absl::ToInt64Milliseconds(options_.remote_job_idle)) {
      idle.push_back(number);
    }
  }
  for (uint64_t number : idle) {  // AdvanceLocked may retire jobs from jobs_: not while walking it
    JobEntry* entry = ActiveLocked(number);
    if (entry == nullptr) continue;
    entry->job.set_open(false);
    auto job = invocations_.find(InvocationOf(entry->job));
    if (job != invocations_.end() && job->second == number) invocations_.erase(job);
    MarkJobChangedLocked(number);
    AdvanceLocked(entry);  // every task is final: the job ends with their outcome
    if (IsFinal(entry->job.state())) {  // when its last task did, not when it was found idle
      int64_t last = entry->job.created_at_ms();
      for (const Task& task : entry->job.tasks()) last = std::max(last, task.finished_at_ms());
      entry->job.set_finished_at_ms(last);
    }
  }
}

}  // namespace assay
