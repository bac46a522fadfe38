#include "common/bucket/bucket_blob_store.h"

#include <algorithm>
#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/log_format.h"
#include "absl/strings/str_split.h"

namespace assay {
namespace {

// The index's own record, beside the digests: present once the index holds every blob in the bucket.
constexpr absl::string_view kCompleteKey = "index-complete";
constexpr absl::string_view kObjectPrefix = "cas/";

std::string EncodeEntry(int64_t size, int64_t last_use_ms) {
  return absl::StrCat(EncodeU64(static_cast<uint64_t>(size)), EncodeU64(static_cast<uint64_t>(last_use_ms)));
}
struct Entry {
  int64_t size = 0;
  int64_t last_use_ms = 0;
};
std::optional<Entry> DecodeEntry(absl::string_view value) {
  if (value.size() != 16) return std::nullopt;
  return Entry{static_cast<int64_t>(DecodeU64(value.substr(0, 8))), static_cast<int64_t>(DecodeU64(value.substr(8)))};
}

// The digest an object name stands for ("cas/HASH-SIZE"), or an error for any other name.
absl::StatusOr<Digest> DigestOfName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kObjectPrefix)) return absl::InvalidArgumentError("not a blob's name");
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(name, absl::MaxSplits('-', 1));
  int64_t size = 0;
  if (!absl::SimpleAtoi(parts.second, &size)) return absl::InvalidArgumentError("no size in the name");
  return Digest::Create(parts.first, size);
}

}  // namespace

// Streams one blob into the bucket: buffered up to a part, then as a multipart upload.
class BucketWriter final : public BlobWriter {
 public:
  BucketWriter(BucketBlobStore* store, Digest digest)
      : store_(store), digest_(std::move(digest)), name_(BucketBlobStore::ObjectName(digest_)) {
    store_->BeginUpload(digest_);
  }
  ~BucketWriter() override {
    if (!upload_id_.empty() && !committed_) store_->client_->AbortMultipartUpload(name_, upload_id_).IgnoreError();
    store_->EndUpload(digest_);
  }
  absl::Status Append(absl::string_view data) override {
    if (written_ + static_cast<int64_t>(data.size()) > digest_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("more than the ", digest_.size(), " bytes of ", digest_.ToString()));
    }
    buffer_.append(data.data(), data.size());
    written_ += static_cast<int64_t>(data.size());
    while (static_cast<int64_t>(buffer_.size()) >= store_->options_.part_bytes) {
      if (absl::Status s = SendPart(store_->options_.part_bytes); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  absl::Status Commit() override {
    if (written_ != digest_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("only ", written_, " of the ", digest_.size(), " bytes of ",
                                                     digest_.ToString(), " were written"));
    }
    absl::Status s;
    if (upload_id_.empty()) {
      s = store_->client_->PutObject(name_, buffer_);
    } else {
      if (!buffer_.empty()) s = SendPart(static_cast<int64_t>(buffer_.size()));
      if (s.ok()) s = store_->client_->CompleteMultipartUpload(name_, upload_id_, parts_);
    }
    if (!s.ok()) return s;
    committed_ = true;
    return store_->Index(digest_);
  }
  int64_t written() const override { return written_; }

 private:
  absl::Status SendPart(int64_t bytes) {
    if (upload_id_.empty()) {
      auto id = store_->client_->CreateMultipartUpload(name_);
      if (!id.ok()) return id.status();
      upload_id_ = *id;
    }
    const int number = static_cast<int>(parts_.size()) + 1;
    auto etag = store_->client_->UploadPart(name_, upload_id_, number,
                                            absl::string_view(buffer_).substr(0, static_cast<size_t>(bytes)));
    if (!etag.ok()) return etag.status();
    parts_.push_back(S3Part{number, *etag});
    buffer_.erase(0, static_cast<size_t>(bytes));
    return absl::OkStatus();
  }

  BucketBlobStore* store_;
  const Digest digest_;
  const std::string name_;
  std::string buffer_;
  std::string upload_id_;
  std::vector<S3Part> parts_;
  int64_t written_ = 0;
  bool committed_ = false;
};

namespace {

// A blob the bucket holds already: its bytes are taken and dropped.
class KnownBlobWriter final : public BlobWriter {
 public:
  absl::Status Append(absl::string_view data) override {
    written_ += static_cast<int64_t>(data.size());
    return absl::OkStatus();
  }
  absl::Status Commit() override { return absl::OkStatus(); }
  int64_t written() const override { return written_; }

