// Intake: what a SubmitRequest must be before it becomes a job. It checks the request, validates the
// whole source tree (workers will write it to their disks), reads and parses the pipeline file,
// finds the size baseline, plans the tasks and fixes the time baselines of timed ones. It reads the CAS and the job store, holds no lock and
// keeps no state; JobManager::Submit numbers, writes and queues what it returns.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "assay/v1/jobs.pb.h"
#include "common/base/clock.h"
#include "common/cas/blob_store.h"
#include "common/pipeline/pipeline.h"
#include "common/tree/tree_validator.h"
#include "coordinator/baseline.h"
#include "coordinator/job_store.h"
#include "coordinator/notify_config.h"

namespace assay {

class Intake {
 public:
  struct Options {
    PipelineLimits limits;   // what a pipeline file may ask for
    TreeLimits tree_limits;  // what a submitted source tree may be
    std::map<std::string, NotifyTarget::Kind> notify_targets;  // what `notify:` may name (--notify-config)
  };
  // A planned job: state QUEUED, tasks PENDING, no id yet.
  struct Accepted {
    assay::v1::Job job;
    size_t cells = 0, steps = 0;  // of its pipeline, for the log
  };
  static constexpr size_t kMaxRequestIdBytes = 128;
  static constexpr int64_t kMaxPipelineFileBytes = 1 << 20;
  static constexpr int64_t kMaxBaselineFileBytes = 16 << 20;
  // Jobs searched for the previous successful run of a pipeline (size_regression without a file).
  static constexpr int kBaselineSearchJobs = 500;
  // Jobs searched for the earlier runs of timed steps (time_regression); of those, the ones of the
  // pipeline and branch are read whole until every timed task has its runs.
  static constexpr int kTimeBaselineSearchJobs = 200;

  Intake(BlobStore* blobs, JobStore* store, const Clock* clock, Options options)
      : blobs_(blobs), store_(store), clock_(clock), options_(std::move(options)) {}

  // The check that reads nothing, made before a retried request is looked up by its id.
  static absl::Status CheckRequestId(const assay::v1::SubmitRequest& request);
  // Everything else: FailedPrecondition when the tree or its pipeline file is missing,
  // InvalidArgument when the request, the tree or the pipeline is not acceptable.
  absl::StatusOr<Accepted> Accept(const assay::v1::SubmitRequest& request) const;

 private:
  // FAILED_PRECONDITION naming those of the tree's `files` the CAS lacks (MISSING violations), if any.
  absl::Status CheckFilesPresent(const std::vector<Digest>& files) const;
  // The pipeline file at `path` in the tree, parsed.
  absl::StatusOr<Pipeline> ReadPipeline(const Digest& root, const std::string& path) const;
  // Every `notify:` entry names a configured target; commit-status targets have the labels they need.
  absl::Status CheckNotify(const Pipeline& pipeline, const assay::v1::Job& job, const std::string& path) const;
  // Sizes to compare a new job's outputs with (size_regression): a file of the tree, or the previous
  // successful job of the pipeline and branch in the store.
  absl::StatusOr<BaselineSizes> LoadBaseline(const Pipeline& pipeline, const Digest& root,
                                             const std::map<std::string, std::string>& labels) const;
  // Fixes into each timed task of `job` (spec.time_regression) its time baseline: the median of its
  // last successful, not cached runs in the store's earlier jobs of the same pipeline and branch.
  absl::Status LoadTimeBaselines(assay::v1::Job* job) const;

  BlobStore* const blobs_;
  JobStore* const store_;
  const Clock* const clock_;
  const Options options_;
};

// Keeps only the tasks of `cells` (SubmitRequest.cells; empty: all), renumbered; a cell the job does
// not have, or a kept task needing one left out, is INVALID_ARGUMENT.
absl::Status KeepCells(const google::protobuf::RepeatedPtrField<std::string>& cells, assay::v1::Job* job);

}  // namespace assay
