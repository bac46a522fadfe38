#include "common/rocksdb/blob_store_stack.h"

#include <algorithm>

#include "common/base/byte_size.h"
#include "spdlog/spdlog.h"

namespace assay {
namespace {

// A reserve smaller than what a flush writes lets uploads take the room the flush needs: on a
// nearly full disk the database then stops taking writes, and eviction (deletes are writes) cannot
// give space back by itself.
void WarnIfBelowFlushRoom(DiskReserve* reserve) {
  constexpr int64_t kFlushRoom = int64_t{kCasWriteBuffers} * kCasWriteBufferBytes;
  const int64_t bytes = reserve->reserve_bytes();
  if (bytes <= 0 || bytes >= kFlushRoom) return;
  const DiskReserve::Options& o = reserve->options();
  spdlog::warn("{} ({}): {} {} keeps {} free, less than the {} the database needs to flush its write buffers; "
               "on a nearly full disk it could stop taking writes until space is freed by hand",
               o.store, o.dir.string(), o.flag, o.min_free.text, FormatBytes(bytes), FormatBytes(kFlushRoom));
}

}  // namespace

absl::StatusOr<BlobStoreStack> MakeBlobStoreStack(Database* db, const Clock* clock, EvictingBlobStore::Options eviction,
                                                  bool durable, const DiskReserve::Options* reserve) {
  auto storage = RocksDbBlobStore::Create(db, clock, durable);
  if (!storage.ok()) return storage.status();
  BlobStoreStack stack;
  if (reserve != nullptr) {
    DiskReserve::Options options = *reserve;
    if (options.dir.empty()) options.dir = db->dir();
    stack.reserve = std::make_unique<DiskReserve>(std::move(options), clock);
    WarnIfBelowFlushRoom(stack.reserve.get());
  }
  stack.storage = std::move(*storage);
  stack.storage->set_disk_reserve(stack.reserve.get());
  eviction.background = true;  // never on the thread of the request that wrote
  stack.eviction = std::make_unique<EvictingBlobStore>(stack.storage.get(), eviction);
  stack.verification = std::make_unique<VerifyingBlobStore>(stack.eviction.get());
  return stack;
}

void AddSlowTier(BlobStoreStack* stack, std::unique_ptr<EvictableBlobStore> slow, EvictingBlobStore::Options slow_options,
                 int64_t fill_limit) {
  slow_options.background = true;
  stack->slow = std::move(slow);
  stack->slow_eviction = std::make_unique<EvictingBlobStore>(stack->slow.get(), slow_options);
  // A blob larger than the hot tier's whole budget would only push everything out, itself included.
  const int64_t hot_budget = stack->eviction->budget_bytes();
  if (hot_budget > 0) fill_limit = std::min(fill_limit, hot_budget);
  stack->tiers = std::make_unique<TieredBlobStore>(stack->eviction.get(), stack->slow_eviction.get(), fill_limit);
  stack->verification = std::make_unique<VerifyingBlobStore>(stack->tiers.get());
}

}  // namespace assay
