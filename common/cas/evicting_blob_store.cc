#include "common/cas/evicting_blob_store.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/byte_size.h"

namespace assay {

class EvictingWriter final : public BlobWriter {
 public:
  EvictingWriter(EvictingBlobStore* store, std::unique_ptr<BlobWriter> inner) : store_(store), inner_(std::move(inner)) {}
  absl::Status Append(absl::string_view data) override { return inner_->Append(data); }
  absl::Status Commit() override {
    absl::Status s = inner_->Commit();
    committed_ = s.ok();
    if (s.ok()) store_->AfterWrite(/*committed=*/true);
    return s;
  }
  int64_t written() const override { return inner_->written(); }
  ~EvictingWriter() override {
    inner_.reset();  // a failed upload's chunks are discarded now...
    if (!committed_) store_->AfterWrite(/*committed=*/false);  // ...and their space given back by the upkeep
  }

 private:
  bool committed_ = false;
  EvictingBlobStore* store_;
  std::unique_ptr<BlobWriter> inner_;
};

EvictingBlobStore::EvictingBlobStore(EvictableBlobStore* inner, Options options) : inner_(inner), options_(options) {
  if (!options_.background) return;
  evictor_ = std::thread([this] {
    absl::Duration interval = kMaintenanceInterval;
    while (true) {
      bool woken_by_write = false;
      {
        absl::MutexLock lock(&wake_mu_);
        auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wake_mu_) { return wake_ || stopping_; };
        wake_mu_.AwaitWithTimeout(absl::Condition(&woken), interval);
        if (stopping_) return;
        woken_by_write = wake_;
        wake_ = false;
      }
      const bool busy = Maintain();
      const bool wrote = wrote_.exchange(false, std::memory_order_relaxed);
      interval = NextMaintenanceInterval(interval, busy || wrote || woken_by_write);
    }
  });
}

absl::Duration EvictingBlobStore::NextMaintenanceInterval(absl::Duration last, bool active) {
  if (active) return kMaintenanceInterval;
  return std::min(2 * last, kIdleMaintenanceInterval);
}

EvictingBlobStore::~EvictingBlobStore() {
  {
    absl::MutexLock lock(&wake_mu_);
    stopping_ = true;
  }
  if (evictor_.joinable()) evictor_.join();
}

bool EvictingBlobStore::Maintain() {
  if (!inner_->Upkeep()) return true;  // no writes possible now: nothing to evict for
  auto evicted = MaybeEvict();
  if (!evicted.ok()) spdlog::warn("eviction failed: {}", evicted.status().ToString());
  return !evicted.ok() || *evicted > 0;
}

void EvictingBlobStore::AfterWrite(bool committed) {
  if (!evictor_.joinable()) {
    MaybeEvict().IgnoreError();
    return;
  }
  if (!wrote_.load(std::memory_order_relaxed)) wrote_.store(true, std::memory_order_relaxed);
  // Waking the thread for nothing costs two context switches a blob (a step's outputs are many).
  if (committed && !NeedsEviction()) return;
  absl::MutexLock lock(&wake_mu_);
  wake_ = true;
}

absl::StatusOr<std::vector<Digest>> EvictingBlobStore::FindMissing(const std::vector<Digest>& digests) {
  auto missing = inner_->FindMissing(digests);
  if (!missing.ok() || options_.budget_bytes == 0) return missing;
  // Blobs a client is told are present must survive until it uses them: refresh them.
  if (missing->size() < digests.size()) {
    absl::flat_hash_set<Digest> absent(missing->begin(), missing->end());
    for (const Digest& d : digests) {
      if (!absent.contains(d)) inner_->Touch(d).IgnoreError();
    }
  }
  return missing;
}

absl::StatusOr<std::string> EvictingBlobStore::Get(const Digest& digest) {
  auto data = inner_->Get(digest);
  // Access times only matter when there is a budget to keep.
  if (data.ok() && options_.budget_bytes > 0) inner_->Touch(digest).IgnoreError();
  return data;
}

absl::Status EvictingBlobStore::Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) {
  if (options_.budget_bytes > 0) inner_->Touch(digest).IgnoreError();
  return inner_->Read(digest, offset, limit, sink);
}

absl::Status EvictingBlobStore::Put(const Digest& digest, absl::string_view data) {
  return PutMany({BlobToPut{digest, data}}).front();
}

