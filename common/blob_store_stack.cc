#include "common/blob_store_stack.h"

namespace assay {

absl::StatusOr<BlobStoreStack> MakeBlobStoreStack(Database* db, const Clock* clock, EvictingBlobStore::Options eviction,
                                                  bool durable) {
  auto storage = RocksDbBlobStore::Create(db, clock, durable);
  if (!storage.ok()) return storage.status();
  BlobStoreStack stack;
  stack.storage = std::move(*storage);
  eviction.background = true;  // never on the thread of the request that wrote
  stack.eviction = std::make_unique<EvictingBlobStore>(stack.storage.get(), eviction);
  stack.verification = std::make_unique<VerifyingBlobStore>(stack.eviction.get());
  return stack;
}

}  // namespace assay
