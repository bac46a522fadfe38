// Action results kept in the --cas-store bucket as well as in the database, so that the action
// cache survives the loss of the coordinator's disk with the blobs it references. Each result is one
// object, "ac/INSTANCE-HEX/HASH-SIZE" beneath the location's prefix (the instance name hex-encoded,
// since it may hold any byte), holding the serialized ActionResult.
//
// Reads are the database's (the bucket is never asked on a lookup). Put writes the object first,
// then the database's record, so a result the cache answers with is in the bucket. Restore, run
// when the bucket's blob index was rebuilt (a new data folder), reads every object back into the
// database.
#pragma once

#include "common/s3/s3_client.h"
#include "coordinator/rocksdb_action_result_store.h"

namespace assay {

class BucketActionResultStore final : public ActionResultStore {
 public:
  // Both must outlive the store.
  BucketActionResultStore(RocksDbActionResultStore* local, S3Client* bucket) : local_(local), bucket_(bucket) {}

  absl::StatusOr<reapi::ActionResult> Get(absl::string_view instance, const Digest& action) override {
    return local_->Get(instance, action);
  }
  absl::Status Put(absl::string_view instance, const Digest& action, const reapi::ActionResult& result) override;
  // The object alone, for a record the database took in a batch of its own.
  absl::Status Mirror(absl::string_view instance, const Digest& action, const reapi::ActionResult& result);
  // Reads every result in the bucket into the database; the number restored. Objects that are not
  // results of ours are skipped (and logged).
  absl::StatusOr<int64_t> Restore();

  static std::string ObjectName(absl::string_view instance, const Digest& action);

 private:
  RocksDbActionResultStore* const local_;
  S3Client* const bucket_;
};

}  // namespace assay
