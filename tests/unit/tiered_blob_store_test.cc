// The hot tier over a slow one (TieredBlobStore): what each read asks of the slow tier.
#include "common/cas/tiered_blob_store.h"

#include <gtest/gtest.h>

#include "common/cas/memory_blob_store.h"

namespace assay {
namespace {

// A slow tier that records the reads it is asked for.
class CountingStore final : public BlobStore {
 public:
  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override {
    return inner.FindMissing(digests);
  }
  absl::StatusOr<std::string> Get(const Digest& digest) override {
    ++gets;
    return inner.Get(digest);
  }
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override {
    ++reads;
    read_bytes += limit;
    return inner.Read(digest, offset, limit, sink);
  }
  absl::Status Put(const Digest& digest, absl::string_view data) override { return inner.Put(digest, data); }
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override {
    return inner.OpenWrite(digest);
  }
  MemoryBlobStore inner;
  int gets = 0, reads = 0;
  int64_t read_bytes = 0;
};

std::string ReadRange(BlobStore* store, const Digest& d, int64_t offset, int64_t limit) {
  std::string out;
  EXPECT_TRUE(store->Read(d, offset, limit, [&](absl::string_view piece) {
    out.append(piece.data(), piece.size());
    return absl::OkStatus();
  }).ok());
  return out;
}

TEST(TieredBlobStoreTest, AReadFromTheStartFillsTheHotTierAndLaterRangesComeFromIt) {
  MemoryBlobStore hot;
  CountingStore slow;
  TieredBlobStore tiers(&hot, &slow, /*fill_limit=*/1 << 20);
  const std::string blob(100000, 'x');
  const Digest d = Digest::OfBytes(blob);
  ASSERT_TRUE(slow.Put(d, blob).ok());
  EXPECT_EQ(ReadRange(&tiers, d, 0, 1000), blob.substr(0, 1000));
  EXPECT_EQ(slow.gets, 1) << "the whole blob, checked and kept";
  EXPECT_EQ(ReadRange(&tiers, d, 1000, 5000), blob.substr(1000, 5000));
  EXPECT_EQ(slow.gets + slow.reads, 1) << "the next range from the hot tier";
  EXPECT_EQ(tiers.hot_hits(), 1);
}

// A ByteStream read goes chunk by chunk; when the hot tier holds nothing (let go, or too small), each
// chunk must cost its own range, not the whole blob again.
TEST(TieredBlobStoreTest, ARangeFromWithinABlobTheHotTierLacksIsReadAloneFromTheSlowTier) {
  MemoryBlobStore hot;
  CountingStore slow;
  TieredBlobStore tiers(&hot, &slow, /*fill_limit=*/1 << 20);
  const std::string blob(100000, 'y');
  const Digest d = Digest::OfBytes(blob);
  ASSERT_TRUE(slow.Put(d, blob).ok());
  EXPECT_EQ(ReadRange(&tiers, d, 40000, 10000), blob.substr(40000, 10000));
  EXPECT_EQ(slow.gets, 0);
  EXPECT_EQ(slow.reads, 1);
  EXPECT_EQ(slow.read_bytes, 10000);
  EXPECT_TRUE(hot.FindMissing({d}).value().size() == 1u) << "a part fills nothing";
  EXPECT_EQ(tiers.hot_misses(), 1);
}

}  // namespace
}  // namespace assay
