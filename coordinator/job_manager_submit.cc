// JobManager::Submit: a pipeline file and a source tree become a job: parsed, planned, its size
// baseline found, written, and its first tasks queued.
#include <algorithm>
#include <set>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/match.h"
#include "common/file_util.h"
#include "common/merkle.h"
#include "common/status_util.h"
#include "coordinator/job_manager.h"
#include "coordinator/planner.h"
#include "coordinator/task_rules.h"

namespace assay {

using assay::v1::Job;
using assay::v1::Task;

absl::StatusOr<Job> JobManager::Submit(const assay::v1::SubmitRequest& request) {
  if (request.request_id().size() > 128) return absl::InvalidArgumentError("request_id is longer than 128 characters");
  if (!request.request_id().empty()) {
    Locked lock(this);
    auto it = submissions_.find(request.request_id());
    if (it != submissions_.end()) {
      if (JobEntry* entry = ActiveLocked(it->second)) return entry->job;
    }
  }
  auto root = Digest::FromProto(request.source_root());
  if (!root.ok()) return Annotate(root.status(), "source_root");
  std::string path = request.pipeline_path().empty() ? "assay.yaml" : request.pipeline_path();
  if (absl::Status s = CheckRelativePath(path, "pipeline_path"); !s.ok()) return s;

  auto missing = blobs_->FindMissing({*root});
  if (!missing.ok()) return missing.status();
  if (!missing->empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("source tree ", root->ToString(), " is not in the CAS; upload it before submitting"));
  }
  // The whole tree is checked before the job exists: workers will write it to their disks.
  auto tree = ValidateTree(*root, [this](const Digest& d) { return LoadDirectory(*blobs_, d); }, options_.tree_limits);
  if (!tree.ok()) return tree.status();
  auto file = FindFile(*root, path, [this](const Digest& d) { return LoadDirectory(*blobs_, d); });
  if (!file.ok()) {
    if (absl::IsNotFound(file.status())) {
      return absl::FailedPreconditionError(absl::StrCat("the submitted tree has no pipeline file '", path, "'"));
    }
    return file.status();
  }
  auto file_digest = Digest::FromProto(file->digest());
  if (!file_digest.ok()) return file_digest.status();
  if (file_digest->size() > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is larger than 1 MiB"));
  }
  auto text = blobs_->Get(*file_digest);
  if (!text.ok()) return text.status();
  auto pipeline = ParsePipeline(*text, path, options_.limits);
  if (!pipeline.ok()) return pipeline.status();

  PlanInput plan;
  plan.pipeline_path = path;
  plan.source_root = root->ToProto();
  plan.labels = {request.labels().begin(), request.labels().end()};
  plan.request_id = request.request_id();
  if (request.priority() < -1000 || request.priority() > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("priority ", request.priority(), " is outside -1000..1000"));
  }
  plan.priority = request.priority();
  plan.image_ids = {request.image_ids().begin(), request.image_ids().end()};
  plan.created_at_ms = UnixMillis(clock_->Now());
  if (pipeline->size_regression.warn_percent > 0 || pipeline->size_regression.fail_percent > 0) {
    auto baseline = LoadBaseline(*pipeline, *root, plan.labels);
    if (!baseline.ok()) return baseline.status();
    plan.baseline = std::move(*baseline);
  }
  auto planned = PlanJob(*pipeline, plan);
  if (!planned.ok()) return planned.status();
  Job job = std::move(*planned);

  auto number = store_->NextJobNumber();
  if (!number.ok()) return number.status();
  job.set_id(absl::StrCat(*number));
  std::vector<Task> tasks(job.tasks().begin(), job.tasks().end());
  if (absl::Status s = store_->CreateJob(*number, job, tasks); !s.ok()) return s;

  std::vector<std::string> warnings;
  {
    Locked lock(this);
    auto entry = std::make_unique<JobEntry>();
    entry->number = *number;
    entry->job = std::move(job);
    entry->next_seq.assign(static_cast<size_t>(entry->job.tasks_size()), 0);
    for (const Task& t : entry->job.tasks()) entry->task_index[t.id()] = t.index();
    JobEntry* raw = entry.get();
    dispatcher_.SetJobPolicy(*number, raw->job.priority(), raw->job.max_parallel());
    jobs_[*number] = std::move(entry);
    if (!request.request_id().empty()) submissions_[request.request_id()] = *number;
    spdlog::info("job {} submitted: {} ({} cells x {} steps)", *number, raw->job.name(), pipeline->cells.size(),
                 pipeline->steps.size());
    AdvanceLocked(raw);
    DispatchLocked();
    // Tasks no worker could run now are worth a warning at once (they fail after the grace period).
    std::set<std::vector<std::string>> label_sets;
    for (const Task& t : raw->job.tasks()) {
      label_sets.emplace(t.spec().required_labels().begin(), t.spec().required_labels().end());
    }
    for (const auto& labels : label_sets) {
      std::string why = dispatcher_.WhyUnschedulable(labels, options_.unschedulable_grace);
      if (!why.empty()) {
        warnings.push_back(absl::StrCat(why, "; such steps fail in ", absl::FormatDuration(options_.unschedulable_grace),
                                        " unless a worker that has them connects"));
      }
    }
  }  // the new job's first tasks are prepared here, with the lock released
  auto created = GetJob(absl::StrCat(*number), /*with_tasks=*/true);
  if (created.ok() && !warnings.empty()) created->set_message(absl::StrJoin(warnings, "\n"));
  return created;
}

absl::StatusOr<BaselineSizes> JobManager::LoadBaseline(const Pipeline& pipeline, const Digest& root,
                                                      const std::map<std::string, std::string>& labels) {
  const std::string& file_name = pipeline.size_regression.baseline_file;
  if (!file_name.empty()) {
    auto file = FindFile(root, file_name, [this](const Digest& d) { return LoadDirectory(*blobs_, d); });
    if (!file.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("size_regression.baseline '", file_name, "' is not in the submitted tree"));
    }
    auto digest = Digest::FromProto(file->digest());
    if (!digest.ok()) return digest.status();
    if (digest->size() > (16 << 20)) return absl::InvalidArgumentError(absl::StrCat(file_name, " is larger than 16 MiB"));
    auto text = blobs_->Get(*digest);
    if (!text.ok()) return text.status();
    return ParseBaselineFile(*text, file_name);
  }
  // The previous successful job of this pipeline and branch (read from the store, not under the lock).
  auto jobs = store_->ListJobs(kBaselineSearchJobs);
  if (!jobs.ok()) return jobs.status();
  auto branch = labels.find("branch");
  const Job* found = FindBaselineJob(*jobs, pipeline.name, branch == labels.end() ? "" : branch->second);
  if (found == nullptr) return BaselineSizes{};
  auto number = ParseJobId(found->id());
  if (!number.ok()) return number.status();
  auto job = store_->LoadJob(*number, /*with_tasks=*/true);
  if (!job.ok()) return job.status();
  spdlog::info("sizes of pipeline {} are compared with job {}", pipeline.name, found->id());
  return BaselineFromJob(*job);
}

}  // namespace assay
