#include "common/cas/blob_store.h"

#include "absl/strings/str_cat.h"

namespace assay {

absl::StatusOr<reapi::Directory> LoadDirectory(BlobStore& store, const Digest& digest) {
  auto bytes = store.Get(digest);
  if (!bytes.ok()) return bytes.status();
  reapi::Directory directory;
  if (!directory.ParseFromString(*bytes)) {
    return absl::InvalidArgumentError(absl::StrCat("blob ", digest.ToString(), " is not a Directory message"));
  }
  return directory;
}
namespace {

absl::Status Mismatch(const Digest& want, const std::string& got_hash, int64_t got_size) {
  return absl::InvalidArgumentError(absl::StrCat("blob bytes do not match digest ", want.ToString(), ": got ",
                                                 got_hash, "/", got_size));
}

class VerifyingWriter final : public BlobWriter {
 public:
  VerifyingWriter(Digest digest, std::unique_ptr<BlobWriter> inner)
      : digest_(std::move(digest)), inner_(std::move(inner)) {}

  absl::Status Append(absl::string_view data) override {
    if (written() + static_cast<int64_t>(data.size()) > digest_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("blob ", digest_.ToString(), " is longer than its digest says (",
                                                     written() + static_cast<int64_t>(data.size()), " bytes)"));
    }
    hasher_.Update(data);
    return inner_->Append(data);
  }

  absl::Status Commit() override {
    if (written() != digest_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("blob ", digest_.ToString(), " ended after ", written(),
                                                     " bytes, expected ", digest_.size()));
    }
    std::string hash = hasher_.FinishHex();
    if (hash != digest_.hash()) return Mismatch(digest_, hash, written());
    return inner_->Commit();
  }

  int64_t written() const override { return inner_->written(); }

 private:
  Digest digest_;
  std::unique_ptr<BlobWriter> inner_;
  Sha256 hasher_;
};

}  // namespace

absl::Status VerifyingBlobStore::Put(const Digest& digest, absl::string_view data) {
  Digest actual = Digest::OfBytes(data);
  if (actual != digest) return Mismatch(digest, actual.hash(), actual.size());
  return inner_->Put(digest, data);
}

std::vector<absl::Status> BlobStore::PutMany(const std::vector<BlobToPut>& blobs) {
  std::vector<absl::Status> out;
  out.reserve(blobs.size());
  for (const BlobToPut& blob : blobs) out.push_back(Put(blob.digest, blob.data));
  return out;
}

std::vector<absl::Status> PutEach(BlobStore& store, const std::vector<absl::StatusOr<BlobToPut>>& items,
                                  PutSync sync) {
  std::vector<absl::Status> out(items.size());
  std::vector<BlobToPut> blobs;
  std::vector<size_t> where;  // blobs[k] is items[where[k]]
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].ok()) {
      out[i] = items[i].status();
      continue;
    }
    blobs.push_back(*items[i]);
    where.push_back(i);
  }
  std::vector<absl::Status> stored = sync == PutSync::kNow ? store.PutMany(blobs) : store.PutManyUnsynced(blobs);
  for (size_t k = 0; k < where.size(); ++k) {
    out[where[k]] = k < stored.size() ? std::move(stored[k]) : absl::InternalError("the store gave no answer");
  }
  return out;
}

std::vector<absl::Status> VerifyingBlobStore::Verified(const std::vector<BlobToPut>& blobs, PutSync sync) {
  std::vector<absl::StatusOr<BlobToPut>> items;
  items.reserve(blobs.size());
  for (const BlobToPut& blob : blobs) {
    Digest actual = Digest::OfBytes(blob.data);
    if (actual != blob.digest) {
      items.push_back(Mismatch(blob.digest, actual.hash(), actual.size()));
    } else {
      items.push_back(blob);
    }
  }
  return PutEach(*inner_, items, sync);
}

absl::StatusOr<std::unique_ptr<BlobWriter>> VerifyingBlobStore::OpenWrite(const Digest& digest) {
  auto inner = inner_->OpenWrite(digest);
  if (!inner.ok()) return inner.status();
  return std::unique_ptr<BlobWriter>(new VerifyingWriter(digest, std::move(*inner)));
}

}  // namespace assay
