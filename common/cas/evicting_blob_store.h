// Keeps an EvictableBlobStore (RocksDbBlobStore, MemoryBlobStore) within a byte budget: when a
// write takes it above the high watermark, the least recently used blobs are dropped until it is
// under the low watermark. With a disk reserve (EvictableBlobStore::disk_reserve), eviction also
// runs when free disk space is low (below twice the reserve), dropping the oldest blobs and giving
// their space back until that much is free again.
//
// With `background`, a maintenance thread of its own does this (woken by writes that need it, and
// every kMaintenanceInterval while the store is used; an idle store's passes back off to
// kIdleMaintenanceInterval, so an idle daemon does not wake four times a second): the storage's upkeep (EvictableBlobStore::Upkeep: for RocksDB, resuming
// the database after a full disk stopped it and giving back the space of failed uploads), then
// eviction. Pinned blobs (the inputs of running tasks) are never dropped. Reads refresh a blob's
// last-use time.
// A reader that already started keeps reading from its snapshot, so no reader sees a partial blob.
// A write the disk reserve refuses is not refused while dropping older blobs can make room for
// it: they are dropped at once (MakeRoom) and the write goes ahead, as a cache should.
#pragma once

#include <atomic>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/cas/blob_pinner.h"
#include "common/cas/evictable_blob_store.h"

namespace assay {

class EvictingBlobStore final : public BlobStore, public BlobPinner {
 public:
  struct Options {
    int64_t budget_bytes = 0;       // 0: no limit
    double high_watermark = 0.95;   // evict when above budget * high
    double low_watermark = 0.80;    // ... down to budget * low
    // Evict on a thread of its own, woken by writes, instead of on the writing request's thread.
    bool background = false;
  };
  EvictingBlobStore(EvictableBlobStore* inner, Options options);
  ~EvictingBlobStore() override;

  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override;
  absl::StatusOr<std::string> Get(const Digest& digest) override;
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override;
  absl::Status Put(const Digest& digest, absl::string_view data) override;
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override;
  std::vector<absl::Status> PutMany(const std::vector<BlobToPut>& blobs) override { return Stored(blobs, PutSync::kNow); }
  std::vector<absl::Status> PutManyUnsynced(const std::vector<BlobToPut>& blobs) override {
    return Stored(blobs, PutSync::kByCaller);
  }

  bool pinning_matters() const override { return options_.budget_bytes > 0 || inner_->disk_reserve() != nullptr; }
  // Once Pin returns, no eviction of these blobs is running or can start: a blob that is still
  // present stays until unpinned (the caller checks presence after pinning).
  void Pin(const std::vector<Digest>& digests) override;
  void Unpin(const std::vector<Digest>& digests) override;

  static constexpr absl::Duration kMaintenanceInterval = absl::Milliseconds(250);
  // How long the space of blobs evicted for a low disk is waited for before evicting more for it.
  static constexpr absl::Duration kAwaitSpaceFor = absl::Seconds(5);
  static constexpr absl::Duration kIdleMaintenanceInterval = absl::Seconds(2);
  // The wait before the next pass: kMaintenanceInterval after a pass that had work to do or followed
  // a write; otherwise twice the last wait, up to kIdleMaintenanceInterval.
  static absl::Duration NextMaintenanceInterval(absl::Duration last, bool active);

  // Evicts now if above the high watermark, or if free disk space is low. Returns the bytes dropped.
  absl::StatusOr<int64_t> MaybeEvict();
  // One maintenance pass (what the background thread does): the storage's upkeep, then eviction if
  // needed. True when it had work: the storage takes no writes, blobs were dropped, or it failed.
  bool Maintain();

  int64_t evicted_blobs() const { return evicted_blobs_.load(); }
  int64_t evicted_bytes() const { return evicted_bytes_.load(); }
  int64_t budget_bytes() const { return options_.budget_bytes; }

 private:
  // PutMany's work: a blob the disk reserve refused goes in once older blobs make room for it.
  std::vector<absl::Status> Stored(const std::vector<BlobToPut>& blobs, PutSync sync);
  friend class EvictingWriter;
  EvictableBlobStore* inner_;
  Options options_;
  // After a write: an eviction pass now (inline), or on the background thread. A committed write
  // wakes that thread only when a pass has work to do (over the high watermark, or the disk low);
  // a failed one always does, for the storage's upkeep to give its space back.
  void AfterWrite(bool committed);
  // Whether the store is over its high watermark or the disk low; `*shortfall` (if given):
  // DiskShortfall().
  bool NeedsEviction(int64_t* shortfall = nullptr);
  // Evicts the oldest unpinned blobs while `more()`; returns the bytes and blobs dropped.
  absl::Status EvictWhile(const std::function<bool(int64_t dropped)>& more, int64_t* dropped, int64_t* blobs);
  // Bytes to drop for the disk's free space to be back at twice the reserve (0: not low).
  int64_t DiskShortfall();
  // One eviction pass: down to the budget's low watermark, and at least `shortfall` bytes (less the
  // space of earlier passes' blobs still awaited).
  absl::StatusOr<int64_t> EvictLocked(int64_t shortfall) ABSL_EXCLUSIVE_LOCKS_REQUIRED(evict_mu_);
  // The bytes earlier passes deleted for a low disk whose space the disk has not shown free yet
  // (RocksDB deletes a compacted blob file once no reader holds it, not at once): they are on their
  // way, and evicting newer blobs for them would drop what the disk will not lack. Free space seen
  // to rise pays them off, and a disk no longer low all of them; after kAwaitSpaceFor they are no
  // longer counted on.
  int64_t AwaitedLocked(DiskReserve* reserve) ABSL_EXCLUSIVE_LOCKS_REQUIRED(evict_mu_);
  // A write of `bytes` the disk reserve refused: evicts now (waiting for a pass under way) when
  // dropping stored blobs can leave room for it. True when the write should be tried once more.
  bool MakeRoom(int64_t bytes) ABSL_LOCKS_EXCLUDED(evict_mu_);

  absl::Mutex pins_mu_;
  absl::flat_hash_map<Digest, int> pins_ ABSL_GUARDED_BY(pins_mu_);
  std::optional<Digest> deleting_ ABSL_GUARDED_BY(pins_mu_);  // the blob an eviction is deleting now
  absl::Mutex evict_mu_;
  // Blobs were deleted since the last compaction that gave their space back (or it failed).
  bool give_back_owed_ ABSL_GUARDED_BY(evict_mu_) = false;
  int64_t awaited_bytes_ ABSL_GUARDED_BY(evict_mu_) = 0;  // AwaitedLocked
  absl::Time awaited_since_ ABSL_GUARDED_BY(evict_mu_);   // the last pass that added to them
  int64_t free_seen_ ABSL_GUARDED_BY(evict_mu_) = 0;      // free space at that pass's end, then at the last look
  absl::Mutex wake_mu_;
  bool wake_ ABSL_GUARDED_BY(wake_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(wake_mu_) = false;
  std::atomic<bool> wrote_{false};  // a write since the last pass (keeps passes at the short interval)
  std::thread evictor_;
  std::atomic<int64_t> evicted_blobs_{0};
  std::atomic<int64_t> evicted_bytes_{0};
};

}  // namespace assay
