#include "common/cas/memory_blob_store.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace assay {
namespace {

class MemoryWriter final : public BlobWriter {
 public:
  MemoryWriter(MemoryBlobStore* store, Digest digest) : store_(store), digest_(std::move(digest)) {}
  absl::Status Append(absl::string_view data) override {
    data_.append(data.data(), data.size());
    return absl::OkStatus();
  }
  absl::Status Commit() override { return store_->Put(digest_, data_); }
  int64_t written() const override { return static_cast<int64_t>(data_.size()); }

 private:
  MemoryBlobStore* store_;
  Digest digest_;
  std::string data_;
};

}  // namespace

absl::StatusOr<std::vector<Digest>> MemoryBlobStore::FindMissing(const std::vector<Digest>& digests) {
  absl::MutexLock lock(&mu_);
  std::vector<Digest> missing;
  for (const Digest& d : digests) {
    if (!d.empty_blob() && !blobs_.contains(d)) missing.push_back(d);
  }
  return missing;
}

absl::StatusOr<std::string> MemoryBlobStore::Get(const Digest& digest) {
  if (digest.empty_blob()) return std::string();
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), " not found"));
  return it->second.bytes;
}

absl::Status MemoryBlobStore::Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) {
  auto bytes = Get(digest);
  if (!bytes.ok()) return bytes.status();
  if (offset < 0 || offset > static_cast<int64_t>(bytes->size())) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is beyond the blob's ", bytes->size(), " bytes"));
  }
  absl::string_view rest = absl::string_view(*bytes).substr(static_cast<size_t>(offset));
  if (limit > 0) rest = rest.substr(0, static_cast<size_t>(limit));
  return rest.empty() ? absl::OkStatus() : sink(rest);
}

absl::Status MemoryBlobStore::Put(const Digest& digest, absl::string_view data) {
  if (static_cast<int64_t>(data.size()) != digest.size()) {
    return absl::InvalidArgumentError(absl::StrCat("blob has ", data.size(), " bytes but its digest says ", digest.size()));
  }
  if (digest.empty_blob()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  auto [it, added] = blobs_.try_emplace(digest);
  if (added) {
    it->second.bytes = std::string(data);
    bytes_ += digest.size();
    it->second.last_use = ++uses_;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BlobWriter>> MemoryBlobStore::OpenWrite(const Digest& digest) {
  return std::unique_ptr<BlobWriter>(new MemoryWriter(this, digest));
}

absl::Status MemoryBlobStore::ForEachByAge(const AgeVisitor& visit) {
  std::vector<std::pair<int64_t, Digest>> by_age;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [digest, blob] : blobs_) by_age.emplace_back(blob.last_use, digest);
  }
  std::sort(by_age.begin(), by_age.end());
  for (const auto& [last_use, digest] : by_age) {
    if (!visit(digest, last_use)) break;  // no lock held: the visitor may delete
  }
  return absl::OkStatus();
}

absl::Status MemoryBlobStore::Delete(const Digest& digest) {
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), " not found"));
  bytes_ -= digest.size();
  blobs_.erase(it);
  return absl::OkStatus();
}

absl::Status MemoryBlobStore::Touch(const Digest& digest) {
  if (digest.empty_blob()) return absl::OkStatus();
  absl::MutexLock lock(&mu_);
  auto it = blobs_.find(digest);
  if (it == blobs_.end()) return absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), " not found"));
  it->second.last_use = ++uses_;
  return absl::OkStatus();
}

int64_t MemoryBlobStore::stored_bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

size_t MemoryBlobStore::size() const {
  absl::MutexLock lock(&mu_);
  return blobs_.size();
}

}  // namespace assay