 private:
  int64_t written_ = 0;
};

}  // namespace

std::string BucketBlobStore::ObjectName(const Digest& digest) {
  return absl::StrCat(kObjectPrefix, digest.hash(), "-", digest.size());
}

BucketBlobStore::BucketBlobStore(S3Client* client, Database* db, const Clock* clock, Options options)
    : client_(client), db_(db), clock_(clock), options_(options) {}

BucketBlobStore::~BucketBlobStore() {
  if (absl::Status s = FinishDeletes(); !s.ok()) spdlog::warn("bucket: queued deletions not done: {}", s.message());
}

absl::StatusOr<std::unique_ptr<BucketBlobStore>> BucketBlobStore::Open(S3Client* client, Database* db,
                                                                       const Clock* clock, Options options) {
  if (!db->has(options.index)) return absl::InvalidArgumentError("the bucket's index family is not open");
  std::unique_ptr<BucketBlobStore> store(new BucketBlobStore(client, db, clock, options));
  auto complete = db->Get(options.index, kCompleteKey);
  if (complete.ok()) {
    if (absl::Status s = store->LoadIndex(); !s.ok()) return s;
  } else if (absl::IsNotFound(complete.status())) {
    if (absl::Status s = store->RebuildIndex(); !s.ok()) return s;
  } else {
    return complete.status();
  }
  return store;
}

absl::Status BucketBlobStore::LoadIndex() {
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(options_.index)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto entry = DecodeEntry(absl::string_view(it->value().data(), it->value().size()));
    if (it->key().size() != 40 || !entry.has_value()) continue;
    bytes_ += entry->size;
    ++blobs_;
  }
  return it->status().ok() ? absl::OkStatus() : FromRocks(it->status(), "reading the bucket's index");
}

absl::Status BucketBlobStore::RebuildIndex() {
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  int64_t found = 0;
  absl::Status listed = client_->ListObjects(kObjectPrefix, [&](std::vector<S3Object> page) {
    rocksdb::WriteBatch batch;
    for (const S3Object& object : page) {
      auto digest = DigestOfName(object.key);
      if (!digest.ok() || digest->size() != object.size) {
        spdlog::warn("bucket: object '{}' is not a blob of ours; left alone", object.key);
        continue;
      }
      batch.Put(db_->cf(options_.index), digest->Key(), EncodeEntry(digest->size(), now_ms));
      bytes_ += digest->size();
      ++blobs_;
      ++found;
    }
    return db_->Write(&batch, /*sync=*/false);
  });
  if (!listed.ok()) return absl::Status(listed.code(), absl::StrCat("listing the bucket to rebuild its index: ", listed.message()));
  // Written last and synced: an interrupted rebuild starts over.
  if (absl::Status s = db_->Put(options_.index, kCompleteKey, "", /*sync=*/true); !s.ok()) return s;
  rebuilt_ = found;
  index_rebuilt_ = true;
  if (found > 0) spdlog::info("bucket {}: index rebuilt from a listing: {} blobs", client_->location().ToString(), found);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> BucketBlobStore::IndexedSize(const Digest& digest) const {
  auto value = db_->Get(options_.index, digest.Key());
  if (!value.ok()) return value.status();
  auto entry = DecodeEntry(*value);
  if (!entry.has_value()) return absl::DataLossError(absl::StrCat("index entry of ", digest.ToString(), " is corrupt"));
  return entry->size;
}

absl::Status BucketBlobStore::Index(const Digest& digest) {
  if (IndexedSize(digest).ok()) return absl::OkStatus();  // a concurrent writer of the same bytes won
  const int64_t now_ms = absl::ToUnixMillis(clock_->Now());
  if (absl::Status s = db_->Put(options_.index, digest.Key(), EncodeEntry(digest.size(), now_ms), /*sync=*/true);
      !s.ok()) {
    return s;
  }
  bytes_ += digest.size();
  ++blobs_;
  return absl::OkStatus();
}

absl::Status BucketBlobStore::Forget(const Digest& digest, absl::Status error) {
  spdlog::error("bucket: {}; the blob is dropped from the index so that it is uploaded again", error.message());
  if (IndexedSize(digest).ok() && db_->db()->Delete(rocksdb::WriteOptions(), db_->cf(options_.index), digest.Key()).ok()) {
    bytes_ -= digest.size();
    --blobs_;
  }
  return error;
}

absl::StatusOr<std::vector<Digest>> BucketBlobStore::FindMissing(const std::vector<Digest>& digests) {
  std::vector<Digest> missing;
  for (const Digest& d : digests) {
    if (d.empty_blob()) continue;
    auto size = IndexedSize(d);
    if (absl::IsNotFound(size.status())) {
      missing.push_back(d);
    } else if (!size.ok()) {
      return size.status();
    }
  }
  return missing;
}

absl::StatusOr<std::string> BucketBlobStore::Get(const Digest& digest) {
  std::string out;
  out.reserve(static_cast<size_t>(digest.size()));
  absl::Status s = Read(digest, 0, 0, [&](absl::string_view piece) {
    out.append(piece.data(), piece.size());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status BucketBlobStore::Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) {
  if (digest.empty_blob()) return offset == 0 ? absl::OkStatus() : absl::OutOfRangeError("read past the end");
  auto size = IndexedSize(digest);
  if (!size.ok()) {
    return absl::IsNotFound(size.status()) ? absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), " not found"))
                                           : size.status();
  }
  if (offset < 0 || offset > digest.size()) {
    return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is past the end of ", digest.ToString()));
  }
  const int64_t end = limit <= 0 ? digest.size() : std::min(digest.size(), offset + limit);
  return ReadPieces(digest, offset, end, sink);
}

