#include "coordinator/intake.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/file_util.h"
#include "common/base/status_util.h"
#include "common/task/task_states.h"
#include "common/tree/merkle.h"
#include "coordinator/cache_keys.h"
#include "coordinator/execute_intake.h"
#include "coordinator/notification_rules.h"
#include "coordinator/planner.h"
#include "coordinator/time_rules.h"

namespace assay {

using assay::v1::Job;

absl::Status Intake::CheckRequestId(const assay::v1::SubmitRequest& request) {
  if (request.request_id().size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("request_id is longer than ", kMaxRequestIdBytes, " characters"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Intake::Accepted> Intake::Accept(const assay::v1::SubmitRequest& request) const {
  if (absl::Status s = CheckRequestId(request); !s.ok()) return s;
  auto root = Digest::FromProto(request.source_root());
  if (!root.ok()) return Annotate(root.status(), "source_root");
  const std::string path = request.pipeline_path().empty() ? "assay.yaml" : request.pipeline_path();
  if (absl::Status s = CheckRelativePath(path, "pipeline_path"); !s.ok()) return s;

  auto missing = blobs_->FindMissing({*root});
  if (!missing.ok()) return missing.status();
  if (!missing->empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("source tree ", root->ToString(), " is not in the CAS; upload it before submitting"));
  }
  // The whole tree is checked before the job exists: workers will write it to their disks.
  // The files' digests are gathered as the tree is read for validation, so none is read twice.
  std::vector<Digest> file_digests;
  absl::flat_hash_set<Digest> seen_files;
  auto tree = ValidateTree(
      *root,
      [&](const Digest& d) {
        auto dir = LoadDirectory(*blobs_, d);
        if (!dir.ok()) return dir;
        for (const auto& f : dir->files()) {
          if (auto fd = Digest::FromProto(f.digest()); fd.ok() && seen_files.insert(*fd).second) file_digests.push_back(*fd);
        }
        return dir;
      },
      options_.tree_limits);
  if (!tree.ok()) return tree.status();
  // Every file too: one evicted since the client's upload would fail the steps that need it, later
  // and less clearly. The client uploads what is named and submits again (the CLI does).
  if (absl::Status s = CheckFilesPresent(file_digests); !s.ok()) return s;
  auto pipeline = ReadPipeline(*root, path);
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
  const DirectoryLoader load = [this](const Digest& d) { return LoadDirectory(*blobs_, d); };
  auto files = std::make_shared<TreeFiles>(*root, load);
  plan.hash_files = [files](const std::vector<std::string>& patterns) { return files->Hash(patterns); };
  if (pipeline->size_regression.warn_percent > 0 || pipeline->size_regression.fail_percent > 0) {
    auto baseline = LoadBaseline(*pipeline, *root, plan.labels);
    if (!baseline.ok()) return baseline.status();
    plan.baseline = std::move(*baseline);
  }
  auto planned = PlanJob(*pipeline, plan);
  if (!planned.ok()) return planned.status();
  if (absl::Status s = KeepCells(request.cells(), &*planned); !s.ok()) return s;
  if (absl::Status s = CheckCachePaths(*planned, *root, load, path); !s.ok()) return s;
  if (absl::Status s = CheckNotify(*pipeline, *planned, path); !s.ok()) return s;
  if (pipeline->time_regression.enabled) {
    if (absl::Status s = LoadTimeBaselines(&*planned); !s.ok()) return s;
  }
  return Accepted{std::move(*planned), pipeline->cells.size(), pipeline->steps.size()};
}

absl::Status Intake::CheckFilesPresent(const std::vector<Digest>& files) const {
  auto missing = blobs_->FindMissing(files);
  if (!missing.ok()) return missing.status();
  if (missing->empty()) return absl::OkStatus();
  return MissingBlobsError(*missing, "source tree's files", "upload them and submit again");
}

absl::Status KeepCells(const google::protobuf::RepeatedPtrField<std::string>& cells, Job* job) {
  if (cells.empty()) return absl::OkStatus();
  absl::flat_hash_set<std::string> wanted(cells.begin(), cells.end());
  absl::flat_hash_set<std::string> known, kept_ids;
  google::protobuf::RepeatedPtrField<assay::v1::Task> kept;
  for (assay::v1::Task& task : *job->mutable_tasks()) {
    known.insert(task.cell());
    if (!wanted.contains(task.cell())) continue;
    kept_ids.insert(task.id());
    *kept.Add() = std::move(task);
  }
  for (const std::string& cell : cells) {
    if (!known.contains(cell)) {
      return absl::InvalidArgumentError(absl::StrCat("cells: the pipeline has no cell '", cell, "'"));
    }
  }
  for (int i = 0; i < kept.size(); ++i) {
    for (const std::string& need : kept[i].needs()) {
      if (!kept_ids.contains(need)) {
        return absl::InvalidArgumentError(
            absl::StrCat("cells: ", kept[i].id(), " needs ", need, ", which is in a cell not chosen"));
      }
    }
    kept[i].set_index(i);
  }
  job->mutable_tasks()->Swap(&kept);
  job->set_task_count(job->tasks_size());
  return absl::OkStatus();
}

absl::StatusOr<Pipeline> Intake::ReadPipeline(const Digest& root, const std::string& path) const {
  auto file = FindFile(root, path, [this](const Digest& d) { return LoadDirectory(*blobs_, d); });
  if (!file.ok()) {
    if (absl::IsNotFound(file.status())) {
      return absl::FailedPreconditionError(absl::StrCat("the submitted tree has no pipeline file '", path, "'"));
    }
    return file.status();
  }
  auto file_digest = Digest::FromProto(file->digest());
  if (!file_digest.ok()) return file_digest.status();
  if (file_digest->size() > kMaxPipelineFileBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is larger than 1 MiB"));
  }
  auto text = blobs_->Get(*file_digest);
  if (!text.ok()) return text.status();
  return ParsePipeline(*text, path, options_.limits);
}

absl::Status Intake::CheckNotify(const Pipeline& pipeline, const Job& job, const std::string& path) const {
  for (size_t i = 0; i < pipeline.notify.size(); ++i) {
    const NotifySpec& spec = pipeline.notify[i];
    const std::string where = absl::StrCat(path, ":", spec.line, ": notify[", i, "]");
    auto target = options_.notify_targets.find(spec.to);
    if (target == options_.notify_targets.end()) {
      std::vector<std::string> names;
      for (const auto& [name, kind] : options_.notify_targets) names.push_back(name);
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": no notification target '", spec.to, "' is configured on this coordinator (",
          names.empty() ? "it has none: see --notify-config" : absl::StrCat("configured: ", absl::StrJoin(names, ", ")),
          ")"));
    }
    if (PostsCommitStatus(target->second)) {
      if (absl::Status s = CheckStatusLabels(job, target->second); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(where, ": target '", spec.to, "' (", KindName(target->second),
                                                       "): ", s.message()));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<BaselineSizes> Intake::LoadBaseline(const Pipeline& pipeline, const Digest& root,
                                                  const std::map<std::string, std::string>& labels) const {
  const std::string& file_name = pipeline.size_regression.baseline_file;
  if (!file_name.empty()) {
    auto file = FindFile(root, file_name, [this](const Digest& d) { return LoadDirectory(*blobs_, d); });
    if (!file.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("size_regression.baseline '", file_name, "' is not in the submitted tree"));
    }
    auto digest = Digest::FromProto(file->digest());
    if (!digest.ok()) return digest.status();
    if (digest->size() > kMaxBaselineFileBytes) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, " is larger than 16 MiB"));
    }
    auto text = blobs_->Get(*digest);
    if (!text.ok()) return text.status();
    return ParseBaselineFile(*text, file_name);
  }
  // The previous successful job of this pipeline and branch.
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

absl::Status Intake::LoadTimeBaselines(Job* job) const {
  std::map<std::string, int> wanted;
  for (const auto& task : job->tasks()) {
    if (task.spec().has_time_regression()) wanted[task.id()] = task.spec().time_regression().runs();
  }
  if (wanted.empty()) return absl::OkStatus();
  auto jobs = store_->ListJobs(kTimeBaselineSearchJobs);
  if (!jobs.ok()) return jobs.status();
  TimeBaselineCollector collector(std::move(wanted));
  const std::string branch = BranchOf(*job);
  for (const Job& earlier : *jobs) {  // newest first
    if (collector.Full()) break;
    if (!IsTimeBaselineJob(earlier, job->name(), branch)) continue;
    auto number = ParseJobId(earlier.id());
    if (!number.ok()) return number.status();
    auto whole = store_->LoadJob(*number, /*with_tasks=*/true);
    if (!whole.ok()) return whole.status();
    collector.Add(*whole);
  }
  const std::map<std::string, assay::v1::TimeBaseline> baselines = collector.Baselines();
  spdlog::info("run times of pipeline {}: {} of {} timed tasks have a baseline", job->name(), baselines.size(),
               std::count_if(job->tasks().begin(), job->tasks().end(),
                             [](const auto& t) { return t.spec().has_time_regression(); }));
  for (auto& task : *job->mutable_tasks()) {
    auto it = baselines.find(task.id());
    if (it != baselines.end()) *task.mutable_spec()->mutable_time_baseline() = it->second;
  }
  return absl::OkStatus();
}

}  // namespace assay