std::vector<absl::Status> EvictingBlobStore::Stored(const std::vector<BlobToPut>& blobs, PutSync sync) {
  std::vector<absl::Status> out = sync == PutSync::kNow ? inner_->PutMany(blobs) : inner_->PutManyUnsynced(blobs);
  bool any = false;
  for (size_t i = 0; i < out.size() && i < blobs.size(); ++i) {
    if (absl::IsResourceExhausted(out[i]) && MakeRoom(blobs[i].digest.size())) {
      out[i] = inner_->Put(blobs[i].digest, blobs[i].data);
    }
    any = any || out[i].ok();
  }
  if (any) AfterWrite(/*committed=*/true);
  return out;
}

absl::StatusOr<std::unique_ptr<BlobWriter>> EvictingBlobStore::OpenWrite(const Digest& digest) {
  auto inner = inner_->OpenWrite(digest);
  if (absl::IsResourceExhausted(inner.status()) && MakeRoom(digest.size())) inner = inner_->OpenWrite(digest);
  if (!inner.ok()) return inner.status();
  return std::unique_ptr<BlobWriter>(new EvictingWriter(this, std::move(*inner)));
}

void EvictingBlobStore::Pin(const std::vector<Digest>& digests) {
  absl::MutexLock lock(&pins_mu_);
  // A deletion of one of these already under way finishes first; none can start once pinned.
  absl::flat_hash_set<Digest> wanted(digests.begin(), digests.end());
  auto clear = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pins_mu_) {
    return !deleting_.has_value() || !wanted.contains(*deleting_);
  };
  pins_mu_.Await(absl::Condition(&clear));
  for (const Digest& d : digests) pins_[d]++;
}

void EvictingBlobStore::Unpin(const std::vector<Digest>& digests) {
  absl::MutexLock lock(&pins_mu_);
  for (const Digest& d : digests) {
    auto it = pins_.find(d);
    if (it != pins_.end() && --it->second <= 0) pins_.erase(it);
  }
}

int64_t EvictingBlobStore::DiskShortfall() {
  DiskReserve* reserve = inner_->disk_reserve();
  if (reserve == nullptr || !reserve->Low()) return 0;
  return std::max<int64_t>(2 * reserve->reserve_bytes() - reserve->free_bytes(), 0);
}

bool EvictingBlobStore::NeedsEviction(int64_t* shortfall) {
  const auto high = static_cast<int64_t>(static_cast<double>(options_.budget_bytes) * options_.high_watermark);
  const bool over_budget = options_.budget_bytes > 0 && inner_->stored_bytes() > high;
  const int64_t short_by = DiskShortfall();
  if (shortfall != nullptr) *shortfall = short_by;
  return over_budget || short_by > 0;
}

absl::StatusOr<int64_t> EvictingBlobStore::MaybeEvict() {
  int64_t shortfall = 0;
  if (!NeedsEviction(&shortfall)) {
    // Nothing is short: no space is awaited any more (AwaitedLocked).
    if (evict_mu_.TryLock()) {
      awaited_bytes_ = 0;
      evict_mu_.Unlock();
    }
    return 0;
  }
  // One evictor at a time; writers that find it busy go on (the running pass covers them).
  if (!evict_mu_.TryLock()) return 0;
  // The last reading of free space may predate a pass that just gave space back: a pass decided on
  // it would evict again what the disk no longer lacks (newer blobs, even the one just written).
  if (DiskReserve* reserve = inner_->disk_reserve(); reserve != nullptr && shortfall > 0) {
    reserve->Refresh();
    if (!NeedsEviction(&shortfall)) {
      evict_mu_.Unlock();
      return 0;
    }
  }
  auto dropped = EvictLocked(shortfall);
  evict_mu_.Unlock();
  return dropped;
}

bool EvictingBlobStore::MakeRoom(int64_t bytes) {
  DiskReserve* reserve = inner_->disk_reserve();
  if (reserve == nullptr) return false;
  absl::MutexLock lock(&evict_mu_);  // after a pass under way, which may free enough
  reserve->Refresh();
  const int64_t short_by = bytes + reserve->reserve_bytes() - reserve->free_bytes();
  if (short_by <= 0) return true;
  if (inner_->stored_bytes() < short_by) return false;  // dropping every blob would not be enough
  auto dropped = EvictLocked(std::max(short_by, DiskShortfall()));
  reserve->Refresh();
  // Space given back from blobs deleted before may have been enough without evicting any.
  return dropped.ok() && (*dropped > 0 || bytes + reserve->reserve_bytes() <= reserve->free_bytes());
}

