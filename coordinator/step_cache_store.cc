#include "coordinator/step_cache_store.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/byte_size.h"
#include "coordinator/families.h"
#include "rocksdb/db.h"

namespace assay {

using StepCacheRecord = assay::v1::StepCache;

StepCacheStore::StepCacheStore(Database* db, const Clock* clock, Options options)
    : db_(db), clock_(clock), options_(std::move(options)) {}

std::string StepCacheStore::StoreKey(const std::string& pipeline, const std::string& branch, const std::string& key) {
  return absl::StrCat(pipeline, std::string(1, '\0'), branch, std::string(1, '\0'), key);
}

absl::Status StepCacheStore::Load() {
  if (db_ == nullptr || !db_->has(CoordinatorFamily::kStepCaches)) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(
      db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kStepCaches)));
  absl::MutexLock lock(&mu_);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    StepCacheRecord cache;
    if (!cache.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      spdlog::warn("step caches: an unreadable entry skipped");
      continue;
    }
    total_bytes_ += cache.bytes();
    caches_[it->key().ToString()] = std::move(cache);
  }
  if (!it->status().ok()) return absl::InternalError(absl::StrCat("reading step caches: ", it->status().ToString()));
  return absl::OkStatus();
}

const StepCacheRecord* StepCacheStore::FindLocked(const std::string& scope, const assay::v1::StepCacheSpec& spec,
                                            bool* exact) const {
  if (auto it = caches_.find(scope + spec.key()); it != caches_.end()) {
    *exact = true;
    return &it->second;
  }
  for (const std::string& prefix : spec.restore_keys()) {
    const StepCacheRecord* newest = nullptr;
    const std::string start = scope + prefix;
    for (auto it = caches_.lower_bound(start); it != caches_.end() && absl::StartsWith(it->first, start); ++it) {
      if (newest == nullptr || it->second.created_at_ms() > newest->created_at_ms()) newest = &it->second;
    }
    if (newest != nullptr) return newest;
  }
  return nullptr;
}

std::vector<assay::v1::StepCacheUse> StepCacheStore::Resolve(
    const std::string& pipeline, const std::string& branch,
    const google::protobuf::RepeatedPtrField<assay::v1::StepCacheSpec>& specs) {
  std::vector<std::string> scopes = {StoreKey(pipeline, BranchOr(branch), "")};
  if (BranchOr(branch) != options_.default_branch) scopes.push_back(StoreKey(pipeline, options_.default_branch, ""));
  const int64_t now = UnixMillis(clock_->Now());
  std::vector<assay::v1::StepCacheUse> uses;
  absl::MutexLock lock(&mu_);
  for (const assay::v1::StepCacheSpec& spec : specs) {
    assay::v1::StepCacheUse use;
    use.set_key(spec.key());
    *use.mutable_paths() = spec.paths();
    bool exact = false;
    for (const std::string& scope : scopes) {
      const StepCacheRecord* found = FindLocked(scope, spec, &exact);
      if (found == nullptr) continue;
      *use.mutable_restore_root() = found->root();
      use.set_restored_key(found->key());
      auto& entry = caches_[StoreKey(found->pipeline(), found->branch(), found->key())];
      entry.set_last_used_at_ms(now);
      touched_.push_back(StoreKey(entry.pipeline(), entry.branch(), entry.key()));
      break;
    }
    use.set_save(!exact);  // keys are immutable: an exact hit is not saved again
    uses.push_back(std::move(use));
  }
  return uses;
}

std::vector<std::string> StepCacheStore::EvictLocked(const std::string& keep) {
  std::vector<std::string> evicted;
  while (total_bytes_ > options_.budget_bytes) {
    auto oldest = caches_.end();
    for (auto it = caches_.begin(); it != caches_.end(); ++it) {
      if (it->first == keep) continue;
      if (oldest == caches_.end() || it->second.last_used_at_ms() < oldest->second.last_used_at_ms()) oldest = it;
    }
    if (oldest == caches_.end()) break;
    spdlog::info("step caches: dropped '{}' of {} ({}) {}, least recently used, to stay within {}", oldest->second.key(),
                 oldest->second.pipeline(), oldest->second.branch(), FormatBytes(oldest->second.bytes()),
                 FormatBytes(options_.budget_bytes));
    total_bytes_ -= oldest->second.bytes();
    evicted.push_back(oldest->first);
    caches_.erase(oldest);
  }
  return evicted;
}

