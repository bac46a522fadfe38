// From a parsed pipeline to the tasks of a job: one task per matrix cell x step, with its spec,
// matrix values and needs resolved to task ids. Pure: no I/O, no clock, no state.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "assay/v1/jobs.pb.h"
#include "common/digest/digest.h"
#include "common/pipeline/pipeline.h"

namespace assay {

struct PlanInput {
  std::string pipeline_path;                  // as submitted, for error messages and expressions
  reapi::Digest source_root;
  std::map<std::string, std::string> labels;  // the submitter's
  std::string request_id;                     // SubmitRequest.request_id
  int64_t created_at_ms = 0;
  int32_t priority = 0;                       // SubmitRequest.priority
  std::map<std::string, std::string> image_ids;  // SubmitRequest.image_ids
  // Sizes to compare against (`size_regression`): task id -> output path -> size. Empty: none.
  std::map<std::string, std::map<std::string, assay::v1::FileSize>> baseline;
  // hashFiles() in cache keys, over the submitted tree; empty: a stand-in (tests of plans alone).
  HashFilesFn hash_files;
};

// The job (state QUEUED, no id yet) with its tasks (PENDING), in order: task index = cell * steps +
// step, so a step's needs (earlier steps of its cell) always have lower indexes. Fails with the
// pipeline file's line when a step's expressions cannot be expanded for a cell.
absl::StatusOr<assay::v1::Job> PlanJob(const Pipeline& pipeline, const PlanInput& input);

}  // namespace assay
