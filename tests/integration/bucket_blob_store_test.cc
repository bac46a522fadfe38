// The CAS in a bucket (BucketBlobStore, and the tiers over it) against a real S3 server: Ceph's
// radosgw on loopback (s3_server.h), one cluster per test process, a bucket of its own per test, and
// a real RocksDB for the index and the hot tier.
#include "common/bucket/bucket_blob_store.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "common/rocksdb/blob_store_stack.h"
#include "tests/integration/s3_test_base.h"

namespace assay {
namespace {

using testing::RandomBytes;
using testing::TestS3Server;

constexpr Family kIndex = static_cast<Family>(3);  // after the CAS's families

Database::Options IndexedOptions() {
  Database::Options options;
  options.family_names.push_back("bucket_index");
  return options;
}

class BucketBlobStoreTest : public testing::S3ServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(start_->ok()) << *start_;
    bucket_ = TestBucket("b-");
    client_ = MakeClient();
    absl::Status created = client_->CreateBucket();
    ASSERT_TRUE(created.ok()) << created;
    ASSERT_NO_FATAL_FAILURE(OpenStore("db"));
  }

  std::unique_ptr<S3Client> MakeClient(absl::Duration overall = absl::Seconds(20)) {
    S3ClientOptions options;
    options.retry.initial_backoff = absl::Milliseconds(50);
    options.retry.max_backoff = absl::Milliseconds(500);
    options.retry.attempt_timeout = absl::Seconds(10);
    options.retry.overall_timeout = overall;
    auto location = ParseS3Location(server_->Location(bucket_, "farm"));
    EXPECT_TRUE(location.ok()) << location.status();
    return std::make_unique<S3Client>(*location, S3Credentials{TestS3Server::kAccessKey, TestS3Server::kSecretKey},
                                      options);
  }

