// The step caches the farm keeps (docs/pipeline.md, "Caches"): which tree was saved under which key,
// scoped by pipeline name and branch, in the coordinator's database (`step_caches` family) and in
// memory. It answers what a run restores (Resolve: the exact key, else the newest entry under a
// restore prefix; in the job's branch, then in the default branch), records what workers saved
// (keys are immutable: the first save wins), keeps the total under a budget by dropping the least
// recently used, and lists and deletes for `assay cache`. The trees themselves are in the CAS, whose
// own eviction may drop them; a restore that then fails is a warning and the step runs.
//
// Lookups hold only the map's lock and read nothing from disk. Writes (Record, Delete) are ordered by
// a lock of their own, held across their database write, that no lookup waits on. When a cache was
// last used is kept in memory and written with the next write: after a crash it may be older.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "assay/v1/jobs.pb.h"
#include "assay/v1/worker_link.pb.h"
#include "common/base/clock.h"
#include "common/rocksdb/database.h"

namespace assay {

class StepCacheStore {
 public:
  struct Options {
    int64_t budget_bytes = int64_t{20} << 30;  // --step-cache-budget
    std::string default_branch = "main";      // --default-branch: every branch also restores its caches
  };
  // `db`: the coordinator's database, with the step_caches family; null keeps everything in memory.
  StepCacheStore(Database* db, const Clock* clock, Options options);

  // Reads the saved caches from the database (at start).
  absl::Status Load();

  // What one run of a step restores and saves, in the order of `specs`. `branch` "": the default.
  std::vector<assay::v1::StepCacheUse> Resolve(const std::string& pipeline, const std::string& branch,
                                               const google::protobuf::RepeatedPtrField<assay::v1::StepCacheSpec>& specs);

  // Records a cache a worker saved. False (and nothing written) when the key is taken in that scope
  // already (two cells saving at once: the first wins) or the cache alone is over the budget.
  absl::StatusOr<bool> Record(const std::string& pipeline, const std::string& branch, const std::string& job_id,
                              const std::string& task_id, const assay::v1::SavedStepCache& saved);

  // Newest first; `pipeline` "": all.
  assay::v1::ListStepCachesResponse List(const std::string& pipeline) const;
  // The caches with this key (or all, with `all`), narrowed to a pipeline and branch when given.
  absl::StatusOr<int> Delete(const std::string& key, bool all, const std::string& pipeline, const std::string& branch);

  const Options& options() const { return options_; }

 private:
  static std::string StoreKey(const std::string& pipeline, const std::string& branch, const std::string& key);
  std::string BranchOr(const std::string& branch) const { return branch.empty() ? options_.default_branch : branch; }
  // The entry restored for `spec` in one scope (exact first, then restore prefixes); null: none.
  const assay::v1::StepCache* FindLocked(const std::string& scope, const assay::v1::StepCacheSpec& spec,
                                         bool* exact) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Removes least recently used entries (never `keep`) until the total fits the budget.
  std::vector<std::string> EvictLocked(const std::string& keep) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the entries touched since the last write to `batch`.
  void TakeTouchedLocked(std::vector<std::pair<std::string, std::string>>* puts) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Write(const std::vector<std::pair<std::string, std::string>>& puts,
                     const std::vector<std::string>& deletes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  Database* const db_;
  const Clock* const clock_;
  const Options options_;
  absl::Mutex write_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, assay::v1::StepCache> caches_ ABSL_GUARDED_BY(mu_);  // by StoreKey
  std::vector<std::string> touched_ ABSL_GUARDED_BY(mu_);
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace assay
