// The one place the blob-store stack is put together, for the coordinator's CAS and a worker's
// local cache alike: RocksDB storage (with a reserve of free disk space) -> eviction within a byte
// budget or when the disk is low (with pins) -> digest verification on every write. Callers use `store()` and, for pins, `pinner()`.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/cas/blob_store.h"
#include "common/cas/evicting_blob_store.h"
#include "common/rocksdb/database.h"
#include "common/rocksdb/rocksdb_blob_store.h"

namespace assay {

struct BlobStoreStack {
  std::unique_ptr<DiskReserve> reserve;  // null: none
  std::unique_ptr<RocksDbBlobStore> storage;
  std::unique_ptr<EvictingBlobStore> eviction;
  std::unique_ptr<VerifyingBlobStore> verification;

  BlobStore* store() const { return verification.get(); }
  BlobPinner* pinner() const { return eviction.get(); }
};

// Builds the stack over `db` (which must outlive it). `eviction.budget_bytes` 0: no limit.
// `durable`: RocksDbBlobStore::Create's (false for a cache). `reserve`: the free disk space to keep
// (null: none; its `dir` defaults to the database's).
absl::StatusOr<BlobStoreStack> MakeBlobStoreStack(Database* db, const Clock* clock, EvictingBlobStore::Options eviction,
                                                  bool durable = true, const DiskReserve::Options* reserve = nullptr);

}  // namespace assay
