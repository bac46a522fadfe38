// A database on a small disk (a tmpfs the test mounts; needs root, as CI has): the compactions that
// give deleted data's space back wait for room rather than meet a full disk (RocksDB 7.8 aborts
// then), and they give it back even where deleted blobs share a file with live ones; a database
// takes on disk only what it wrote, and a process killed on a nearly full disk opens it again.
#include <sys/wait.h>
#include <unistd.h>

#include <random>

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/metadata.h>
#include <rocksdb/write_batch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/rocksdb/database.h"
#include "tests/integration/tmpfs.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kMiB = 1 << 20;

// A database on a tmpfs of its own whose CAS chunks of 1 KiB and more go to blob files.
class CompactionRoomTest : public ::testing::Test {
 protected:
  void Open(int64_t mib) {
    disk_ = std::make_unique<Tmpfs>(dir_, mib * kMiB);
    ASSERT_TRUE(disk_->mounted()) << disk_->error();
    Database::Options options;
    options.min_blob_size = 1024;
    auto db = Database::Open(dir_ / "db", options);
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = std::move(*db);
  }
  void TearDown() override {
    db_.reset();
    if (disk_ != nullptr) disk_->Unmount();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Blobs `prefix`0 .. `prefix`(n-1), 8 KiB each, in the write buffer: a flush puts them in one file.
  std::vector<std::string> PutChunks(const std::string& prefix, int n) {
    std::vector<std::string> values;
    for (int i = 0; i < n; ++i) {
      values.push_back(RandomBytes(8 * 1024));
      EXPECT_TRUE(db_->Put(Family::kCasChunks, absl::StrCat(prefix, i), values.back(), false).ok());
    }
    return values;
  }
  // `old_chunks` blobs, then `new_chunks` (their bytes returned), in one blob file; then the old ones
  // deleted.
  std::vector<std::string> OneFileThenTheOldDeleted(int old_chunks, int new_chunks) {
    PutChunks("a-old", old_chunks);
    std::vector<std::string> kept = PutChunks("b-new", new_chunks);
    EXPECT_TRUE(db_->db()->Flush(rocksdb::FlushOptions(), db_->cf(Family::kCasChunks)).ok());
    rocksdb::ColumnFamilyMetaData meta;
    db_->db()->GetColumnFamilyMetaData(db_->cf(Family::kCasChunks), &meta);
    EXPECT_EQ(meta.blob_files.size(), 1u) << "one flush, one blob file";
    rocksdb::WriteBatch deletes;
    deletes.DeleteRange(db_->cf(Family::kCasChunks), "a-old", "a-olf");
    EXPECT_TRUE(db_->Write(&deletes, true).ok());
    return kept;
  }
  uint64_t BlobFileBytes() {
    uint64_t bytes = 0;
    db_->db()->GetIntProperty(db_->cf(Family::kCasChunks), "rocksdb.total-blob-file-size", &bytes);
    return bytes;
  }

  const fs::path dir_ = fs::temp_directory_path() / absl::StrCat("assay-compaction-room-", ::getpid());
  std::unique_ptr<Tmpfs> disk_;
  std::unique_ptr<Database> db_;
};

// RocksDB 7.8 (Debian's, built with assertions) aborts the process when a compaction's new file meets
// a full disk (seen in the soak test: CompactionJob::UpdateCompactionJobStats on an output with no
// key). The compaction that gives deleted blobs' space back waits for room instead, and runs once
// there is room.
TEST_F(CompactionRoomTest, GivingSpaceBackOnAFullDiskWaitsForRoomInsteadOfCompacting) {
  ASSERT_NO_FATAL_FAILURE(Open(24));
  std::mt19937_64 random(7);
  std::string value(8 * 1024, '\0');
  for (int i = 0; i < 400; ++i) {  // ~3 MiB of blobs, then deleted: space a compaction gives back
    for (char& c : value) c = static_cast<char>(random());
    ASSERT_TRUE(db_->Put(Family::kCasChunks, absl::StrCat("chunk", i), value, false).ok());
  }
  ASSERT_TRUE(db_->Reclaim(Family::kCasChunks, nullptr, nullptr, 400 * value.size()).ok());  // into files
  rocksdb::WriteBatch deletes;
  deletes.DeleteRange(db_->cf(Family::kCasChunks), "chunk", "chunl");
  ASSERT_TRUE(db_->Write(&deletes, true).ok());

  WriteBallast(dir_ / "filler", FreeBytes(dir_) - 64 * 1024);  // the disk filled to its last 64 KiB
  absl::Status full = db_->Reclaim(Family::kCasChunks, nullptr, nullptr, /*live_blob_bytes=*/0);
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_TRUE(absl::StrContains(full.message(), "compacting the database in")) << full;
  EXPECT_TRUE(absl::StrContains(full.message(), "waits for")) << full;
  EXPECT_FALSE(db_->stopped()) << "nothing was written, so nothing failed";
  uint64_t blob_bytes = 0;
  ASSERT_TRUE(db_->db()->GetIntProperty(db_->cf(Family::kCasChunks), "rocksdb.total-blob-file-size", &blob_bytes));
  EXPECT_GT(blob_bytes, 2 * kMiB) << "the deleted blobs' files are still there";

  fs::remove(dir_ / "filler");  // room again: the same call compacts and the files go
  absl::Status room = db_->Reclaim(Family::kCasChunks, nullptr, nullptr, /*live_blob_bytes=*/0);
  EXPECT_TRUE(room.ok()) << room;
  ASSERT_TRUE(db_->db()->GetIntProperty(db_->cf(Family::kCasChunks), "rocksdb.total-blob-file-size", &blob_bytes));
  EXPECT_LT(blob_bytes, kMiB) << "compacted: files holding only deleted blobs are gone";
}

// A failed upload's chunks are given back by a compaction of their range alone, which moves no live
// blobs: on a nearly full disk it needs room only for the tables of that range, not for the live
// blobs garbage collection of the whole family could move (a large store never has that much free
// once its disk is full, and the failed upload's space would stay owed for good).
TEST_F(CompactionRoomTest, AFailedUploadsRangeIsGivenBackOnANearlyFullDiskBesideALargeStore) {
  ASSERT_NO_FATAL_FAILURE(Open(32));
  std::mt19937_64 random(11);
  std::string value(8 * 1024, '\0');
  auto put = [&](const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      for (char& c : value) c = static_cast<char>(random());
      ASSERT_TRUE(db_->Put(Family::kCasChunks, absl::StrCat(prefix, i), value, false).ok());
    }
    ASSERT_TRUE(db_->db()->Flush(rocksdb::FlushOptions(), db_->cf(Family::kCasChunks)).ok());
  };
  put("a-live", 800);   // ~6 MiB the store keeps
  const std::string last_live = value;  // a-live799's bytes
  put("b-failed", 200);  // ~1.6 MiB of an upload that failed, in blob files of their own
  const uint64_t live = 800 * value.size();
  uint64_t before = 0, after = 0;
  ASSERT_TRUE(db_->db()->GetIntProperty(db_->cf(Family::kCasChunks), "rocksdb.total-blob-file-size", &before));
  rocksdb::WriteBatch deletes;
  deletes.DeleteRange(db_->cf(Family::kCasChunks), "b-failed", "b-failee");
  ASSERT_TRUE(db_->Write(&deletes, true).ok());
  // Flushed now, so that the flush Reclaim begins with frees no write-ahead log's space after the fill.
  ASSERT_TRUE(db_->db()->Flush(rocksdb::FlushOptions(), db_->cf(Family::kCasChunks)).ok());

