// Two tiers of one CAS: `slow` holds every blob and answers FindMissing (a bucket, whose index is
// authoritative); `fast` is a bounded local copy of the blobs used lately (the hot tier, RocksDB
// under its own eviction). Reads try the hot tier first; a blob read from the slow tier is copied
// into it when it is at most `fill_limit` bytes (a larger one is streamed through). Writes go to
// the slow tier, and those of at most `fill_limit` bytes to the hot tier as well, after the slow
// tier took them. The hot tier failing (full, evicting) only costs speed: it never fails a request.
#pragma once

#include <atomic>

#include "common/cas/blob_store.h"

namespace assay {

class TieredBlobStore final : public BlobStore {
 public:
  // Both must outlive the store.
  TieredBlobStore(BlobStore* fast, BlobStore* slow, int64_t fill_limit)
      : fast_(fast), slow_(slow), fill_limit_(fill_limit) {}

  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override {
    return slow_->FindMissing(digests);
  }
  absl::StatusOr<std::string> Get(const Digest& digest) override;
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override;
  absl::Status Put(const Digest& digest, absl::string_view data) override;
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override;
  // The slow tier takes the batch as a batch (its PutMany, or PutManyUnsynced when the caller syncs);
  // the blobs it took that fit go to the hot tier in one unsynced batch: a copy that a power loss
  // takes back is read from the slow tier again, so the cache need not wait for the disk per blob.
  std::vector<absl::Status> PutMany(const std::vector<BlobToPut>& blobs) override { return Stored(blobs, PutSync::kNow); }
  std::vector<absl::Status> PutManyUnsynced(const std::vector<BlobToPut>& blobs) override {
    return Stored(blobs, PutSync::kByCaller);
  }

  // Reads the hot tier answered, and those that went to the slow tier.
  int64_t hot_hits() const { return hot_hits_.load(); }
  int64_t hot_misses() const { return hot_misses_.load(); }

 private:
  bool Fits(const Digest& digest) const { return digest.size() <= fill_limit_; }
  std::vector<absl::Status> Stored(const std::vector<BlobToPut>& blobs, PutSync sync);
  BlobStore* const fast_;
  BlobStore* const slow_;
  const int64_t fill_limit_;
  std::atomic<int64_t> hot_hits_{0};
  std::atomic<int64_t> hot_misses_{0};
};

}  // namespace assay
