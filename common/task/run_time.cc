#include "common/task/run_time.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "common/task/task_states.h"

namespace assay {

int64_t RunMillis(const build::bazel::remote::execution::v2::ActionResult& result) {
  const auto& meta = result.execution_metadata();
  if (!meta.has_execution_start_timestamp() || !meta.has_execution_completed_timestamp()) return 0;
  return std::max<int64_t>(
      0, TimestampMillis(meta.execution_completed_timestamp()) - TimestampMillis(meta.execution_start_timestamp()));
}

std::string FormatRunTime(int64_t ms) {
  const double seconds = static_cast<double>(ms) / 1000.0;
  if (ms >= 100'000) return absl::StrFormat("%.0f s", seconds);
  if (ms >= 10'000) return absl::StrFormat("%.1f s", seconds);
  if (ms >= 1'000) return absl::StrFormat("%.2f s", seconds);
  return absl::StrFormat("%.3f s", seconds);
}

double TimeChangePercent(int64_t run_ms, int64_t median_ms) {
  if (median_ms <= 0) return 0;
  return 100.0 * static_cast<double>(run_ms - median_ms) / static_cast<double>(median_ms);
}

}  // namespace assay