  WriteBallast(dir_ / "filler", FreeBytes(dir_) - 1024 * 1024);  // 1 MiB left: less than the live blobs a GC moves
  const std::string begin = "b-failed", end = "b-failee";
  absl::Status whole = db_->Reclaim(Family::kCasChunks, nullptr, nullptr, live);
  EXPECT_EQ(whole.code(), absl::StatusCode::kResourceExhausted) << "the whole family would move live blobs: " << whole;
  absl::Status ranged = db_->Reclaim(Family::kCasChunks, &begin, &end, live);
  EXPECT_TRUE(ranged.ok()) << ranged;
  EXPECT_FALSE(db_->stopped());
  ASSERT_TRUE(db_->db()->GetIntProperty(db_->cf(Family::kCasChunks), "rocksdb.total-blob-file-size", &after));
  EXPECT_LT(after + kMiB, before) << "the failed upload's blob files are gone (" << before << " -> " << after << ")";
  auto kept = db_->Get(Family::kCasChunks, "a-live799");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_TRUE(*kept == last_live) << "the live blobs are still read";
  EXPECT_EQ(db_->Get(Family::kCasChunks, "b-failed0").status().code(), absl::StatusCode::kNotFound);
}

// A flush writes every value in its write buffer to one blob file, so the oldest blobs, which
// eviction deletes first, share a file with newer ones; RocksDB's garbage collection moves only the
// live blobs of the oldest quarter of the files, none where there are fewer than four. Giving the
// deleted blobs' space back moves the live ones out, where the disk has room to write them
// (DiskTest.EvictionFreesSpaceWhenTheDiskIsLowWithoutAByteBudget failed in CI so: a flush between
// its uploads put three blobs in one file, and eviction, seeing no space come back, dropped all four).
TEST_F(CompactionRoomTest, DeletedBlobsBesideLiveOnesInAFileAreGivenBackByMovingTheLiveOnes) {
  ASSERT_NO_FATAL_FAILURE(Open(32));
  const std::vector<std::string> kept = OneFileThenTheOldDeleted(300, 100);  // 2.4 MiB deleted, 0.8 kept
  const uint64_t before = BlobFileBytes();
  const int64_t free_before = FreeBytes(dir_);

  absl::Status given_back = db_->Reclaim(Family::kCasChunks, nullptr, nullptr, kept.size() * 8 * 1024);
  ASSERT_TRUE(given_back.ok()) << given_back;
  const uint64_t after = BlobFileBytes();
  EXPECT_LT(after, kMiB) << "only the live 0.8 MiB stay in blob files (" << before << " -> " << after << ")";
  EXPECT_GT(FreeBytes(dir_), free_before + 2 * kMiB) << "and the disk has the 2.4 MiB back";
  for (size_t i = 0; i < kept.size(); ++i) {
    auto value = db_->Get(Family::kCasChunks, absl::StrCat("b-new", i));
    ASSERT_TRUE(value.ok()) << i << ": " << value.status();
    EXPECT_TRUE(*value == kept[i]) << "moved blob " << i << " reads as written";
  }
}