absl::Status BucketBlobStore::ReadPieces(const Digest& digest, int64_t offset, int64_t end, const ChunkSink& sink) {
  const std::string name = ObjectName(digest);
  const bool whole = offset == 0 && end == digest.size();
  Sha256 hash;
  std::string held;  // a whole read's last piece, handed on once the digest is checked
  for (int64_t at = offset; at < end;) {
    const int64_t n = std::min(options_.read_piece_bytes, end - at);
    auto piece = client_->GetObjectRange(name, at, n);
    if (absl::IsNotFound(piece.status()) || absl::IsOutOfRange(piece.status())) {
      return Forget(digest, absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), ": its object ", name,
                                                             " is gone from the bucket")));
    }
    if (!piece.ok()) return piece.status();
    if (static_cast<int64_t>(piece->size()) != n) {
      return Forget(digest, absl::DataLossError(absl::StrCat("blob ", digest.ToString(), ": its object ", name,
                                                             " has another size than its digest says")));
    }
    at += n;
    if (whole) hash.Update(*piece);
    if (whole && at == end) {
      held = std::move(*piece);
    } else if (absl::Status s = sink(*piece); !s.ok()) {
      return s;
    }
  }
  if (!whole) return absl::OkStatus();
  if (hash.FinishHex() != digest.hash()) {
    return Forget(digest, absl::DataLossError(absl::StrCat("blob ", digest.ToString(), ": its object ", name,
                                                           " was changed in the bucket; it does not match its digest")));
  }
  return held.empty() ? absl::OkStatus() : sink(held);
}

absl::Status BucketBlobStore::Put(const Digest& digest, absl::string_view data) {
  if (digest.empty_blob() || IndexedSize(digest).ok()) return absl::OkStatus();
  if (static_cast<int64_t>(data.size()) != digest.size()) {
    return absl::InvalidArgumentError(absl::StrCat("blob has ", data.size(), " bytes but its digest says ", digest.size()));
  }
  BucketWriter writer(this, digest);
  if (absl::Status s = writer.Append(data); !s.ok()) return s;
  return writer.Commit();
}

absl::StatusOr<std::unique_ptr<BlobWriter>> BucketBlobStore::OpenWrite(const Digest& digest) {
  if (digest.empty_blob() || IndexedSize(digest).ok()) return std::unique_ptr<BlobWriter>(new KnownBlobWriter());
  return std::unique_ptr<BlobWriter>(new BucketWriter(this, digest));
}

