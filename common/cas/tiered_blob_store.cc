#include "common/cas/tiered_blob_store.h"

#include <spdlog/spdlog.h>

#include "common/base/log_format.h"

namespace assay {
namespace {

constexpr size_t kPiece = 1 << 20;  // what a read from memory hands on at a time

// Takes a blob into both tiers: the slow writer decides; the fast one is dropped at its first error.
class TeeWriter final : public BlobWriter {
 public:
  TeeWriter(std::unique_ptr<BlobWriter> slow, std::unique_ptr<BlobWriter> fast)
      : slow_(std::move(slow)), fast_(std::move(fast)) {}
  absl::Status Append(absl::string_view data) override {
    if (absl::Status s = slow_->Append(data); !s.ok()) return s;
    if (fast_ != nullptr && !fast_->Append(data).ok()) fast_.reset();
    return absl::OkStatus();
  }
  absl::Status Commit() override {
    if (absl::Status s = slow_->Commit(); !s.ok()) return s;
    if (fast_ != nullptr) fast_->Commit().IgnoreError();
    return absl::OkStatus();
  }
  int64_t written() const override { return slow_->written(); }

 private:
  std::unique_ptr<BlobWriter> slow_;
  std::unique_ptr<BlobWriter> fast_;
};

}  // namespace

absl::StatusOr<std::string> TieredBlobStore::Get(const Digest& digest) {
  auto hot = fast_->Get(digest);
  if (hot.ok()) {
    ++hot_hits_;
    return hot;
  }
  ++hot_misses_;
  auto got = slow_->Get(digest);
  if (got.ok() && Fits(digest)) {
    if (absl::Status s = fast_->Put(digest, *got); !s.ok()) spdlog::debug("hot tier: not kept: {}", s.message());
  }
  return got;
}

absl::Status TieredBlobStore::Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) {
  absl::Status hot = fast_->Read(digest, offset, limit, sink);
  if (!absl::IsNotFound(hot)) {  // served (or failed part-way: the hot tier's own error)
    if (hot.ok()) ++hot_hits_;
    return hot;
  }
  // Too large for the hot tier, or a read from within the blob (the hot tier was filled, if at all,
  // by the read from its start, and has let it go since): the range alone, from the slow tier.
  if (!Fits(digest) || offset > 0) {
    ++hot_misses_;
    return slow_->Read(digest, offset, limit, sink);
  }
  auto whole = Get(digest);  // counts the miss, checks the digest, fills the hot tier
  if (!whole.ok()) return whole.status();
  if (offset < 0 || offset > digest.size()) return absl::OutOfRangeError("read offset past the end of the blob");
  const int64_t end = limit <= 0 ? digest.size() : std::min(digest.size(), offset + limit);
  absl::string_view rest = absl::string_view(*whole).substr(static_cast<size_t>(offset), static_cast<size_t>(end - offset));
  while (!rest.empty()) {
    const size_t n = std::min(rest.size(), kPiece);
    if (absl::Status s = sink(rest.substr(0, n)); !s.ok()) return s;
    rest.remove_prefix(n);
  }
  return absl::OkStatus();
}

absl::Status TieredBlobStore::Put(const Digest& digest, absl::string_view data) {
  if (absl::Status s = slow_->Put(digest, data); !s.ok()) return s;
  if (Fits(digest)) fast_->Put(digest, data).IgnoreError();
  return absl::OkStatus();
}

std::vector<absl::Status> TieredBlobStore::Stored(const std::vector<BlobToPut>& blobs, PutSync sync) {
  std::vector<absl::Status> stored = sync == PutSync::kNow ? slow_->PutMany(blobs) : slow_->PutManyUnsynced(blobs);
  std::vector<BlobToPut> hot;
  for (size_t i = 0; i < blobs.size() && i < stored.size(); ++i) {
    if (stored[i].ok() && Fits(blobs[i].digest)) hot.push_back(blobs[i]);
  }
  if (hot.empty()) return stored;
  for (const absl::Status& s : fast_->PutManyUnsynced(hot)) {
    if (!s.ok()) spdlog::debug("hot tier: not kept: {}", s.message());
  }
  return stored;
}

absl::StatusOr<std::unique_ptr<BlobWriter>> TieredBlobStore::OpenWrite(const Digest& digest) {
  auto slow = slow_->OpenWrite(digest);
  if (!slow.ok()) return slow.status();
  std::unique_ptr<BlobWriter> fast;
  if (Fits(digest)) {
    auto opened = fast_->OpenWrite(digest);
    if (opened.ok()) fast = std::move(*opened);
  }
  return std::unique_ptr<BlobWriter>(new TeeWriter(std::move(*slow), std::move(fast)));
}

}  // namespace assay
