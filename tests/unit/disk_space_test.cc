// Disk space as a resource: the reserve (--min-free-disk), its cached readings, and what the blob
// stores do with it (refuse, evict), against a file system whose free space the test sets.
#include "common/cas/disk_space.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "common/cas/evicting_blob_store.h"
#include "common/cas/memory_blob_store.h"
#include "common/rocksdb/blob_store_stack.h"

namespace assay {
namespace {

// A file system whose free space the test sets; counts how often it is read. With `holds`, that
// store's blobs take their size of it (`free` is then what the disk has without them).
struct FakeDisk {
  int64_t free = 100 << 20;
  int64_t total = 1000 << 20;
  int reads = 0;
  const RocksDbBlobStore* holds = nullptr;
  DiskProbe probe() {
    return [this](const std::filesystem::path&) -> absl::StatusOr<DiskFree> {
      ++reads;
      return DiskFree{free - (holds != nullptr ? holds->stored_bytes() : 0), total};
    };
  }
};

DiskReserve::Options Reserve(const std::string& text) {
  DiskReserve::Options o;
  o.store = "test CAS";
  o.dir = "/data";
  o.min_free = ParseMinFreeDisk(text).value();
  return o;
}

TEST(MinFreeDiskTest, ParsesSizesPercentagesAndZero) {
  EXPECT_EQ(ParseMinFreeDisk("2GiB")->bytes, int64_t{2} << 30);
  EXPECT_EQ(ParseMinFreeDisk("512MB")->bytes, 512'000'000);
  EXPECT_EQ(ParseMinFreeDisk("0")->BytesOf(1 << 30), 0);
  EXPECT_EQ(ParseMinFreeDisk("5%")->BytesOf(1000), 50);
  EXPECT_EQ(ParseMinFreeDisk(" 12.5% ")->BytesOf(1000), 125);
}

TEST(MinFreeDiskTest, RefusesWhatIsNeitherASizeNorAPercentageNamingTheFlagAndTheValue) {
  for (const char* bad : {"", "lots", "5 furlongs", "100%", "-3%", "x%"}) {
    auto parsed = ParseMinFreeDisk(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(absl::StrContains(parsed.status().message(), "--min-free-disk")) << parsed.status();
  }
}

TEST(DiskReserveTest, RefusesAWriteThatWouldCrossTheReserveNamingStoreFreeSpaceAndFlag) {
  FakeDisk disk;
  FakeClock clock;
  disk.free = 60 << 20;
  DiskReserve reserve(Reserve("5%"), &clock, disk.probe());  // 50 MiB of 1000
  EXPECT_TRUE(reserve.Check(10 << 20).ok());
  absl::Status refused = reserve.Check(11 << 20);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  for (const char* part : {"test CAS", "/data", "60 MiB free now", "50 MiB", "--min-free-disk 5%"}) {
    EXPECT_TRUE(absl::StrContains(refused.message(), part)) << part << " not in: " << refused.message();
  }
}

TEST(DiskReserveTest, ReadsTheFileSystemOncePerIntervalNotOncePerWrite) {
  FakeDisk disk;
  FakeClock clock;
  DiskReserve reserve(Reserve("10MiB"), &clock, disk.probe());
  const int after_start = disk.reads;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(reserve.Check(1024).ok());
    reserve.Wrote(1024);
  }
  EXPECT_EQ(disk.reads, after_start) << "no statvfs per write within the interval";
  clock.Advance(reserve.options().refresh);
  ASSERT_TRUE(reserve.Check(1024).ok());
  EXPECT_EQ(disk.reads, after_start + 1);
}

TEST(DiskReserveTest, CountsBytesWrittenSinceTheLastReading) {
  FakeDisk disk;
  FakeClock clock;
  disk.free = 30 << 20;
  DiskReserve reserve(Reserve("10MiB"), &clock, disk.probe());
  // The file system is not read again within the interval, but what was written is counted.
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(reserve.Check(1 << 20).ok()) << i;
    reserve.Wrote(1 << 20);
    disk.free -= 1 << 20;
  }
  EXPECT_EQ(reserve.free_bytes(), 10 << 20);
  EXPECT_EQ(reserve.Check(1 << 20).code(), absl::StatusCode::kResourceExhausted);
}

TEST(DiskReserveTest, ReadsAgainBeforeRefusingSoFreedSpaceCountsAtOnce) {
  FakeDisk disk;
  FakeClock clock;
  disk.free = 11 << 20;
  DiskReserve reserve(Reserve("10MiB"), &clock, disk.probe());
  ASSERT_FALSE(reserve.Check(2 << 20).ok());
  disk.free = 40 << 20;  // someone freed space; no time has passed
  EXPECT_TRUE(reserve.Check(2 << 20).ok());
}

TEST(DiskReserveTest, IsLowBelowTwiceTheReserveAndNeverWithoutOne) {
  FakeDisk disk;
  FakeClock clock;
  disk.free = 25 << 20;
  DiskReserve reserve(Reserve("10MiB"), &clock, disk.probe());
  EXPECT_FALSE(reserve.Low());
  disk.free = 19 << 20;
  clock.Advance(reserve.options().refresh);
  EXPECT_TRUE(reserve.Low());
  disk.free = 0;
  DiskReserve none(Reserve("0"), &clock, disk.probe());
  EXPECT_FALSE(none.Low());
  EXPECT_TRUE(none.Check(1 << 30).ok()) << "no reserve: the file system's own limit applies";
}

class ReserveStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = Database::Open(dir_.path() / "db").value();
    storage_ = RocksDbBlobStore::Create(db_.get(), &clock_).value();
    reserve_ = std::make_unique<DiskReserve>(Reserve("10MiB"), &clock_, disk_.probe());
    storage_->set_disk_reserve(reserve_.get());
  }
  ScopedTempDir dir_;
  FakeClock clock_;
  FakeDisk disk_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<DiskReserve> reserve_;
  std::unique_ptr<RocksDbBlobStore> storage_;
};

