#include "coordinator/run_history.h"

#include <algorithm>
#include <functional>

#include "absl/strings/str_cat.h"
#include "coordinator/task_rules.h"

namespace assay {
namespace {

std::string Key(const assay::v1::Job& job, const std::string& task_id) {
  return absl::StrCat(job.name(), "\n", job.pipeline_path(), "\n", task_id);
}

}  // namespace

void RunHistory::Record(const assay::v1::Job& job, const assay::v1::Task& task,
                        const build::bazel::remote::execution::v2::ExecutedActionMetadata& run) {
  if (!run.has_execution_start_timestamp() || !run.has_execution_completed_timestamp()) return;
  if (last_ms_.size() >= kMaxEntries) last_ms_.clear();
  last_ms_[Key(job, task.id())] =
      std::max<int64_t>(1, TimestampMillis(run.execution_completed_timestamp()) - TimestampMillis(run.execution_start_timestamp()));
}

int64_t RunHistory::Last(const assay::v1::Job& job, const std::string& task_id) const {
  auto it = last_ms_.find(Key(job, task_id));
  return it == last_ms_.end() ? 0 : it->second;
}

std::vector<std::vector<int32_t>> RunHistory::Dependents(const assay::v1::Job& job) {
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(job.tasks_size()));
  absl::flat_hash_map<std::string, int32_t> index;
  for (const auto& t : job.tasks()) index[t.id()] = t.index();
  for (const auto& t : job.tasks()) {
    for (const std::string& need : t.needs()) {
      auto it = index.find(need);
      if (it != index.end() && it->second >= 0 && it->second < job.tasks_size()) {
        out[static_cast<size_t>(it->second)].push_back(t.index());
      }
    }
  }
  return out;
}

int64_t RunHistory::Expected(const assay::v1::Job& job, int32_t index,
                             const std::vector<std::vector<int32_t>>& dependents) const {
  auto last = [&](int32_t i) { return Last(job, job.tasks(i).id()); };
  const int64_t own = last(index);
  if (own == 0) return 0;
  // Needs stay within a cell: the chains below a task are a few steps long.
  std::function<int64_t(int32_t, int)> below = [&](int32_t i, int depth) -> int64_t {
    int64_t longest = 0;
    if (depth >= 16 || static_cast<size_t>(i) >= dependents.size()) return longest;
    for (int32_t d : dependents[static_cast<size_t>(i)]) longest = std::max(longest, last(d) + below(d, depth + 1));
    return longest;
  };
  return own + below(index, 0);
}

}  // namespace assay