  // A store over a database in `folder` (a new folder: an empty index).
  void OpenStore(const std::string& folder) {
    store_.reset();
    db_.reset();
    auto db = Database::Open(dir_.path() / folder, IndexedOptions());
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
    BucketBlobStore::Options options;
    options.index = kIndex;
    options.part_bytes = 5 << 20;  // S3's smallest part
    options.read_piece_bytes = 1 << 20;
    auto store = BucketBlobStore::Open(client_.get(), db_.get(), &clock_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  Digest PutBlob(const std::string& data) {
    const Digest digest = Digest::OfBytes(data);
    EXPECT_TRUE(store_->Put(digest, data).ok());
    return digest;
  }
  size_t ObjectCount() {
    auto all = client_->ListAllObjects("cas/");
    EXPECT_TRUE(all.ok()) << all.status();
    return all.ok() ? all->size() : 0;
  }

  ScopedTempDir dir_;
  FakeClock clock_;
  std::string bucket_;
  std::unique_ptr<S3Client> client_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<BucketBlobStore> store_;
};


TEST_F(BucketBlobStoreTest, BlobsSmallAndMultipartReadBackWholeAndByRangeAndTheIndexAnswersFindMissing) {
  const std::string small = RandomBytes(100'000, 1);
  const std::string large = RandomBytes((12 << 20) + 7, 2);  // three parts
  const Digest a = PutBlob(small);
  const Digest b = Digest::OfBytes(large);
  auto writer = store_->OpenWrite(b);
  ASSERT_TRUE(writer.ok()) << writer.status();
  for (size_t at = 0; at < large.size(); at += 3 << 20) {
    ASSERT_TRUE((*writer)->Append(absl::string_view(large).substr(at, 3 << 20)).ok());
  }
  ASSERT_TRUE((*writer)->Commit().ok());

  const Digest absent = Digest::OfBytes("never written");
  EXPECT_EQ(store_->FindMissing({a, b, absent}).value(), std::vector<Digest>{absent});
  EXPECT_EQ(store_->stored_bytes(), a.size() + b.size());
  EXPECT_EQ(ObjectCount(), 2u);
  EXPECT_TRUE(store_->Get(a).value() == small);
  EXPECT_TRUE(store_->Get(b).value() == large);
  std::string range;
  ASSERT_TRUE(store_->Read(b, (5 << 20) - 3, (2 << 20) + 10, [&](absl::string_view piece) {
    range.append(piece.data(), piece.size());
    return absl::OkStatus();
  }).ok());
  EXPECT_TRUE(range == large.substr((5 << 20) - 3, (2 << 20) + 10)) << "a range across a part boundary";
  EXPECT_EQ(store_->Get(absent).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(BucketBlobStoreTest, ANewDataFolderOnTheSameBucketRebuildsTheIndexFromAListing) {
  std::vector<Digest> digests;
  for (uint32_t i = 0; i < 5; ++i) digests.push_back(PutBlob(RandomBytes(10'000 + i, 10 + i)));
  ASSERT_TRUE(client_->PutObject("cas/not-a-blob", "x").ok());  // not ours: left alone
  ASSERT_NO_FATAL_FAILURE(OpenStore("db-after-the-disk-was-lost"));
  EXPECT_EQ(store_->rebuilt_blobs(), 5);
  EXPECT_TRUE(store_->FindMissing(digests).value().empty());
  EXPECT_TRUE(store_->Get(digests[3]).value() == RandomBytes(10'003, 13));
  // Once rebuilt, the index is the truth: reopening does not list again.
  ASSERT_NO_FATAL_FAILURE(OpenStore("db-after-the-disk-was-lost"));
  EXPECT_EQ(store_->rebuilt_blobs(), 0);
  EXPECT_EQ(store_->blobs(), 5);
}

TEST_F(BucketBlobStoreTest, AnObjectChangedBehindOurBackIsDataLossNeverServedAndThenMissing) {
  const std::string data = RandomBytes(3 << 20, 3);
  const Digest digest = PutBlob(data);
  std::string changed = data;
  changed[1 << 20] ^= 1;
  ASSERT_TRUE(client_->PutObject(BucketBlobStore::ObjectName(digest), changed).ok());
  int64_t served = 0;
  absl::Status read = store_->Read(digest, 0, 0, [&](absl::string_view piece) {
    served += static_cast<int64_t>(piece.size());
    return absl::OkStatus();
  });
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss) << read;
  EXPECT_TRUE(absl::StrContains(read.message(), "does not match its digest")) << read;
  EXPECT_LT(served, digest.size()) << "the whole blob was never handed on";
  EXPECT_EQ(store_->FindMissing({digest}).value().size(), 1u) << "so that a client uploads it again";
  EXPECT_TRUE(store_->Put(digest, data).ok());
  EXPECT_TRUE(store_->Get(digest).value() == data);
}

TEST_F(BucketBlobStoreTest, EvictionDeletesObjectsInBatchesButNeverAPinnedBlobAndAReuploadSurvives) {
  EvictingBlobStore eviction(store_.get(), EvictingBlobStore::Options{100'000, 0.95, 0.6});
  std::vector<Digest> digests;
  for (uint32_t i = 0; i < 6; ++i) {
    digests.push_back(PutBlob(RandomBytes(30'000, 20 + i)));
    clock_.Advance(absl::Minutes(1));
  }
  eviction.Pin({digests[0]});  // the oldest is a running task's input
  auto dropped = eviction.MaybeEvict();
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(store_->stored_bytes(), 60'000) << "the oldest unpinned went, and the pinned one stayed";
  EXPECT_GT(store_->deletes_queued(), 0u) << "objects go in a batch, after the pass";
  EXPECT_EQ(ObjectCount(), 6u);
  // One of the evicted blobs is written again before its object is deleted: it keeps its object.
  ASSERT_EQ(store_->FindMissing({digests[1]}).value().size(), 1u);
  ASSERT_TRUE(store_->Put(digests[1], RandomBytes(30'000, 21)).ok());
  ASSERT_TRUE(store_->FinishDeletes().ok());
  EXPECT_EQ(store_->deletes_queued(), 0u);
  EXPECT_EQ(ObjectCount(), static_cast<size_t>(store_->blobs()));
  EXPECT_TRUE(store_->FindMissing({digests[0], digests[1], digests[5]}).value().empty());
  EXPECT_TRUE(store_->Get(digests[0]).value() == RandomBytes(30'000, 20)) << "the pinned input is whole";
  EXPECT_TRUE(store_->Get(digests[1]).value() == RandomBytes(30'000, 21));
  eviction.Unpin({digests[0]});
}

TEST_F(BucketBlobStoreTest, AnUnreachableBucketIsUnavailableAndTheStoreRecoversWhenItReturns) {
  client_ = MakeClient(absl::Seconds(2));
  ASSERT_NO_FATAL_FAILURE(OpenStore("db"));
  const Digest before = PutBlob("written before the outage");
  server_->StopGateway();
  const std::string data = "written during the outage";
  absl::Status put = store_->Put(Digest::OfBytes(data), data);
  EXPECT_EQ(put.code(), absl::StatusCode::kUnavailable) << put;
  EXPECT_EQ(store_->FindMissing({Digest::OfBytes(data)}).value().size(), 1u) << "nothing half-stored";
  EXPECT_TRUE(store_->FindMissing({before}).value().empty()) << "the index answers without the bucket";
  EXPECT_EQ(store_->Get(before).status().code(), absl::StatusCode::kUnavailable);
  ASSERT_TRUE(server_->StartGateway().ok());
  EXPECT_TRUE(store_->Put(Digest::OfBytes(data), data).ok());
  EXPECT_TRUE(store_->Get(before).value() == "written before the outage");
}

TEST_F(BucketBlobStoreTest, TheHotTierServesRepeatReadsAndTheBucketStaysTheTruth) {
  auto hot_db = Database::Open(dir_.path() / "hot");
  ASSERT_TRUE(hot_db.ok());
  auto stack = MakeBlobStoreStack(hot_db->get(), &clock_, EvictingBlobStore::Options{1 << 20, 0.95, 0.8});
  ASSERT_TRUE(stack.ok()) << stack.status();
  AddSlowTier(&*stack, std::move(store_), EvictingBlobStore::Options{}, 256 << 10);
  const std::string small = RandomBytes(50'000, 4);
  const std::string big = RandomBytes(600'000, 5);  // above the fill limit: streamed, never kept
  ASSERT_TRUE(stack->store()->Put(Digest::OfBytes(small), small).ok());
  ASSERT_TRUE(stack->store()->Put(Digest::OfBytes(big), big).ok());
  EXPECT_TRUE(stack->storage->FindMissing({Digest::OfBytes(small)}).value().empty()) << "written through";
  EXPECT_EQ(stack->storage->FindMissing({Digest::OfBytes(big)}).value().size(), 1u);
  EXPECT_TRUE(stack->store()->Get(Digest::OfBytes(small)).value() == small);
  EXPECT_TRUE(stack->store()->Get(Digest::OfBytes(big)).value() == big);
  EXPECT_EQ(stack->tiers->hot_hits(), 1);
  EXPECT_EQ(stack->tiers->hot_misses(), 1);
  // A blob the hot tier lost comes back from the bucket, and is kept again.
  ASSERT_TRUE(stack->storage->Delete(Digest::OfBytes(small)).ok());
  EXPECT_TRUE(stack->store()->Get(Digest::OfBytes(small)).value() == small);
  EXPECT_TRUE(stack->storage->FindMissing({Digest::OfBytes(small)}).value().empty());
  // What is missing is the bucket's word.
  const Digest absent = Digest::OfBytes("absent");
  EXPECT_EQ(stack->store()->FindMissing({absent, Digest::OfBytes(big)}).value(), std::vector<Digest>{absent});
}

}  // namespace
}  // namespace assay