TEST_F(ReserveStoreTest, AnUploadThatWouldCrossTheReserveIsRefusedBeforeItsFirstByteAndStoresNothing) {
  disk_.free = 12 << 20;
  reserve_->Refresh();
  const std::string big(3 << 20, 'b');
  const Digest digest = Digest::OfBytes(big);
  auto writer = storage_->OpenWrite(digest);
  ASSERT_FALSE(writer.ok());
  EXPECT_EQ(writer.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(storage_->Put(digest, big).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(storage_->stats().blobs, 0);
  // A small one still fits.
  EXPECT_TRUE(storage_->Put(Digest::OfBytes("small"), "small").ok());
}

TEST_F(ReserveStoreTest, EvictionRunsWhenTheDiskIsLowEvenWithinTheByteBudget) {
  EvictingBlobStore eviction(storage_.get(), EvictingBlobStore::Options{int64_t{1} << 40, 0.95, 0.8});
  std::vector<Digest> digests;
  for (int i = 0; i < 4; ++i) {
    const std::string data(1 << 20, static_cast<char>('a' + i));
    digests.push_back(Digest::OfBytes(data));
    ASSERT_TRUE(eviction.Put(digests.back(), data).ok());
    clock_.Advance(absl::Minutes(2));
  }
  ASSERT_EQ(eviction.evicted_blobs(), 0) << "plenty of space so far";
  // The disk fills up (something else wrote): 2 MiB short of twice the 10 MiB reserve.
  disk_.free = 18 << 20;
  clock_.Advance(reserve_->options().refresh);
  auto dropped = eviction.MaybeEvict();
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, 2 << 20);
  EXPECT_EQ(eviction.evicted_blobs(), 2);
  // The oldest went first.
  EXPECT_EQ(storage_->FindMissing(digests).value(), (std::vector<Digest>{digests[0], digests[1]}));
}

TEST_F(ReserveStoreTest, AnUploadTheReserveWouldRefuseIsTakenWhenDroppingOlderBlobsMakesRoom) {
  // 30 MiB for the store and a 5 MiB reserve (eviction for space begins below 10 MiB free).
  disk_.free = 30 << 20;
  disk_.holds = storage_.get();
  reserve_ = std::make_unique<DiskReserve>(Reserve("5MiB"), &clock_, disk_.probe());
  storage_->set_disk_reserve(reserve_.get());
  EvictingBlobStore eviction(storage_.get(), EvictingBlobStore::Options{int64_t{1} << 40, 0.95, 0.8});
  std::vector<Digest> old;
  for (int i = 0; i < 4; ++i) {
    const std::string data(4 << 20, static_cast<char>('a' + i));
    old.push_back(Digest::OfBytes(data));
    ASSERT_TRUE(eviction.Put(old.back(), data).ok());
    clock_.Advance(absl::Minutes(2));
  }
  ASSERT_EQ(eviction.evicted_blobs(), 0) << "14 MiB free: not low yet";

  // 10 MiB more would leave 4 MiB, below the reserve: the oldest blob goes and the upload is taken.
  const std::string big(10 << 20, 'n');
  auto writer = eviction.OpenWrite(Digest::OfBytes(big));
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->Append(big).ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ(storage_->FindMissing({old[0]}).value().size(), 1u) << "the oldest made room";
  EXPECT_TRUE(storage_->FindMissing({old[3], Digest::OfBytes(big)}).value().empty()) << "the newest stay";
  const int64_t evicted = eviction.evicted_blobs();

  // A blob larger than all the store holds cannot be made room for: refused, and nothing dropped.
  const std::string huge(40 << 20, 'h');
  EXPECT_EQ(eviction.Put(Digest::OfBytes(huge), huge).code(), absl::StatusCode::kResourceExhausted);
  auto refused = eviction.OpenWrite(Digest::OfBytes(huge));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(eviction.evicted_blobs(), evicted);
}

TEST_F(ReserveStoreTest, AFailedUploadsChunksAreDroppedAndTheirFilesDeleted) {
  auto blob_file_bytes = [&] {
    uint64_t bytes = 0;
    EXPECT_TRUE(db_->db()->GetIntProperty(db_->cf(Family::kCasChunks), "rocksdb.live-blob-file-size", &bytes));
    return bytes;
  };
  {
    const std::string part(2 << 20, 'p');
    auto writer = storage_->OpenWrite(Digest::OfBytes(part + "more"));
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Append(part).ok());
    ASSERT_TRUE(db_->db()->Flush(rocksdb::FlushOptions(), db_->cf(Family::kCasChunks)).ok());
    ASSERT_GE(blob_file_bytes(), uint64_t{2} << 20) << "the chunks are on disk";
  }  // abandoned: the upload failed
  EXPECT_TRUE(storage_->reclaim_pending());
  auto reclaimed = storage_->ReclaimSpace();
  ASSERT_TRUE(reclaimed.ok()) << reclaimed.status();
  EXPECT_EQ(*reclaimed, 1);
  EXPECT_FALSE(storage_->reclaim_pending());
  EXPECT_EQ(blob_file_bytes(), 0u) << "the failed upload's blob files are deleted";
}