absl::StatusOr<bool> BucketBlobStore::Adopt(const Digest& digest) {
  if (digest.empty_blob() || IndexedSize(digest).ok()) return false;
  BeginUpload(digest);  // an object waiting for deletion is kept; one being deleted is gone first
  absl::StatusOr<bool> out = [&]() -> absl::StatusOr<bool> {
    auto object = client_->HeadObject(ObjectName(digest));
    if (absl::IsNotFound(object.status())) {
      return absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), " is not in the bucket; upload it again"));
    }
    if (!object.ok()) return object.status();
    if (object->size != digest.size()) {
      return absl::FailedPreconditionError(absl::StrCat("the bucket's object of blob ", digest.ToString(), " has ",
                                                        object->size, " bytes"));
    }
    if (absl::Status s = Index(digest); !s.ok()) return s;
    return true;
  }();
  EndUpload(digest);
  return out;
}

absl::Status BucketBlobStore::ForEachByAge(const AgeVisitor& visit) {
  std::vector<std::pair<int64_t, Digest>> entries;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(options_.index)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto digest = Digest::FromKey(absl::string_view(it->key().data(), it->key().size()));
      auto entry = DecodeEntry(absl::string_view(it->value().data(), it->value().size()));
      if (digest.ok() && entry.has_value()) entries.emplace_back(entry->last_use_ms, *digest);
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning the bucket's index");
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [last_use, digest] : entries) {
    if (!visit(digest, last_use)) break;
  }
  return absl::OkStatus();
}

absl::Status BucketBlobStore::Delete(const Digest& digest) {
  auto size = IndexedSize(digest);
  if (!size.ok()) return size.status();
  if (absl::Status s = FromRocks(db_->db()->Delete(rocksdb::WriteOptions(), db_->cf(options_.index), digest.Key()),
                                 "dropping a blob from the bucket's index");
      !s.ok()) {
    return s;
  }
  bytes_ -= digest.size();
  --blobs_;
  absl::MutexLock lock(&deletes_mu_);
  queued_.insert(digest);
  return absl::OkStatus();
}

absl::Status BucketBlobStore::Touch(const Digest& digest) {
  auto size = IndexedSize(digest);
  if (!size.ok()) return size.status();
  return db_->Put(options_.index, digest.Key(), EncodeEntry(*size, absl::ToUnixMillis(clock_->Now())), /*sync=*/false);
}

bool BucketBlobStore::Upkeep() {
  if (absl::Status s = FinishDeletes(); !s.ok()) spdlog::warn("bucket: deleting evicted objects: {}", s.message());
  return true;
}

size_t BucketBlobStore::deletes_queued() {
  absl::MutexLock lock(&deletes_mu_);
  return queued_.size();
}

void BucketBlobStore::BeginUpload(const Digest& digest) {
  absl::MutexLock lock(&deletes_mu_);
  auto not_deleting = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(deletes_mu_) { return !deleting_.contains(digest); };
  deletes_mu_.Await(absl::Condition(&not_deleting));
  queued_.erase(digest);  // the object written now is the blob's again
  ++uploading_[digest];
}

void BucketBlobStore::EndUpload(const Digest& digest) {
  absl::MutexLock lock(&deletes_mu_);
  if (--uploading_[digest] <= 0) uploading_.erase(digest);
}

absl::Status BucketBlobStore::FinishDeletes() {
  std::vector<Digest> batch;
  {
    absl::MutexLock lock(&deletes_mu_);
    for (const Digest& d : queued_) {
      if (!uploading_.contains(d)) batch.push_back(d);  // one being written again keeps its object
    }
    queued_.clear();
    deleting_.insert(batch.begin(), batch.end());  // no upload of these starts until they are gone
  }
  if (batch.empty()) return absl::OkStatus();
  std::vector<std::string> names;
  names.reserve(batch.size());
  for (const Digest& d : batch) {
    if (!IndexedSize(d).ok()) names.push_back(ObjectName(d));  // written again before it was queued: kept
  }
  absl::StatusOr<std::vector<S3KeyStatus>> refused = std::vector<S3KeyStatus>();
  if (!names.empty()) refused = client_->DeleteObjects(names);
  absl::MutexLock lock(&deletes_mu_);
  for (const Digest& d : batch) deleting_.erase(d);
  if (!refused.ok()) {
    queued_.insert(batch.begin(), batch.end());  // tried again at the next pass
    return refused.status();
  }
  objects_deleted_ += static_cast<int64_t>(names.size() - refused->size());
  for (const S3KeyStatus& r : *refused) {
    spdlog::warn("bucket: object {} not deleted: {}", r.name, r.status.message());
    if (auto d = DigestOfName(r.name); d.ok()) queued_.insert(*d);
  }
  return absl::OkStatus();
}

}  // namespace assay
