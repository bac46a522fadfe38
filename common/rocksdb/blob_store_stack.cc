#include "common/rocksdb/blob_store_stack.h"

#include <algorithm>

namespace assay {

absl::StatusOr<BlobStoreStack> MakeBlobStoreStack(Database* db, const Clock* clock, EvictingBlobStore::Options eviction,
                                                  bool durable, const DiskReserve::Options* reserve) {
  auto storage = RocksDbBlobStore::Create(db, clock, durable);
  if (!storage.ok()) return storage.status();
  BlobStoreStack stack;
  if (reserve != nullptr) {
    DiskReserve::Options options = *reserve;
    if (options.dir.empty()) options.dir = db->dir();
    stack.reserve = std::make_unique<DiskReserve>(std::move(options), clock);
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