// A store whose deleted blobs hold their disk space until it is given back, which the test can make
// fail (as a compaction on a disk too full for it does).
class SlowToFreeStore : public EvictableBlobStore {
 public:
  explicit SlowToFreeStore(DiskReserve* reserve) : reserve_(reserve) {}
  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& d) override { return mem_.FindMissing(d); }
  absl::StatusOr<std::string> Get(const Digest& d) override { return mem_.Get(d); }
  absl::Status Read(const Digest& d, int64_t o, int64_t l, const ChunkSink& sink) override { return mem_.Read(d, o, l, sink); }
  absl::Status Put(const Digest& d, absl::string_view data) override { return mem_.Put(d, data); }
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenWrite(const Digest& d) override { return mem_.OpenWrite(d); }
  absl::Status ForEachByAge(const AgeVisitor& visit) override { return mem_.ForEachByAge(visit); }
  absl::Status Touch(const Digest& d) override { return mem_.Touch(d); }
  int64_t stored_bytes() const override { return mem_.stored_bytes(); }
  int64_t stored_blobs() const override { return mem_.stored_blobs(); }
  DiskReserve* disk_reserve() const override { return reserve_; }
  absl::Status Delete(const Digest& d) override {
    absl::Status s = mem_.Delete(d);
    if (s.ok()) garbage += d.size();
    return s;
  }
  absl::Status GiveBackDeletedSpace() override {
    ++give_backs;
    if (fail_give_back) return absl::ResourceExhaustedError("compacting: no space left on device");
    if (!late_give_back) garbage = 0;
    return absl::OkStatus();
  }
  int64_t garbage = 0;  // deleted, its space not yet given back
  bool fail_give_back = false;
  bool late_give_back = false;  // the space comes back after the give-back, when the test clears `garbage`
  int give_backs = 0;

 private:
  MemoryBlobStore mem_;
  DiskReserve* reserve_;
};

