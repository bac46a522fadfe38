#include "common/rocksdb/rocksdb_blob_store.h"

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace assay {
namespace {

std::string ChunkKey(uint64_t chunk_id, uint32_t index) { return EncodeU64(chunk_id) + EncodeU32(index); }

std::string EncodeMeta(uint64_t chunk_id, int64_t last_access_ms) {
  return EncodeU64(chunk_id) + EncodeU64(static_cast<uint64_t>(last_access_ms));
}

}  // namespace

class RocksDbBlobWriter final : public BlobWriter {
 public:
  RocksDbBlobWriter(RocksDbBlobStore* store, Digest digest)
      : store_(store), digest_(std::move(digest)), chunk_id_(store->NextChunkId()) {}

  ~RocksDbBlobWriter() override {
    if (!committed_ && index_ > 0) store_->DiscardUpload(digest_, chunk_id_);
  }

  absl::Status Append(absl::string_view data) override {
    if (committed_) return absl::FailedPreconditionError("blob already committed");
    written_ += static_cast<int64_t>(data.size());
    while (!data.empty()) {
      size_t take = std::min<size_t>(data.size(), RocksDbBlobStore::kChunkSize - pending_.size());
      pending_.append(data.data(), take);
      data.remove_prefix(take);
      if (static_cast<int64_t>(pending_.size()) == RocksDbBlobStore::kChunkSize) {
        if (absl::Status s = Flush(); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Commit() override {
    if (committed_) return absl::OkStatus();
    if (absl::Status s = Seal(); !s.ok()) return s;
    if (absl::Status s = store_->CommitChunks(digest_, chunk_id_); !s.ok()) return s;
    committed_ = true;
    return absl::OkStatus();
  }

  // Every byte written and checked against the digest's size, the entry not yet (PutMany commits
  // many at once, then calls Committed for each).
  absl::Status Seal() {
    if (written_ != digest_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat("blob ", digest_.ToString(), " has ", written_, " bytes, expected ", digest_.size()));
    }
    if (!pending_.empty()) return Flush();
    return absl::OkStatus();
  }
  void Committed() { committed_ = true; }
  uint64_t chunk_id() const { return chunk_id_; }

  int64_t written() const override { return written_; }

 private:
  absl::Status Flush() {
    if (DiskReserve* reserve = store_->reserve_; reserve != nullptr) {
      if (absl::Status s = reserve->Check(static_cast<int64_t>(pending_.size())); !s.ok()) return s;
      reserve->Wrote(static_cast<int64_t>(pending_.size()));
    }
    std::string key = ChunkKey(chunk_id_, index_++);
    absl::Status s = store_->db_->Put(Family::kCasChunks, key, pending_, /*sync=*/false);
    pending_.clear();
    return s;
  }

  RocksDbBlobStore* store_;
  Digest digest_;
  uint64_t chunk_id_;
  uint32_t index_ = 0;
  int64_t written_ = 0;
  std::string pending_;
  bool committed_ = false;
};

absl::StatusOr<std::unique_ptr<RocksDbBlobStore>> RocksDbBlobStore::Create(Database* db, const Clock* clock,
                                                                           bool durable) {
  std::unique_ptr<RocksDbBlobStore> store(new RocksDbBlobStore(db, clock, durable));
  if (absl::Status s = store->Recover(); !s.ok()) return s;
  return store;
}

// Counts what is stored, finds the next free chunk id, and drops chunks no blob refers to
// (uploads a crash cut short).
absl::Status RocksDbBlobStore::Recover() {
  absl::flat_hash_set<uint64_t> live;
  int64_t bytes = 0, blobs = 0;
  uint64_t max_id = 0;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(Family::kCasMeta)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto digest = Digest::FromKey(absl::string_view(it->key().data(), it->key().size()));
      if (!digest.ok()) continue;
      uint64_t id = DecodeU64(absl::string_view(it->value().data(), it->value().size()));
      live.insert(id);
      max_id = std::max(max_id, id);
      bytes += digest->size();
      ++blobs;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning blob index");
  }
  std::vector<uint64_t> orphans;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(Family::kCasChunks)));
    for (it->SeekToFirst(); it->Valid();) {
      uint64_t id = DecodeU64(absl::string_view(it->key().data(), 8));
      max_id = std::max(max_id, id);
      if (!live.contains(id)) orphans.push_back(id);
      it->Seek(EncodeU64(id + 1));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning blob chunks");
  }
  for (uint64_t id : orphans) {
    if (absl::Status s = DropChunks(id); !s.ok()) return s;
  }
  if (!orphans.empty()) {
    spdlog::info("blob store: dropped {} unfinished uploads", orphans.size());
    // Their space comes back with the next upkeep's compaction of their ranges (ReclaimSpace).
    absl::MutexLock lock(&reclaim_mu_);
    to_compact_.insert(to_compact_.end(), orphans.begin(), orphans.end());
  }
  next_chunk_id_ = max_id + 1;
  bytes_ = bytes;
  blobs_ = blobs;
  return absl::OkStatus();
}

absl::StatusOr<RocksDbBlobStore::Meta> RocksDbBlobStore::GetMeta(const Digest& digest) const {
  auto value = db_->Get(Family::kCasMeta, digest.Key());
  if (!value.ok()) {
    if (absl::IsNotFound(value.status())) return absl::NotFoundError(absl::StrCat("blob ", digest.ToString(), " not found"));
    return value.status();
  }
  return Meta{DecodeU64(*value), static_cast<int64_t>(DecodeU64(absl::string_view(*value).substr(8)))};
}

absl::StatusOr<std::vector<Digest>> RocksDbBlobStore::FindMissing(const std::vector<Digest>& digests) {
  std::vector<Digest> missing;
  std::vector<std::string> keys;
  std::vector<rocksdb::Slice> slices;
  std::vector<const Digest*> asked;
  keys.reserve(digests.size());
  for (const Digest& d : digests) {
    if (d.empty_blob()) continue;
    keys.push_back(d.Key());
    asked.push_back(&d);
  }
  for (const auto& k : keys) slices.emplace_back(k);
  std::vector<rocksdb::PinnableSlice> values(slices.size());
  std::vector<rocksdb::Status> statuses(slices.size());
  db_->db()->MultiGet(rocksdb::ReadOptions(), db_->cf(Family::kCasMeta), slices.size(), slices.data(), values.data(),
                      statuses.data());
  for (size_t i = 0; i < slices.size(); ++i) {
    if (statuses[i].IsNotFound()) {
      missing.push_back(*asked[i]);
    } else if (!statuses[i].ok()) {
      return FromRocks(statuses[i], "looking up blobs");
    }
  }
  return missing;
}

absl::StatusOr<std::string> RocksDbBlobStore::Get(const Digest& digest) {
  std::string out;
  out.reserve(static_cast<size_t>(digest.size()));
  absl::Status s = Read(digest, 0, 0, [&](absl::string_view piece) {
    absl::StrAppend(&out, piece);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status RocksDbBlobStore::Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) {
  if (offset < 0 || offset > digest.size()) {
    return absl::OutOfRangeError(absl::StrCat("read offset ", offset, " is outside blob of ", digest.size(), " bytes"));
  }
  if (limit < 0) return absl::InvalidArgumentError("negative read limit");
  if (digest.empty_blob()) return absl::OkStatus();
  auto meta = GetMeta(digest);
  if (!meta.ok()) return meta.status();
  int64_t end = limit == 0 ? digest.size() : std::min(digest.size(), offset + limit);
  rocksdb::ReadOptions options;
  const rocksdb::Snapshot* snapshot = db_->db()->GetSnapshot();
  options.snapshot = snapshot;
  absl::Status result = absl::OkStatus();
  for (int64_t pos = offset; pos < end && result.ok();) {
    uint32_t index = static_cast<uint32_t>(pos / kChunkSize);
    int64_t chunk_start = static_cast<int64_t>(index) * kChunkSize;
    rocksdb::PinnableSlice chunk;
    rocksdb::Status st = db_->db()->Get(options, db_->cf(Family::kCasChunks), ChunkKey(meta->chunk_id, index), &chunk);
    if (!st.ok()) {
      result = st.IsNotFound() ? absl::DataLossError(absl::StrCat("blob ", digest.ToString(), " is missing chunk ", index))
                               : FromRocks(st, "reading blob");
      break;
    }
    int64_t from = pos - chunk_start;
    int64_t to = std::min<int64_t>(static_cast<int64_t>(chunk.size()), end - chunk_start);
    if (to <= from) {
      result = absl::DataLossError(absl::StrCat("blob ", digest.ToString(), " chunk ", index, " is short"));
      break;
    }
    result = sink(absl::string_view(chunk.data() + from, static_cast<size_t>(to - from)));
    pos = chunk_start + to;
  }
  db_->db()->ReleaseSnapshot(snapshot);
  return result;
}

absl::Status RocksDbBlobStore::Put(const Digest& digest, absl::string_view data) {
  return PutMany({BlobToPut{digest, data}}).front();
}

std::vector<absl::Status> RocksDbBlobStore::Stored(const std::vector<BlobToPut>& blobs, bool sync) {
  std::vector<absl::Status> out(blobs.size());
  std::vector<std::unique_ptr<RocksDbBlobWriter>> writers(blobs.size());
  std::map<std::string, size_t> first;  // digest key -> the blob of the batch that stores it (sorted)
  std::vector<std::pair<size_t, size_t>> again;  // (blob, its first): named twice, stored once
  for (size_t i = 0; i < blobs.size(); ++i) {
    const BlobToPut& blob = blobs[i];
    if (blob.digest.empty_blob()) continue;
    if (static_cast<int64_t>(blob.data.size()) != blob.digest.size()) {
      out[i] = absl::InvalidArgumentError(
          absl::StrCat("blob has ", blob.data.size(), " bytes but its digest says ", blob.digest.size()));
      continue;
    }
    if (GetMeta(blob.digest).ok()) continue;
    if (auto [at, fresh] = first.emplace(blob.digest.Key(), i); !fresh) {
      again.emplace_back(i, at->second);
      continue;
    }
    if (reserve_ != nullptr) {
      if (absl::Status s = reserve_->Check(blob.digest.size()); !s.ok()) {
        out[i] = s;
        continue;
      }
    }
    auto writer = std::make_unique<RocksDbBlobWriter>(this, blob.digest);
    absl::Status s = writer->Append(blob.data);
    if (s.ok()) s = writer->Seal();
    if (!s.ok()) {
      out[i] = s;  // its chunks go with the writer
      continue;
    }
    writers[i] = std::move(writer);
  }
  CommitMany(blobs, first, &writers, &out, sync);
  for (const auto& [i, of] : again) out[i] = out[of];
  return out;  // the writers not committed drop their chunks as they go
}

void RocksDbBlobStore::CommitMany(const std::vector<BlobToPut>& blobs, const std::map<std::string, size_t>& first,
                                  std::vector<std::unique_ptr<RocksDbBlobWriter>>* writers,
                                  std::vector<absl::Status>* out, bool sync) {
  // The digests' locks in key order (every other holder takes one at a time: no deadlock), then as
  // CommitChunks for each, with one write for all their entries.
  std::vector<std::unique_ptr<KeyedMutex::Lock>> locks;
  rocksdb::WriteBatch batch;
  std::vector<size_t> committing;
  const int64_t now = UnixMillis(clock_->Now());
  for (const auto& [key, i] : first) {
    if ((*writers)[i] == nullptr) continue;
    locks.push_back(std::make_unique<KeyedMutex::Lock>(&digest_locks_, key));
    if (GetMeta(blobs[i].digest).ok()) continue;  // stored meanwhile by another writer: ours are dropped
    batch.Put(db_->cf(Family::kCasMeta), key, EncodeMeta((*writers)[i]->chunk_id(), now));
    committing.push_back(i);
  }
  const absl::Status s = committing.empty() ? absl::OkStatus() : db_->Write(&batch, sync);
  for (size_t i : committing) {
    if (!s.ok()) {
      (*out)[i] = s;
      continue;
    }
    (*writers)[i]->Committed();
    bytes_ += blobs[i].digest.size();
    ++blobs_;
  }
}

absl::StatusOr<std::unique_ptr<BlobWriter>> RocksDbBlobStore::OpenWrite(const Digest& digest) {
  // A blob that cannot fit is refused before its first byte is sent.
  if (reserve_ != nullptr && !digest.empty_blob()) {
    if (absl::Status s = reserve_->Check(digest.size()); !s.ok()) return s;
  }
  return std::unique_ptr<BlobWriter>(new RocksDbBlobWriter(this, digest));
}

absl::Status RocksDbBlobStore::CommitChunks(const Digest& digest, uint64_t chunk_id) {
  KeyedMutex::Lock lock(&digest_locks_, digest.Key());
  if (GetMeta(digest).ok()) {
    // Someone else stored the same bytes first; ours are redundant.
    return DropChunks(chunk_id);
  }
  if (digest.empty_blob()) return absl::OkStatus();
  absl::Status s = db_->Put(Family::kCasMeta, digest.Key(), EncodeMeta(chunk_id, UnixMillis(clock_->Now())),
                            /*sync=*/durable_);
  if (!s.ok()) return s;
  bytes_ += digest.size();
  ++blobs_;
  return absl::OkStatus();
}

absl::Status RocksDbBlobStore::DropChunks(uint64_t chunk_id) {
  rocksdb::WriteBatch batch;
  batch.DeleteRange(db_->cf(Family::kCasChunks), EncodeU64(chunk_id), EncodeU64(chunk_id + 1));
  return db_->Write(&batch, /*sync=*/false);
}

void RocksDbBlobStore::DiscardUpload(const Digest& digest, uint64_t chunk_id) {
  absl::Status s = DropChunks(chunk_id);
  absl::MutexLock lock(&reclaim_mu_);
  if (s.ok()) {
    to_compact_.push_back(chunk_id);
    return;
  }
  if (to_drop_.empty()) {  // once per stop, not per refused upload
    spdlog::warn("partial upload of {}: its chunks are dropped once the database takes writes again ({})",
                 digest.ToString(), s.ToString());
  }
  to_drop_.push_back(chunk_id);
}

bool RocksDbBlobStore::reclaim_pending() const {
  absl::MutexLock lock(&reclaim_mu_);
  return !to_drop_.empty() || !to_compact_.empty();
}

absl::StatusOr<int> RocksDbBlobStore::ReclaimSpace() {
  std::vector<uint64_t> drop, compact;
  {
    absl::MutexLock lock(&reclaim_mu_);
    drop.swap(to_drop_);
    compact.swap(to_compact_);
  }
  absl::Status failure;
  for (size_t i = 0; i < drop.size(); ++i) {
    if (absl::Status s = DropChunks(drop[i]); !s.ok()) {
      absl::MutexLock lock(&reclaim_mu_);
      to_drop_.insert(to_drop_.end(), drop.begin() + static_cast<ptrdiff_t>(i), drop.end());
      to_compact_.insert(to_compact_.end(), compact.begin(), compact.end());
      return s;
    }
    compact.push_back(drop[i]);
  }
  if (compact.empty()) return 0;
  // Flushing and compacting the dropped ranges makes RocksDB delete the files (SST and blob files,
  // write-ahead logs) that only they used.
  const auto [lo, hi] = std::minmax_element(compact.begin(), compact.end());
  const std::string begin = EncodeU64(*lo), end = EncodeU64(*hi + 1);
  if (absl::Status s = db_->Reclaim(Family::kCasChunks, &begin, &end, static_cast<uint64_t>(bytes_.load())); !s.ok()) {
    absl::MutexLock lock(&reclaim_mu_);
    to_compact_.insert(to_compact_.end(), compact.begin(), compact.end());
    return s;
  }
  return static_cast<int>(compact.size());
}

absl::Status RocksDbBlobStore::GiveBackDeletedSpace() {
  return db_->Reclaim(Family::kCasChunks, nullptr, nullptr, static_cast<uint64_t>(bytes_.load()));
}

bool RocksDbBlobStore::Upkeep() {
  if (db_->stopped()) {
    // Resume is cheap to try; it succeeds once space is back.
    if (absl::Status s = db_->TryResume(); !s.ok()) {
      // The first failure, then at 2, 4, 8, ... tries: a long-full disk does not flood the log.
      const int64_t tries = ++resume_failures_;
      if ((tries & (tries - 1)) == 0) spdlog::warn("database still takes no writes ({} tries): {}", tries, s.ToString());
      return false;
    }
    resume_failures_ = 0;
  }
  if (reclaim_pending()) {
    auto reclaimed = ReclaimSpace();
    if (!reclaimed.ok()) {
      spdlog::warn("giving back failed uploads' space: {}", reclaimed.status().ToString());
    } else if (*reclaimed > 0) {
      spdlog::info("gave back the disk space of {} failed upload(s)", *reclaimed);
    }
  }
  return true;
}

absl::Status RocksDbBlobStore::Delete(const Digest& digest) {
  KeyedMutex::Lock lock(&digest_locks_, digest.Key());
  auto meta = GetMeta(digest);
  if (!meta.ok()) return meta.status();
  rocksdb::WriteBatch batch;
  batch.Delete(db_->cf(Family::kCasMeta), digest.Key());
  batch.DeleteRange(db_->cf(Family::kCasChunks), EncodeU64(meta->chunk_id), EncodeU64(meta->chunk_id + 1));
  if (absl::Status s = db_->Write(&batch, /*sync=*/false); !s.ok()) return s;
  bytes_ -= digest.size();
  --blobs_;
  return absl::OkStatus();
}

absl::Status RocksDbBlobStore::Touch(const Digest& digest) {
  if (digest.empty_blob()) return absl::OkStatus();
  // Access times only need minute precision for LRU; skip the write when nothing changes. Most
  // reads find a recent time and take no lock at all; a write checks again under the digest's lock.
  const int64_t now = UnixMillis(clock_->Now());
  auto recent = GetMeta(digest);
  if (!recent.ok()) return recent.status();
  if (now - recent->last_access_ms < 60'000) return absl::OkStatus();
  KeyedMutex::Lock lock(&digest_locks_, digest.Key());
  auto meta = GetMeta(digest);
  if (!meta.ok()) return meta.status();
  if (now - meta->last_access_ms < 60'000) return absl::OkStatus();
  return db_->Put(Family::kCasMeta, digest.Key(), EncodeMeta(meta->chunk_id, now), /*sync=*/false);
}

absl::Status RocksDbBlobStore::ForEachByAge(const AgeVisitor& visit) {
  struct Entry {
    int64_t last_access_ms;
    Digest digest;
  };
  std::vector<Entry> entries;
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(Family::kCasMeta)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      auto digest = Digest::FromKey(absl::string_view(it->key().data(), it->key().size()));
      if (!digest.ok()) continue;
      entries.push_back({static_cast<int64_t>(DecodeU64(absl::string_view(it->value().data() + 8, 8))), *digest});
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning blob index");
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.last_access_ms < b.last_access_ms; });
  for (const Entry& e : entries) {
    if (!visit(e.digest, e.last_access_ms)) break;
  }
  return absl::OkStatus();
}

}  // namespace assay