// Moving live blobs writes them again first: without room for that the deleted ones' space stays
// owed (nothing fails, nothing stops), and the move happens once there is room.
TEST_F(CompactionRoomTest, LiveBlobsAreMovedOnlyWhenTheDiskHasRoomForThem) {
  ASSERT_NO_FATAL_FAILURE(Open(32));
  OneFileThenTheOldDeleted(100, 300);  // 0.8 MiB deleted, 2.4 MiB live
  const uint64_t before = BlobFileBytes();

  // 1.5 MiB free: room for the compaction that counts the deleted blobs, not to move 2.4 MiB.
  WriteBallast(dir_ / "filler", FreeBytes(dir_) - 3 * kMiB / 2);
  absl::Status no_room = db_->Reclaim(Family::kCasChunks, nullptr, nullptr, 300 * 8 * 1024);
  EXPECT_TRUE(no_room.ok()) << no_room;
  EXPECT_FALSE(db_->stopped()) << "nothing met a full disk";
  EXPECT_EQ(BlobFileBytes(), before) << "nothing moved";

  fs::remove(dir_ / "filler");
  ASSERT_TRUE(db_->Reclaim(Family::kCasChunks, nullptr, nullptr, 300 * 8 * 1024).ok());
  EXPECT_LT(BlobFileBytes() + kMiB / 4, before) << "moved once there was room";
  EXPECT_TRUE(db_->Get(Family::kCasChunks, "b-new299").ok());
}

// Nor are they moved to give back much less than they are: a few deleted blobs in a file of live
// ones stay until more of it is deleted (no more than 4 bytes written per byte given back).
TEST_F(CompactionRoomTest, AFewDeletedBlobsAmongManyLiveOnesAreNotWorthMovingThem) {
  ASSERT_NO_FATAL_FAILURE(Open(32));
  OneFileThenTheOldDeleted(10, 300);  // 80 KiB deleted, 2.4 MiB live
  const uint64_t before = BlobFileBytes();
  ASSERT_TRUE(db_->Reclaim(Family::kCasChunks, nullptr, nullptr, 300 * 8 * 1024).ok());
  EXPECT_EQ(BlobFileBytes(), before) << "2.4 MiB are not rewritten for 80 KiB";
}

