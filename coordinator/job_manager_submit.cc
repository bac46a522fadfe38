// JobManager::Submit: a request Intake accepts becomes a job: numbered, written, put in memory, and
// its first tasks made ready (prepared once the section ends).
#include <set>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/job_manager.h"

namespace assay {

using assay::v1::Job;
using assay::v1::Task;

absl::StatusOr<Job> JobManager::Submit(const assay::v1::SubmitRequest& request) {
  if (absl::Status s = Intake::CheckRequestId(request); !s.ok()) return s;
  if (!request.request_id().empty()) {  // a retried request gets the job its first try created
    std::optional<Job> known = Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) -> std::optional<Job> {
      auto it = submissions_.find(request.request_id());
      if (it == submissions_.end()) return std::nullopt;
      if (JobEntry* entry = ActiveLocked(it->second)) return entry->job;
      return std::nullopt;
    });
    if (known.has_value()) return std::move(*known);
  }
  auto accepted = intake_.Accept(request);  // reads the CAS and the store: no lock held
  if (!accepted.ok()) return accepted.status();
  std::vector<std::string> warnings;
  auto number = CreateJob(request, std::move(*accepted), &warnings);
  if (!number.ok()) return number.status();
  auto created = GetJob(absl::StrCat(*number), /*with_tasks=*/true);
  if (created.ok() && !warnings.empty()) created->set_message(absl::StrJoin(warnings, "\n"));
  return created;
}

absl::StatusOr<uint64_t> JobManager::CreateJob(const assay::v1::SubmitRequest& request, Intake::Accepted accepted,
                                               std::vector<std::string>* warnings) {
  auto number = store_->NextJobNumber();
  if (!number.ok()) return number.status();
  Job& job = accepted.job;
  job.set_id(absl::StrCat(*number));
  std::vector<Task> tasks(job.tasks().begin(), job.tasks().end());
  if (absl::Status s = store_->CreateJob(*number, job, tasks); !s.ok()) return s;
  Decide([&](Section&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto entry = std::make_unique<JobEntry>();
    entry->number = *number;
    entry->job = std::move(job);
    entry->next_seq.assign(static_cast<size_t>(entry->job.tasks_size()), 0);
    for (const Task& t : entry->job.tasks()) entry->task_index[t.id()] = t.index();
    JobEntry* raw = entry.get();
    dispatcher_.SetJobPolicy(*number, raw->job.priority(), raw->job.max_parallel());
    jobs_[*number] = std::move(entry);
    if (!request.request_id().empty()) submissions_[request.request_id()] = *number;
    spdlog::info("job {} submitted: {} ({} cells x {} steps)", *number, raw->job.name(), accepted.cells,
                 accepted.steps);
    AdvanceLocked(raw);
    DispatchLocked();
    *warnings = UnschedulableWarningsLocked(*raw);
  });  // the new job's first tasks are prepared as the section ends, with the lock released
  return *number;
}

std::vector<std::string> JobManager::UnschedulableWarningsLocked(const JobEntry& entry) {
  // Tasks no worker could run now are worth a warning at once (they fail after the grace period).
  std::set<std::vector<std::string>> label_sets;
  for (const Task& t : entry.job.tasks()) {
    label_sets.emplace(t.spec().required_labels().begin(), t.spec().required_labels().end());
  }
  std::vector<std::string> warnings;
  for (const auto& labels : label_sets) {
    std::string why = dispatcher_.WhyUnschedulable(labels, options_.unschedulable_grace);
    if (!why.empty()) {
      warnings.push_back(absl::StrCat(why, "; such steps fail in ", absl::FormatDuration(options_.unschedulable_grace),
                                      " unless a worker that has them connects"));
    }
  }
  return warnings;
}

}  // namespace assay
