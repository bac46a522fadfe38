// How long a step ran, for `time_regression` (the coordinator's verdict) and the reports (the CLI):
// written once for both.
#pragma once

#include <cstdint>
#include <string>

#include "build/bazel/remote/execution/v2/remote_execution.pb.h"

namespace assay {

// How long the step's command or emulator ran on the worker: the result's execution_completed minus
// execution_start (the worker sets them around the run alone: no queueing, input fetching or
// uploading); 0 when it has none.
int64_t RunMillis(const build::bazel::remote::execution::v2::ActionResult& result);

// "2.41 s", "0.990 s", "12.5 s": a run time in seconds, with three significant digits.
std::string FormatRunTime(int64_t ms);

// The change of `run_ms` against a baseline's `median_ms`, in percent (0 without a median).
double TimeChangePercent(int64_t run_ms, int64_t median_ms);

}  // namespace assay
