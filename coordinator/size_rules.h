// Size budgets and regressions of a step's outputs (`limits: {size: ...}` and `size_regression`):
// pure decisions over the sizes the worker measured (OutputSizes in the action result's auxiliary
// metadata, so cached results carry them) and the baseline fixed at submit.
#pragma once

#include <string>
#include <vector>

#include "assay/v1/job.pb.h"
#include "build/bazel/remote/execution/v2/remote_execution.pb.h"

namespace assay {

struct SizeVerdict {
  std::string failure;                       // a budget exceeded or a regression beyond `fail`
  std::vector<std::string> warnings;         // a regression beyond `warn`
  std::vector<assay::v1::FileSize> sizes;    // ELF files and budgeted paths, for the task and reports
};

// The sizes a worker measured for an action result; empty when it has none.
std::vector<assay::v1::FileSize> MeasuredSizes(const build::bazel::remote::execution::v2::ActionResult& result);

SizeVerdict CheckSizes(const assay::v1::TaskSpec& spec, const build::bazel::remote::execution::v2::ActionResult& result);

}  // namespace assay
