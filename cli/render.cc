#include "cli/render.h"

#include <google/protobuf/util/json_util.h>

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace assay::cli {

using assay::v1::Job;
using assay::v1::Task;

std::string StateName(assay::v1::TaskState state) {
  switch (state) {
    case assay::v1::TASK_PENDING: return "pending";
    case assay::v1::TASK_QUEUED: return "queued";
    case assay::v1::TASK_RUNNING: return "running";
    case assay::v1::TASK_SUCCEEDED: return "succeeded";
    case assay::v1::TASK_FAILED: return "failed";
    case assay::v1::TASK_CANCELLED: return "cancelled";
    case assay::v1::TASK_SKIPPED: return "skipped";
    default: return "unknown";
  }
}

std::string StateName(assay::v1::JobState state) {
  switch (state) {
    case assay::v1::JOB_QUEUED: return "queued";
    case assay::v1::JOB_RUNNING: return "running";
    case assay::v1::JOB_SUCCEEDED: return "succeeded";
    case assay::v1::JOB_FAILED: return "failed";
    case assay::v1::JOB_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

std::string ToJson(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &out, options);
  return out;
}

std::string FormatSeconds(int64_t ms) {
  if (ms < 0) ms = 0;
  if (ms < 60'000) return absl::StrFormat("%.1fs", static_cast<double>(ms) / 1000.0);
  return absl::StrFormat("%dm%02ds", ms / 60'000, (ms / 1000) % 60);
}

std::string TaskDuration(const Task& task, int64_t now_ms) {
  if (task.started_at_ms() == 0) return "";
  int64_t end = task.finished_at_ms() > 0 ? task.finished_at_ms() : now_ms;
  return FormatSeconds(end - task.started_at_ms());
}

std::string ResultText(const Task& task) {
  switch (task.state()) {
    case assay::v1::TASK_SUCCEEDED: return task.cached() ? "cached" : "ok";
    case assay::v1::TASK_FAILED: return task.timed_out() ? "TIMEOUT" : "FAILED";
    default: return StateName(task.state());
  }
}

namespace {

const char* Color(const Task& task) {
  switch (task.state()) {
    case assay::v1::TASK_SUCCEEDED: return task.cached() ? "\033[36m" : "\033[32m";
    case assay::v1::TASK_FAILED: return "\033[31;1m";
    case assay::v1::TASK_RUNNING: return "\033[33m";
    case assay::v1::TASK_SKIPPED:
    case assay::v1::TASK_CANCELLED: return "\033[90m";
    default: return "\033[0m";
  }
}

}  // namespace

std::string MatrixTable(const Job& job, int64_t now_ms, bool color) {
  std::vector<std::string> cells, steps;
  std::map<std::pair<std::string, std::string>, const Task*> at;
  for (const Task& t : job.tasks()) {
    if (std::find(cells.begin(), cells.end(), t.cell()) == cells.end()) cells.push_back(t.cell());
    if (std::find(steps.begin(), steps.end(), t.step()) == steps.end()) steps.push_back(t.step());
    at[{t.cell(), t.step()}] = &t;
  }
  size_t cell_width = 4;
  for (const auto& c : cells) cell_width = std::max(cell_width, c.size());
  const size_t col = 20;
  std::string out = absl::StrFormat("%-*s", static_cast<int>(cell_width + 2), "CELL");
  for (const auto& s : steps) absl::StrAppend(&out, absl::StrFormat("%-*s", static_cast<int>(col), s));
  absl::StrAppend(&out, "\n");
  for (const auto& c : cells) {
    absl::StrAppend(&out, absl::StrFormat("%-*s", static_cast<int>(cell_width + 2), c.empty() ? "-" : c));
    for (const auto& s : steps) {
      auto it = at.find({c, s});
      if (it == at.end()) {
        absl::StrAppend(&out, std::string(col, ' '));
        continue;
      }
      std::string text = ResultText(*it->second);
      std::string d = TaskDuration(*it->second, now_ms);
      if (!d.empty()) absl::StrAppend(&text, " ", d);
      std::string padded = absl::StrFormat("%-*s", static_cast<int>(col), text);
      absl::StrAppend(&out, color ? absl::StrCat(Color(*it->second), padded, "\033[0m") : padded);
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string JobSummary(const Job& job, int64_t now_ms) {
  int cached = 0, failed = 0;
  for (const Task& t : job.tasks()) {
    if (t.cached()) ++cached;
    if (t.state() == assay::v1::TASK_FAILED) ++failed;
  }
  int64_t end = job.finished_at_ms() > 0 ? job.finished_at_ms() : now_ms;
  std::string out = absl::StrCat("job ", job.id(), job.name().empty() ? "" : absl::StrCat(" (", job.name(), ")"), " ",
                                 StateName(job.state()), ": ", job.tasks_done(), "/", job.task_count(), " tasks done");
  if (cached > 0) absl::StrAppend(&out, ", ", cached, " from cache");
  if (failed > 0) absl::StrAppend(&out, ", ", failed, " failed");
  absl::StrAppend(&out, ", ", FormatSeconds(end - job.created_at_ms()));
  return out;
}

}  // namespace assay::cli