// A 30 MiB disk with a 10 MiB reserve (eviction below 20 MiB free) holding four 2 MiB blobs of a
// SlowToFreeStore: what the disk has free is 30 MiB less the blobs and the deleted bytes not given
// back yet.
class DiskEvictionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 4; ++i) {
      const std::string data(2 << 20, static_cast<char>('a' + i));
      digests.push_back(Digest::OfBytes(data));
      ASSERT_TRUE(eviction.Put(digests.back(), data).ok());
    }
    ASSERT_EQ(eviction.evicted_blobs(), 0) << "22 MiB free";
  }
  FakeClock clock;
  FakeDisk disk = [] {
    FakeDisk d;
    d.free = 30 << 20;
    return d;
  }();
  SlowToFreeStore* held = nullptr;
  DiskReserve reserve{Reserve("10MiB"), &clock, [this](const std::filesystem::path&) -> absl::StatusOr<DiskFree> {
                        return DiskFree{disk.free - (held == nullptr ? 0 : held->stored_bytes() + held->garbage),
                                        disk.total};
                      }};
  std::unique_ptr<SlowToFreeStore> store = [this] {
    auto made = std::make_unique<SlowToFreeStore>(&reserve);
    held = made.get();
    return made;
  }();
  EvictingBlobStore eviction{store.get(), EvictingBlobStore::Options{}};
  std::vector<Digest> digests;
};

TEST_F(DiskEvictionTest, SpaceAFailedCompactionOwesIsGivenBackBeforeNewerBlobsAreEvicted) {

  // Something else takes 6 MiB: 4 MiB short. The oldest two go, but their compaction fails, so
  // the disk still reads 4 MiB short.
  disk.free -= 6 << 20;
  store->fail_give_back = true;
  clock.Advance(reserve.options().refresh);
  EXPECT_FALSE(eviction.MaybeEvict().ok());
  EXPECT_EQ(eviction.evicted_blobs(), 2);
  reserve.Refresh();
  ASSERT_EQ(reserve.free_bytes(), 16 << 20);

  // The next pass gives that space back first, and then nothing is short: the newer two stay.
  store->fail_give_back = false;
  clock.Advance(reserve.options().refresh);
  auto dropped = eviction.MaybeEvict();
  ASSERT_TRUE(dropped.ok()) << dropped.status();
  EXPECT_EQ(*dropped, 0);
  EXPECT_EQ(eviction.evicted_blobs(), 2);
  EXPECT_EQ(store->give_backs, 2);
  EXPECT_EQ(store->FindMissing(digests).value(), (std::vector<Digest>{digests[0], digests[1]}));
  EXPECT_EQ(reserve.free_bytes(), 20 << 20);
}

TEST_F(DiskEvictionTest, SpaceThatComesBackLateIsWaitedForInsteadOfEvictingNewerBlobs) {
  store->late_give_back = true;  // as RocksDB: a compacted blob file goes once no reader holds it
  auto pass = [&] {
    clock.Advance(reserve.options().refresh);
    auto dropped = eviction.MaybeEvict();
    EXPECT_TRUE(dropped.ok()) << dropped.status();
    return dropped.value_or(-1);
  };
  // Something else takes 4 MiB: 2 MiB short. The oldest goes; the disk does not show it yet.
  disk.free -= 4 << 20;
  EXPECT_EQ(pass(), 2 << 20);
  EXPECT_EQ(reserve.free_bytes(), 18 << 20);
  // Passes meanwhile wait for it rather than drop newer blobs for space already on its way.
  EXPECT_EQ(pass(), 0);
  EXPECT_EQ(pass(), 0);
  store->garbage = 0;  // it comes back
  EXPECT_EQ(pass(), 0);
  EXPECT_EQ(store->FindMissing(digests).value(), (std::vector<Digest>{digests[0]}));

  // Short again: the next oldest goes. Space that does not come back within kAwaitSpaceFor (taken
  // by other writes, or held longer) is no longer counted on: the next pass evicts for it.
  disk.free -= 2 << 20;
  EXPECT_EQ(pass(), 2 << 20);
  EXPECT_EQ(pass(), 0);
  clock.Advance(EvictingBlobStore::kAwaitSpaceFor);
  EXPECT_EQ(pass(), 2 << 20);
  EXPECT_EQ(store->FindMissing(digests).value(), (std::vector<Digest>{digests[0], digests[1], digests[2]}));
  EXPECT_EQ(eviction.evicted_blobs(), 3);
}

}  // namespace
}  // namespace assay
