// A BlobStore in memory, for unit tests of logic above the store (no RocksDB, no files). Stores
// what it is given without checking digests: put a VerifyingBlobStore on top to check them. It can
// be evicted (an EvictingBlobStore over it): uses are ordered by a counter that Put and Touch bump.
#pragma once

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/cas/evictable_blob_store.h"

namespace assay {

class MemoryBlobStore final : public EvictableBlobStore {
 public:
  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override;
  absl::StatusOr<std::string> Get(const Digest& digest) override;
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override;
  absl::Status Put(const Digest& digest, absl::string_view data) override;
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override;

  absl::Status ForEachByAge(const AgeVisitor& visit) override;
  absl::Status Delete(const Digest& digest) override;
  absl::Status Touch(const Digest& digest) override;
  int64_t stored_bytes() const override;
  int64_t stored_blobs() const override { return static_cast<int64_t>(size()); }

  size_t size() const;

 private:
  struct Blob {
    std::string bytes;
    int64_t last_use = 0;
  };
  mutable absl::Mutex mu_;
  std::map<Digest, Blob> blobs_ ABSL_GUARDED_BY(mu_);
  int64_t uses_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace assay
