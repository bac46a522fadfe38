// The sizes a job is compared against (`size_regression`): a baseline JSON file in the submitted
// tree, or the last successful job with the same pipeline name and `branch` label on this farm.
// The file has the shape `assay report JOB --json` writes, so a saved report is a baseline:
//   {"sizes": {"TASK_ID": {"PATH": {"file": 1234, "text": 1000, "data": 8, "bss": 64}}}}
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "assay/v1/job.pb.h"

namespace assay {

// task id -> output path -> size
using BaselineSizes = std::map<std::string, std::map<std::string, assay::v1::FileSize>>;

// An error names the file and what is wrong in it.
absl::StatusOr<BaselineSizes> ParseBaselineFile(absl::string_view text, absl::string_view file_name);

BaselineSizes BaselineFromJob(const assay::v1::Job& job);

// The newest of `jobs` (newest first) that succeeded, has `name` and the same `branch` label (or
// none, like this one); nullptr when there is none.
const assay::v1::Job* FindBaselineJob(const std::vector<assay::v1::Job>& jobs, const std::string& name,
                                      const std::string& branch);

}  // namespace assay
