// The one place the blob-store stack is put together, for the coordinator's CAS and a worker's
// local cache alike: RocksDB storage (with a reserve of free disk space) -> eviction within a byte
// budget or when the disk is low (with pins) -> digest verification on every write. With a slow tier
// (the coordinator's --cas-store bucket), RocksDB is the hot tier above it (TieredBlobStore). Callers use `store()` and, for pins, `pinner()`.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "common/base/clock.h"
#include "common/cas/blob_store.h"
#include "common/cas/evicting_blob_store.h"
#include "common/cas/tiered_blob_store.h"
#include "common/rocksdb/database.h"
#include "common/rocksdb/rocksdb_blob_store.h"

namespace assay {

struct BlobStoreStack {
  std::unique_ptr<DiskReserve> reserve;  // null: none
  std::unique_ptr<RocksDbBlobStore> storage;
  std::unique_ptr<EvictingBlobStore> eviction;
  // With a slow tier (AddSlowTier): the store that holds every blob (a bucket), its own eviction
  // (which the pins are for), and the two tiers together; `storage` and `eviction` are then the
  // bounded hot tier.
  std::unique_ptr<EvictableBlobStore> slow;
  std::unique_ptr<EvictingBlobStore> slow_eviction;
  std::unique_ptr<TieredBlobStore> tiers;
  std::unique_ptr<VerifyingBlobStore> verification;

  BlobStore* store() const { return verification.get(); }
  BlobPinner* pinner() const { return slow_eviction != nullptr ? slow_eviction.get() : eviction.get(); }
  // The store that holds every blob (the bucket, or RocksDB), for its figures.
  EvictableBlobStore* primary() const { return slow != nullptr ? slow.get() : storage.get(); }
  // The eviction layer whose budget is the CAS's (--cache-budget-bytes).
  EvictingBlobStore* budget() const { return slow_eviction != nullptr ? slow_eviction.get() : eviction.get(); }
};

// Builds the stack over `db` (which must outlive it). `eviction.budget_bytes` 0: no limit.
// `durable`: RocksDbBlobStore::Create's (false for a cache). `reserve`: the free disk space to keep
// (null: none; its `dir` defaults to the database's).
// Puts `slow` under the stack as the store of every blob, with eviction (`slow_options`, on a thread
// of its own); the RocksDB store becomes the hot tier, holding copies of blobs of at most
// `fill_limit` bytes (and at most its whole budget) within its own budget (the stack's `eviction`
// options).
void AddSlowTier(BlobStoreStack* stack, std::unique_ptr<EvictableBlobStore> slow, EvictingBlobStore::Options slow_options,
                 int64_t fill_limit);

absl::StatusOr<BlobStoreStack> MakeBlobStoreStack(Database* db, const Clock* clock, EvictingBlobStore::Options eviction,
                                                  bool durable = true, const DiskReserve::Options* reserve = nullptr);

}  // namespace assay
