// Content-addressed blobs in RocksDB, stored as 1 MiB chunks so any size streams with bounded memory.
//
//   cas_meta:   digest key (40 bytes) -> chunk id (8) + last access ms (8)
//   cas_chunks: chunk id (8) + index (4) -> up to kChunkSize bytes (large values go to blob files)
//
// A writer puts its chunks under a fresh chunk id and makes the blob visible with one synced write
// of its meta key, so a crash mid-upload never exposes a partial blob.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/base/keyed_mutex.h"
#include "common/base/clock.h"
#include "common/cas/disk_space.h"
#include "common/cas/evictable_blob_store.h"
#include "common/rocksdb/database.h"

namespace assay {

class RocksDbBlobWriter;

class RocksDbBlobStore final : public EvictableBlobStore {
 public:
  static constexpr int64_t kChunkSize = 1 << 20;

  // `durable`: a blob is synced to disk before its write returns (the coordinator's CAS: nothing
  // acknowledged is lost). A cache (a worker's) passes false: a crash of the process loses nothing
  // either (RocksDB's log is written, only not synced), a crash of the machine may lose its newest
  // blobs, never a blob's consistency.
  static absl::StatusOr<std::unique_ptr<RocksDbBlobStore>> Create(Database* db, const Clock* clock,
                                                                  bool durable = true);

  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override;
  absl::StatusOr<std::string> Get(const Digest& digest) override;
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override;
  absl::Status Put(const Digest& digest, absl::string_view data) override;
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override;
  // Each blob's bytes are written as by Put; then the entries of all of them in one write, synced
  // once (durable): a batch of N blobs costs one fsync, not N, and none is visible before all are
  // on disk. A blob named twice in the batch is stored once.
  std::vector<absl::Status> PutMany(const std::vector<BlobToPut>& blobs) override { return Stored(blobs, durable_); }
  // Never synced: the caller's synced write to this database carries it (BlobStore::PutManyUnsynced).
  std::vector<absl::Status> PutManyUnsynced(const std::vector<BlobToPut>& blobs) override {
    return Stored(blobs, /*sync=*/false);
  }

  // Drops a blob (eviction). Readers that already started keep their chunks' snapshot.
  absl::Status Delete(const Digest& digest) override;
  // Refreshes a blob's last access time (to the minute); NotFound if absent.
  absl::Status Touch(const Digest& digest) override;
  // Visits blobs oldest access first (`last_use`: milliseconds since the epoch).
  absl::Status ForEachByAge(const AgeVisitor& visit) override;
  int64_t stored_bytes() const override { return bytes_.load(); }
  int64_t stored_blobs() const override { return blobs_.load(); }

  struct Stats {
    int64_t bytes = 0;
    int64_t blobs = 0;
  };
  Stats stats() const {
    return Stats{bytes_.load(), blobs_.load()};
  }

  // Writes are refused with RESOURCE_EXHAUSTED when they would cross this reserve of free disk
  // space (null: no reserve). Set before the store is shared; not owned.
  void set_disk_reserve(DiskReserve* reserve) { reserve_ = reserve; }
  DiskReserve* disk_reserve() const override { return reserve_; }
  Database* database() const { return db_; }

  // Gives the disk space of failed uploads back: drops the chunks that could not be dropped when
  // their upload failed (the database may have been stopped by a full disk) and compacts the chunk
  // ranges dropped since the last call, so RocksDB deletes their files. Disk I/O: call it from a
  // background thread, with no lock held. Returns how many chunk ranges it compacted.
  absl::StatusOr<int> ReclaimSpace();
  // Whether ReclaimSpace has work to do.
  bool reclaim_pending() const;
  // Compacts the chunks family, so deleted blobs' files go (disk I/O: no lock held).
  absl::Status GiveBackDeletedSpace() override;
  // Resumes a database a full disk stopped (false while it still takes no writes) and, when it
  // takes writes, gives failed uploads' space back (ReclaimSpace). Errors are logged.
  bool Upkeep() override;

 private:
  friend class RocksDbBlobWriter;
  RocksDbBlobStore(Database* db, const Clock* clock, bool durable) : db_(db), clock_(clock), durable_(durable) {}
  absl::Status Recover();
  uint64_t NextChunkId() { return next_chunk_id_.fetch_add(1); }
  // Makes a written blob visible, or discards its chunks if another writer got there first.
  absl::Status CommitChunks(const Digest& digest, uint64_t chunk_id);
  // PutMany's work, its one write synced when `sync`.
  std::vector<absl::Status> Stored(const std::vector<BlobToPut>& blobs, bool sync);
  // Stored's commit: the sealed writers' entries in one write (synced when `sync`), each blob's
  // status in `out`; a writer committed is told so (the others drop their chunks when destroyed).
  void CommitMany(const std::vector<BlobToPut>& blobs, const std::map<std::string, size_t>& first,
                  std::vector<std::unique_ptr<RocksDbBlobWriter>>* writers, std::vector<absl::Status>* out,
                  bool sync);
  absl::Status DropChunks(uint64_t chunk_id);
  // A failed upload's chunks: dropped now if possible, and compacted by the next ReclaimSpace.
  void DiscardUpload(const Digest& digest, uint64_t chunk_id);
  struct Meta {
    uint64_t chunk_id;
    int64_t last_access_ms;
  };
  absl::StatusOr<Meta> GetMeta(const Digest& digest) const;

  Database* db_;
  const Clock* clock_;
  const bool durable_;
  std::atomic<uint64_t> next_chunk_id_{1};
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> blobs_{0};
  // Commit, Delete and Touch of one digest do not interleave (each reads its entry, then writes it);
  // other digests' writes and their syncs go on meanwhile.
  KeyedMutex digest_locks_;
  DiskReserve* reserve_ = nullptr;
  std::atomic<int64_t> resume_failures_{0};  // in a row
  mutable absl::Mutex reclaim_mu_;
  std::vector<uint64_t> to_drop_ ABSL_GUARDED_BY(reclaim_mu_);     // DropChunks failed
  std::vector<uint64_t> to_compact_ ABSL_GUARDED_BY(reclaim_mu_);  // dropped, not compacted yet
};

}  // namespace assay
