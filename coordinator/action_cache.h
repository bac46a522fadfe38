// The coordinator's action cache: action digest -> ActionResult, per instance name. The one place
// its layers are put together, as BlobStoreStack is for the CAS: results stored in the database
// (RocksDbActionResultStore), and with --cas-store in the bucket too (BucketActionResultStore), under
// completeness checking against the CAS (CompletenessCheckingActionResultStore: a result is only
// returned while every blob it references is in the CAS). It counts hits and misses.
#pragma once

#include <atomic>
#include <memory>

#include "common/cas/blob_store.h"
#include "common/rocksdb/database.h"
#include "coordinator/bucket_action_result_store.h"
#include "coordinator/completeness_checking_action_result_store.h"
#include "coordinator/rocksdb_action_result_store.h"

namespace assay {

class ActionCache final : public ActionResultStore {
 public:
  // `cas`: the top of the CAS's blob-store stack. `bucket` (--cas-store; null: none): results are
  // kept in it as well (BucketActionResultStore). All must outlive the cache.
  ActionCache(Database* db, BlobStore* cas, S3Client* bucket = nullptr)
      : storage_(db),
        bucket_(bucket != nullptr ? std::make_unique<BucketActionResultStore>(&storage_, bucket) : nullptr),
        complete_(bucket_ != nullptr ? static_cast<ActionResultStore*>(bucket_.get()) : &storage_, cas) {}

  // NotFound on a miss or when a referenced blob is gone.
  absl::StatusOr<reapi::ActionResult> Get(absl::string_view instance, const Digest& action) override;
  // Refuses a result that references blobs the CAS does not hold (FAILED_PRECONDITION).
  absl::Status Put(absl::string_view instance, const Digest& action, const reapi::ActionResult& result) override {
    return complete_.Put(instance, action, result);
  }

  // The two halves of Put, for a caller that writes the record in a batch of its own: the check
  // (CAS I/O: call it without locks), then the record added to `batch`.
  absl::Status CheckComplete(const reapi::ActionResult& result) const { return complete_.CheckComplete(result); }
  void AddToBatch(rocksdb::WriteBatch* batch, absl::string_view instance, const Digest& action,
                  const reapi::ActionResult& result) const {
    storage_.AddToBatch(batch, instance, action, result);
  }
  // After AddToBatch's record is written: the result into the bucket too (OK without a bucket).
  absl::Status Mirror(absl::string_view instance, const Digest& action, const reapi::ActionResult& result) {
    return bucket_ != nullptr ? bucket_->Mirror(instance, action, result) : absl::OkStatus();
  }
  // Reads the bucket's results into the database (after the bucket's index was rebuilt).
  absl::StatusOr<int64_t> RestoreFromBucket() { return bucket_ != nullptr ? bucket_->Restore() : 0; }

  int64_t hits() const { return hits_.load(); }
  int64_t misses() const { return misses_.load(); }
  absl::StatusOr<int64_t> CountEntries() const { return storage_.CountEntries(); }

 private:
  RocksDbActionResultStore storage_;
  std::unique_ptr<BucketActionResultStore> bucket_;
  CompletenessCheckingActionResultStore complete_;
  std::atomic<int64_t> hits_{0};
  std::atomic<int64_t> misses_{0};
};

}  // namespace assay
