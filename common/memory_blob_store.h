// A BlobStore in memory, for unit tests of logic above the store (no RocksDB, no files). Stores
// what it is given without checking digests: put a VerifyingBlobStore on top to check them.
#pragma once

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "common/blob_store.h"

namespace assay {

class MemoryBlobStore final : public BlobStore {
 public:
  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override;
  absl::StatusOr<std::string> Get(const Digest& digest) override;
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override;
  absl::Status Put(const Digest& digest, absl::string_view data) override;
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override;

  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  std::map<Digest, std::string> blobs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace assay