// A process that wrote `values` (each `bytes` long) to the default family and was killed before its
// database was closed (it ends with _exit, as a SIGKILL would): its changes are in the write-ahead
// log only. Then a value of `last_bytes` under "last", if any. 0 when it wrote them all.
int KilledAfterWriting(const fs::path& db_dir, int values, int64_t bytes, int64_t last_bytes = 0) {
  const pid_t child = ::fork();
  if (child == 0) {
    auto db = Database::Open(db_dir);
    if (!db.ok()) ::_exit(2);
    for (int i = 0; i < values; ++i) {
      if (!(*db)->Put(Family::kDefault, absl::StrCat("key", i), RandomBytes(bytes), /*sync=*/true).ok()) ::_exit(3);
    }
    if (last_bytes > 0 && !(*db)->Put(Family::kDefault, "last", RandomBytes(last_bytes), /*sync=*/true).ok()) ::_exit(4);
    ::_exit(0);
  }
  int status = 0;
  if (child < 0 || ::waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// RocksDB reserves (fallocate) a write buffer and a tenth for each new write-ahead log, 70 MiB with
// the default buffers, and 4 MiB for each manifest: space counted as used against --min-free-disk
// whatever the files hold, and left reserved by a killed process until its logs go.
TEST(DatabaseDiskUseTest, AKilledProcessLeavesOnDiskWhatItWroteAndNothingReservedBeyond) {
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("assay-db-disk-use-", ::getpid());
  Tmpfs disk(dir, 96 * kMiB);
  ASSERT_TRUE(disk.mounted()) << disk.error();
  const int64_t free_before = FreeBytes(dir);
  ASSERT_EQ(KilledAfterWriting(dir / "db", 8, 256 * 1024), 0);  // 2 MiB
  const int64_t used = free_before - FreeBytes(dir);
  EXPECT_LT(used, 3 * kMiB) << "2 MiB written take " << (used >> 20) << " MiB of the disk";
  auto db = Database::Open(dir / "db");
  ASSERT_TRUE(db.ok()) << db.status();
  for (int i = 0; i < 8; ++i) EXPECT_TRUE((*db)->Get(Family::kDefault, absl::StrCat("key", i)).ok()) << i;
  db->reset();
  disk.Unmount();
  fs::remove_all(dir);
}

// The newest write-ahead log in `db_dir`.
fs::path NewestLog(const fs::path& db_dir) {
  fs::path newest;
  for (const auto& entry : fs::directory_iterator(db_dir)) {
    if (entry.path().extension() == ".log" && (newest.empty() || entry.path().filename() > newest.filename())) {
      newest = entry.path();
    }
  }
  return newest;
}

// Opening replays the write-ahead logs into tables; a process killed on a nearly full disk may leave
// more there than the disk has free. It still starts, keeping them in the logs, and writes them to
// tables once there is room. A log kept so may end in a record torn by the kill: what the process
// writes after it, in a log of its own, is read at the next start all the same.
TEST(DatabaseDiskUseTest, AProcessKilledOnANearlyFullDiskStartsAgainAndWritesItsLogsToTablesOnceThereIsRoom) {
  const fs::path dir = fs::temp_directory_path() / absl::StrCat("assay-db-full-start-", ::getpid());
  Tmpfs disk(dir, 40 * kMiB);
  ASSERT_TRUE(disk.mounted()) << disk.error();
  ASSERT_EQ(KilledAfterWriting(dir / "db", 32, 256 * 1024, /*last_bytes=*/64 * 1024), 0);  // 8 MiB, in the log only
  const fs::path log = NewestLog(dir / "db");
  ASSERT_FALSE(log.empty());
  fs::resize_file(log, fs::file_size(log) - 1024);  // the last record torn, as by a kill mid-write
  WriteBallast(dir / "filler", FreeBytes(dir) - 2 * kMiB);  // 2 MiB left: less than the log holds

  auto db = Database::Open(dir / "db");
  ASSERT_TRUE(db.ok()) << "a process killed on a nearly full disk must start again: " << db.status();
  for (int i = 0; i < 32; ++i) EXPECT_TRUE((*db)->Get(Family::kDefault, absl::StrCat("key", i)).ok()) << i;
  EXPECT_EQ((*db)->Get(Family::kDefault, "last").status().code(), absl::StatusCode::kNotFound) << "torn: never acknowledged";
  EXPECT_TRUE((*db)->Put(Family::kDefault, "after", "a small write", /*sync=*/true).ok()) << "it takes writes";
  std::vector<rocksdb::LiveFileMetaData> tables;
  (*db)->db()->GetLiveFilesMetaData(&tables);
  EXPECT_TRUE(tables.empty()) << "opening wrote no table on the full disk";
  db->reset();  // "after" is in a new log, behind the torn one

  auto still_full = Database::Open(dir / "db");
  ASSERT_TRUE(still_full.ok()) << still_full.status();
  EXPECT_TRUE((*still_full)->Get(Family::kDefault, "after").ok()) << "the replay goes past the torn record";
  fs::remove(dir / "filler");  // room again: a flush writes the logs' changes to tables
  ASSERT_TRUE((*still_full)->Reclaim(Family::kDefault, nullptr, nullptr).ok());
  (*still_full)->db()->GetLiveFilesMetaData(&tables);
  EXPECT_FALSE(tables.empty());
  still_full->reset();
  auto again = Database::Open(dir / "db");
  ASSERT_TRUE(again.ok()) << again.status();
  for (int i = 0; i < 32; ++i) EXPECT_TRUE((*again)->Get(Family::kDefault, absl::StrCat("key", i)).ok()) << i;
  EXPECT_TRUE((*again)->Get(Family::kDefault, "after").ok());
  again->reset();
  disk.Unmount();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace assay::testing