absl::StatusOr<int64_t> EvictingBlobStore::EvictLocked(int64_t shortfall) {
  const auto low = static_cast<int64_t>(static_cast<double>(options_.budget_bytes) * options_.low_watermark);
  if (shortfall > 0 && give_back_owed_) {
    // Blobs deleted before and not yet compacted away (and, after a failed compaction, write-ahead
    // logs RocksDB has not purged yet) make the disk look fuller than evicting more could cure:
    // give their space back first, then evict only what is still short.
    DiskReserve* reserve = inner_->disk_reserve();
    const int64_t before = reserve->free_bytes();
    if (inner_->GiveBackDeletedSpace().ok()) give_back_owed_ = false;
    reserve->Refresh();
    shortfall = std::max<int64_t>(shortfall - (reserve->free_bytes() - before), 0);
  }
  int64_t free_before = 0;
  if (shortfall > 0) {
    shortfall = std::max<int64_t>(shortfall - AwaitedLocked(inner_->disk_reserve()), 0);
    free_before = inner_->disk_reserve()->free_bytes();
  }
  int64_t dropped = 0;
  int64_t blobs = 0;
  absl::Status status = EvictWhile(
      [&](int64_t so_far) {
        return (options_.budget_bytes > 0 && inner_->stored_bytes() > low) || so_far < shortfall;
      },
      &dropped, &blobs);
  // Deleted data frees disk space only once compacted: when the disk is low, do it now.
  if (blobs > 0) give_back_owed_ = true;
  if (status.ok() && shortfall > 0 && blobs > 0) {
    DiskReserve* reserve = inner_->disk_reserve();
    status = inner_->GiveBackDeletedSpace();
    give_back_owed_ = !status.ok();
    reserve->Refresh();  // the next decision sees the space given back
    free_seen_ = reserve->free_bytes();
    awaited_bytes_ += std::max<int64_t>(dropped - std::max<int64_t>(free_seen_ - free_before, 0), 0);
    awaited_since_ = reserve->clock()->Now();
  }
  evicted_blobs_ += blobs;
  evicted_bytes_ += dropped;
  if (blobs > 0) {
    spdlog::info("evicted {} blobs ({} bytes); store now {} bytes of a {} byte budget{}", blobs, dropped,
                 inner_->stored_bytes(), options_.budget_bytes,
                 shortfall > 0 ? absl::StrCat("; disk space was low (", FormatBytes(shortfall), " short of twice ",
                                              inner_->disk_reserve()->options().flag, ")")
                               : "");
  }
  if (!status.ok()) return status;
  return dropped;
}

int64_t EvictingBlobStore::AwaitedLocked(DiskReserve* reserve) {
  if (awaited_bytes_ == 0) return 0;
  if (reserve->clock()->Now() - awaited_since_ > kAwaitSpaceFor) {
    awaited_bytes_ = 0;  // not seen back in time: taken by other writes, or held longer
    return 0;
  }
  const int64_t free_now = reserve->free_bytes();
  if (free_now > free_seen_) awaited_bytes_ = std::max<int64_t>(awaited_bytes_ - (free_now - free_seen_), 0);
  free_seen_ = free_now;
  return awaited_bytes_;
}

absl::Status EvictingBlobStore::EvictWhile(const std::function<bool(int64_t)>& more, int64_t* dropped,
                                           int64_t* blobs) {
  absl::Status failure;
  absl::Status scan = inner_->ForEachByAge([&](const Digest& digest, int64_t) {
    if (!more(*dropped)) return false;
    {
      // Checked and marked as one step with Pin: a blob is either pinned first (kept) or being
      // deleted (a Pin of it waits until the deletion is done, and then finds it gone).
      absl::MutexLock lock(&pins_mu_);
      if (pins_.contains(digest)) return true;
      deleting_ = digest;
    }
    absl::Status s = inner_->Delete(digest);  // no lock held
    {
      absl::MutexLock lock(&pins_mu_);
      deleting_.reset();
    }
    if (s.ok()) {
      *dropped += digest.size();
      ++*blobs;
    } else if (!absl::IsNotFound(s)) {
      failure = s;
      return false;
    }
    return true;
  });
  if (!scan.ok()) return scan;
  return failure;
}

}  // namespace assay
