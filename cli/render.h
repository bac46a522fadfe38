// Turning jobs into text for people: the matrix table, state names, durations.
#pragma once

#include <string>

#include "assay/v1/job.pb.h"

namespace assay::cli {

std::string StateName(assay::v1::TaskState state);
std::string StateName(assay::v1::JobState state);
std::string FormatSeconds(int64_t ms);
// A message as indented JSON with the proto field names (--output json).
std::string ToJson(const google::protobuf::Message& message);
// A task's result in a word: ok, cached, FAILED, TIMEOUT, or its state.
std::string ResultText(const assay::v1::Task& task);
// Duration of a task so far (running) or in all (finished); "" if it never started.
std::string TaskDuration(const assay::v1::Task& task, int64_t now_ms);
// The matrix: a row per cell, a column per step. `color` adds ANSI colors.
std::string MatrixTable(const assay::v1::Job& job, int64_t now_ms, bool color);
std::string JobSummary(const assay::v1::Job& job, int64_t now_ms);

}  // namespace assay::cli
