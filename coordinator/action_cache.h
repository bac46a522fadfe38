// The action cache: action digest -> ActionResult, per instance name, in RocksDB.
// A result is only returned when every blob it references is still in the CAS (and those blobs are
// refreshed), because the CAS and the action cache are evicted separately.
#pragma once

#include <atomic>

#include "absl/status/statusor.h"
#include "common/database.h"
#include "common/digest.h"
#include "common/rocksdb_blob_store.h"

namespace assay {

class ActionCache {
 public:
  ActionCache(Database* db, RocksDbBlobStore* blobs) : db_(db), blobs_(blobs) {}

  // NotFound on a miss or when a referenced blob is gone.
  absl::StatusOr<reapi::ActionResult> Get(absl::string_view instance, const Digest& action);
  // Refuses a result that references blobs the CAS does not hold (FAILED_PRECONDITION).
  absl::Status Put(absl::string_view instance, const Digest& action, const reapi::ActionResult& result);

  int64_t hits() const { return hits_.load(); }
  int64_t misses() const { return misses_.load(); }
  absl::StatusOr<int64_t> CountEntries() const;

 private:
  static std::vector<Digest> Referenced(const reapi::ActionResult& result);

  Database* db_;
  RocksDbBlobStore* blobs_;
  std::atomic<int64_t> hits_{0};
  std::atomic<int64_t> misses_{0};
};

}  // namespace assay
