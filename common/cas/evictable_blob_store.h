// What an eviction layer (EvictingBlobStore) needs of the storage under it, beyond BlobStore:
// blobs visited oldest use first, deleted one by one, refreshed on use, and their total size.
// RocksDbBlobStore and MemoryBlobStore serve it.
#pragma once

#include <functional>

#include "common/cas/blob_store.h"
#include "common/cas/disk_space.h"

namespace assay {

class EvictableBlobStore : public BlobStore {
 public:
  // Visits blobs oldest use first; stop by returning false. `last_use` orders uses (RocksDB:
  // milliseconds since the epoch; memory: a counter). Deleting the visited blob is allowed.
  using AgeVisitor = std::function<bool(const Digest&, int64_t last_use)>;
  virtual absl::Status ForEachByAge(const AgeVisitor& visit) = 0;
  // Drops a blob; NotFound if absent. Readers that already started keep what they read.
  virtual absl::Status Delete(const Digest& digest) = 0;
  // Refreshes a blob's last use; NotFound if absent.
  virtual absl::Status Touch(const Digest& digest) = 0;
  // The bytes of all blobs stored, and how many blobs.
  virtual int64_t stored_bytes() const = 0;
  virtual int64_t stored_blobs() const = 0;

  // The reserve of free disk space this store keeps (null: none, or not on disk).
  virtual DiskReserve* disk_reserve() const { return nullptr; }
  // After eviction for low disk space: makes the deleted blobs' space free on disk now.
  virtual absl::Status GiveBackDeletedSpace() { return absl::OkStatus(); }
  // One upkeep pass of the storage, run by the eviction layer's maintenance thread before it evicts
  // (RocksDB: resuming a database a full disk stopped, giving back failed uploads' space). False
  // when the store takes no writes now (eviction waits for the next pass).
  virtual bool Upkeep() { return true; }
};

}  // namespace assay