void StepCacheStore::TakeTouchedLocked(std::vector<std::pair<std::string, std::string>>* puts) {
  for (const std::string& key : touched_) {
    if (auto it = caches_.find(key); it != caches_.end()) puts->emplace_back(key, it->second.SerializeAsString());
  }
  touched_.clear();
}

absl::Status StepCacheStore::Write(const std::vector<std::pair<std::string, std::string>>& puts,
                                   const std::vector<std::string>& deletes) {
  if (db_ == nullptr || !db_->has(CoordinatorFamily::kStepCaches)) return absl::OkStatus();
  rocksdb::WriteBatch batch;
  for (const auto& [key, value] : puts) batch.Put(db_->cf(CoordinatorFamily::kStepCaches), key, value);
  for (const std::string& key : deletes) batch.Delete(db_->cf(CoordinatorFamily::kStepCaches), key);
  return db_->Write(&batch, /*sync=*/true);
}

absl::StatusOr<bool> StepCacheStore::Record(const std::string& pipeline, const std::string& branch,
                                            const std::string& job_id, const std::string& task_id,
                                            const assay::v1::SavedStepCache& saved) {
  if (saved.bytes() > options_.budget_bytes) {
    spdlog::warn("step caches: '{}' of {} not kept: {} is more than the whole budget ({})", saved.key(), pipeline,
                 FormatBytes(saved.bytes()), FormatBytes(options_.budget_bytes));
    return false;
  }
  absl::MutexLock write_lock(&write_mu_);
  const std::string store_key = StoreKey(pipeline, BranchOr(branch), saved.key());
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<std::string> deletes;
  {
    absl::MutexLock lock(&mu_);
    if (caches_.contains(store_key)) return false;
    StepCacheRecord& cache = caches_[store_key];
    cache.set_pipeline(pipeline);
    cache.set_branch(BranchOr(branch));
    cache.set_key(saved.key());
    *cache.mutable_root() = saved.root();
    cache.set_files(saved.files());
    cache.set_bytes(saved.bytes());
    cache.set_created_at_ms(UnixMillis(clock_->Now()));
    cache.set_last_used_at_ms(cache.created_at_ms());
    cache.set_job_id(job_id);
    cache.set_task_id(task_id);
    total_bytes_ += cache.bytes();
    puts.emplace_back(store_key, cache.SerializeAsString());
    deletes = EvictLocked(store_key);
    TakeTouchedLocked(&puts);
  }
  if (absl::Status s = Write(puts, deletes); !s.ok()) {
    absl::MutexLock lock(&mu_);
    if (auto it = caches_.find(store_key); it != caches_.end()) {
      total_bytes_ -= it->second.bytes();
      caches_.erase(it);
    }
    return s;
  }
  return true;
}

assay::v1::ListStepCachesResponse StepCacheStore::List(const std::string& pipeline) const {
  assay::v1::ListStepCachesResponse out;
  absl::MutexLock lock(&mu_);
  for (const auto& [key, cache] : caches_) {
    if (pipeline.empty() || cache.pipeline() == pipeline) *out.add_caches() = cache;
  }
  out.set_total_bytes(total_bytes_);
  out.set_budget_bytes(options_.budget_bytes);
  std::sort(out.mutable_caches()->begin(), out.mutable_caches()->end(),
            [](const StepCacheRecord& a, const StepCacheRecord& b) { return a.created_at_ms() > b.created_at_ms(); });
  return out;
}

absl::StatusOr<int> StepCacheStore::Delete(const std::string& key, bool all, const std::string& pipeline,
                                           const std::string& branch) {
  if (key.empty() == !all) return absl::InvalidArgumentError("name a cache key, or all of them (not both)");
  absl::MutexLock write_lock(&write_mu_);
  std::vector<std::pair<std::string, std::string>> puts;
  std::vector<std::string> deletes;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = caches_.begin(); it != caches_.end();) {
      const StepCacheRecord& c = it->second;
      const bool match = (all || c.key() == key) && (pipeline.empty() || c.pipeline() == pipeline) &&
                         (branch.empty() || c.branch() == branch);
      if (!match) {
        ++it;
        continue;
      }
      total_bytes_ -= c.bytes();
      deletes.push_back(it->first);
      it = caches_.erase(it);
    }
    TakeTouchedLocked(&puts);
  }
  if (absl::Status s = Write(puts, deletes); !s.ok()) return s;
  return static_cast<int>(deletes.size());
}

}  // namespace assay
