// One small interface for content-addressed storage. Layers (verification, metrics, eviction)
// wrap it and override only what they change.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest/digest.h"

namespace assay {

// Streams one blob in. Nothing is visible to readers until Commit succeeds; a writer destroyed
// without Commit leaves nothing behind.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  virtual absl::Status Append(absl::string_view data) = 0;
  virtual absl::Status Commit() = 0;
  virtual int64_t written() const = 0;
};

using ChunkSink = std::function<absl::Status(absl::string_view)>;

// One blob of a batch upload (PutMany); `data` stays the caller's.
struct BlobToPut {
  Digest digest;
  absl::string_view data;
  // A blob as REAPI sends it; the digest's error when it does not parse.
  static absl::StatusOr<BlobToPut> FromProto(const reapi::Digest& digest, absl::string_view data) {
    auto parsed = Digest::FromProto(digest);
    if (!parsed.ok()) return parsed.status();
    return BlobToPut{*std::move(parsed), data};
  }
};

class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // The subset of `digests` not stored (the empty blob is always present).
  virtual absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) = 0;
  // NotFound when absent.
  virtual absl::StatusOr<std::string> Get(const Digest& digest) = 0;
  // Streams bytes [offset, offset+limit) (limit 0: to the end) to `sink` in pieces.
  virtual absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) = 0;
  virtual absl::Status Put(const Digest& digest, absl::string_view data) = 0;
  virtual absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) = 0;
  // Puts every blob of a batch; one status each, in order. A store that writes a log makes them
  // durable together (RocksDB: one fsync for the batch, not one per blob), and acknowledges none
  // before all of its part is on disk. Here: one Put after another.
  virtual std::vector<absl::Status> PutMany(const std::vector<BlobToPut>& blobs);
  // As PutMany, but a store that writes a log may answer before its writes reach the disk: the
  // caller makes them durable with a synced write of its own to the same log after them (RocksDB
  // syncs its log in order, so that write carries these). A process killed meanwhile loses nothing
  // (the bytes are the kernel's); a power loss before that write may lose them. The coordinator's
  // result path: a result's small outputs, then its synced record in the same database, one fsync.
  // Here, and in stores that do not override it: PutMany.
  virtual std::vector<absl::Status> PutManyUnsynced(const std::vector<BlobToPut>& blobs) { return PutMany(blobs); }
};

// How PutEach stores: PutMany, or PutManyUnsynced (the caller's own synced write follows).
enum class PutSync { kNow, kByCaller };

// PutMany over the items that are blobs; an item that is an error keeps it as its answer (a digest
// that did not parse, bytes that did not verify). One answer per item, in order.
std::vector<absl::Status> PutEach(BlobStore& store, const std::vector<absl::StatusOr<BlobToPut>>& items,
                                  PutSync sync = PutSync::kNow);

// Reads a blob that must be an REAPI Directory message: NotFound when absent, INVALID_ARGUMENT
// naming the digest when its bytes are not a Directory.
absl::StatusOr<reapi::Directory> LoadDirectory(BlobStore& store, const Digest& digest);

// Refuses any blob whose bytes do not hash to its digest, with INVALID_ARGUMENT, storing nothing.
class VerifyingBlobStore final : public BlobStore {
 public:
  explicit VerifyingBlobStore(BlobStore* inner) : inner_(inner) {}
  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override {
    return inner_->FindMissing(digests);
  }
  absl::StatusOr<std::string> Get(const Digest& digest) override { return inner_->Get(digest); }
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override {
    return inner_->Read(digest, offset, limit, sink);
  }
  absl::Status Put(const Digest& digest, absl::string_view data) override;
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override;
  std::vector<absl::Status> PutMany(const std::vector<BlobToPut>& blobs) override {
    return Verified(blobs, PutSync::kNow);
  }
  std::vector<absl::Status> PutManyUnsynced(const std::vector<BlobToPut>& blobs) override {
    return Verified(blobs, PutSync::kByCaller);
  }

 private:
  std::vector<absl::Status> Verified(const std::vector<BlobToPut>& blobs, PutSync sync);
  BlobStore* inner_;
};

}  // namespace assay
