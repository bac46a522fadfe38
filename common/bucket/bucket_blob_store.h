// Blobs in an S3-compatible bucket (`--cas-store s3://...`), indexed in the process's RocksDB.
//
// The index (a column family the caller names: digest key -> size and last use) is authoritative:
// FindMissing, Touch, ForEachByAge and stored_bytes never ask the bucket, so pins, eviction and
// completeness checking work above it as they do over RocksDB. A blob becomes visible once its
// object is written (one PUT, or a completed multipart upload for a large one) and then its index
// entry committed; a crash in between leaves an object nobody sees.
//
// Reads fetch the object in ranged GETs. A read of a whole blob is checked against its digest
// before its last piece is handed on: an object changed behind our back is DATA_LOSS, never served,
// and its index entry is dropped, so FindMissing says it is missing and a client uploads it again.
// An object that vanished is NOT_FOUND and dropped the same way.
//
// Delete drops the index entry at once and queues the object; Upkeep (the eviction layer's
// maintenance pass) deletes queued objects in batched requests. A blob written again while its
// object waits for deletion keeps it; one written while its deletion is under way waits for it.
//
// Open on an index that was never filled (a new data folder) lists the bucket and indexes every
// blob it holds: the cache survives the loss of the coordinator's disk.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "common/base/clock.h"
#include "common/cas/evictable_blob_store.h"
#include "common/rocksdb/database.h"
#include "common/s3/s3_client.h"

namespace assay {

class BucketBlobStore final : public EvictableBlobStore {
 public:
  struct Options {
    Family index = Family::kDefault;     // the index's column family (must be opened)
    int64_t part_bytes = 8 << 20;        // multipart part size: also what one upload buffers at most
    int64_t read_piece_bytes = 4 << 20;  // bytes per ranged GET
  };
  // The object name of a blob beneath the location's prefix: "cas/HASH-SIZE".
  static std::string ObjectName(const Digest& digest);

  // `client`, `db` and `clock` must outlive the store.
  static absl::StatusOr<std::unique_ptr<BucketBlobStore>> Open(S3Client* client, Database* db, const Clock* clock,
                                                               Options options);
  ~BucketBlobStore() override;

  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override;
  absl::StatusOr<std::string> Get(const Digest& digest) override;
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override;
  absl::Status Put(const Digest& digest, absl::string_view data) override;
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override;

  // Indexes a blob whose object a client wrote itself, with a PUT signed for its digest (the bucket
  // checked the bytes' SHA-256): once the bucket holds an object of the digest's size under its
  // name. True when it was indexed now, false when it was already; NOT_FOUND when there is no such
  // object (after a deletion of it under way has ended), FAILED_PRECONDITION for another size.
  absl::StatusOr<bool> Adopt(const Digest& digest);

  absl::Status ForEachByAge(const AgeVisitor& visit) override;
  absl::Status Delete(const Digest& digest) override;
  absl::Status Touch(const Digest& digest) override;
  int64_t stored_bytes() const override { return bytes_.load(); }
  int64_t stored_blobs() const override { return blobs_.load(); }
  bool Upkeep() override;

  int64_t blobs() const { return blobs_.load(); }
  // Objects deleted from the bucket since Open, and those still queued for deletion.
  int64_t objects_deleted() const { return objects_deleted_.load(); }
  size_t deletes_queued();
  // Deletes the queued objects now (what Upkeep does).
  absl::Status FinishDeletes();
  // Whether Open rebuilt the index by listing the bucket (it had none), and the blobs it found.
  bool index_rebuilt() const { return index_rebuilt_; }
  int64_t rebuilt_blobs() const { return rebuilt_; }

 private:
  friend class BucketWriter;
  BucketBlobStore(S3Client* client, Database* db, const Clock* clock, Options options);
  absl::Status LoadIndex();
  absl::Status RebuildIndex();
  // The index entry's size, or NotFound.
  absl::StatusOr<int64_t> IndexedSize(const Digest& digest) const;
  absl::Status Index(const Digest& digest);
  // Drops a blob whose object is gone or wrong (logged with `why`); returns `error`.
  absl::Status Forget(const Digest& digest, absl::Status error);
  // An upload of `digest`'s object begins (waiting while a deletion of it is under way) and ends.
  void BeginUpload(const Digest& digest) ABSL_LOCKS_EXCLUDED(deletes_mu_);
  void EndUpload(const Digest& digest) ABSL_LOCKS_EXCLUDED(deletes_mu_);
  absl::Status ReadPieces(const Digest& digest, int64_t offset, int64_t end, const ChunkSink& sink);

  S3Client* const client_;
  Database* const db_;
  const Clock* const clock_;
  const Options options_;
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> blobs_{0};
  std::atomic<int64_t> objects_deleted_{0};
  int64_t rebuilt_ = 0;
  bool index_rebuilt_ = false;

  absl::Mutex deletes_mu_;
  absl::flat_hash_set<Digest> queued_ ABSL_GUARDED_BY(deletes_mu_);     // objects to delete
  absl::flat_hash_set<Digest> deleting_ ABSL_GUARDED_BY(deletes_mu_);   // in a delete request now
  absl::flat_hash_map<Digest, int> uploading_ ABSL_GUARDED_BY(deletes_mu_);  // being written now (writers)
};

}  // namespace assay
