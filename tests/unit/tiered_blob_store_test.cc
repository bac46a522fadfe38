// The hot tier over a slow one (TieredBlobStore): what each read asks of the slow tier.
#include "common/cas/tiered_blob_store.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

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

// A tier that records how batches reach it, and refuses the blobs named in `refuse`.
class BatchRecordingStore final : public BlobStore {
 public:
  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests) override {
    return inner.FindMissing(digests);
  }
  absl::StatusOr<std::string> Get(const Digest& digest) override { return inner.Get(digest); }
  absl::Status Read(const Digest& digest, int64_t offset, int64_t limit, const ChunkSink& sink) override {
    return inner.Read(digest, offset, limit, sink);
  }
  absl::Status Put(const Digest& digest, absl::string_view data) override {
    ++single_puts;
    if (refuse.count(digest) > 0) return absl::ResourceExhaustedError("refused");
    return inner.Put(digest, data);
  }
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& digest) override {
    return inner.OpenWrite(digest);
  }
  std::vector<absl::Status> PutMany(const std::vector<BlobToPut>& blobs) override {
    ++synced_batches;
    return Each(blobs);
  }
  std::vector<absl::Status> PutManyUnsynced(const std::vector<BlobToPut>& blobs) override {
    ++unsynced_batches;
    return Each(blobs);
  }
  MemoryBlobStore inner;
  std::set<Digest> refuse;
  int single_puts = 0, synced_batches = 0, unsynced_batches = 0;

 private:
  std::vector<absl::Status> Each(const std::vector<BlobToPut>& blobs) {
    std::vector<absl::Status> out;
    for (const BlobToPut& b : blobs) {
      out.push_back(refuse.count(b.digest) > 0 ? absl::ResourceExhaustedError("refused") : inner.Put(b.digest, b.data));
    }
    return out;
  }
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

// A batch upload (BatchUpdateBlobs, a result's small outputs) reaches the slow tier as a batch, and
// the hot tier as one unsynced batch of the blobs the slow tier took that fit: not one synced write
// per blob.
TEST(TieredBlobStoreTest, ABatchGoesToEachTierAsABatchAndTheHotTierGetsOnlyWhatTheSlowOneTookThatFits) {
  BatchRecordingStore hot, slow;
  TieredBlobStore tiers(&hot, &slow, /*fill_limit=*/1000);
  const std::string small = "small", refused = "refused", large(5000, 'z');
  const Digest ds = Digest::OfBytes(small), dr = Digest::OfBytes(refused), dl = Digest::OfBytes(large);
  slow.refuse.insert(dr);
  const std::vector<BlobToPut> batch = {{ds, small}, {dr, refused}, {dl, large}};
  for (const bool synced : {true, false}) {
    const std::vector<absl::Status> stored = synced ? tiers.PutMany(batch) : tiers.PutManyUnsynced(batch);
    ASSERT_EQ(stored.size(), 3u);
    EXPECT_TRUE(stored[0].ok());
    EXPECT_EQ(stored[1].code(), absl::StatusCode::kResourceExhausted) << "the slow tier's answer is the answer";
    EXPECT_TRUE(stored[2].ok());
  }
  EXPECT_EQ(slow.synced_batches, 1);
  EXPECT_EQ(slow.unsynced_batches, 1) << "the caller's synced write covers the slow tier too";
  EXPECT_EQ(slow.single_puts, 0);
  EXPECT_EQ(hot.synced_batches, 0);
  EXPECT_EQ(hot.unsynced_batches, 2);
  EXPECT_EQ(hot.single_puts, 0);
  EXPECT_EQ(hot.inner.FindMissing({ds, dr, dl}).value(), (std::vector<Digest>{dr, dl}))
      << "only the blob the slow tier took and that fits is in the hot tier";
  EXPECT_EQ(tiers.Get(ds).value(), small);
}

}  // namespace
}  // namespace assay
