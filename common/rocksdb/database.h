// The one RocksDB database a process keeps, with a column family per kind of data.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "absl/status/statusor.h"

namespace assay {

// A column family: its index in the table of names the database is opened with
// (Database::Options::family_names). Every process's table starts with the CAS's families, listed
// here; the coordinator adds its own after them (coordinator/families.h).
enum class Family : int {
  kDefault = 0,
  kCasMeta,    // digest key -> BlobMeta (chunk id, last access)
  kCasChunks,  // chunk id (8 bytes BE) + index (4 bytes BE) -> bytes
};

// The names of the CAS's families, in Family order: the table of a process that only keeps blobs.
std::vector<std::string> CasFamilyNames();

// The write buffer of the CAS's chunks (two at most): a flush writes one out to a new file while
// its write-ahead log still holds the same bytes, so it needs that much free space.
inline constexpr int64_t kCasWriteBufferBytes = 16 << 20;
inline constexpr int kCasWriteBuffers = 2;

class Database {
 public:
  struct Options {
    // Values at least this large go to RocksDB's blob files (integrated BlobDB).
    uint64_t min_blob_size = 64 * 1024;
    size_t block_cache_bytes = 64 << 20;
    // The process's column families, by Family index. Families already in the database that are
    // not in it are opened too (RocksDB requires it), so a database written by another program
    // still opens; they have no Family.
    std::vector<std::string> family_names = CasFamilyNames();
    // The families of the table this process uses (empty: all).
    std::vector<Family> families;
  };
  // What a worker's local cache needs: the CAS, nothing of the coordinator's jobs or action cache.
  static Options CasOnly() { return Options(); }

  // Opening replays the write-ahead logs and writes their changes into tables. When the disk has no
  // room for them (a process killed on a nearly full disk), it opens again keeping the changes in
  // the logs and writing nothing, with a warning; they go to tables at the next flush.
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::filesystem::path& dir, const Options& options);
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::filesystem::path& dir) {
    return Open(dir, Options());
  }
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  // Null for a family that was not opened.
  rocksdb::ColumnFamilyHandle* cf(Family family) const {
    const auto i = static_cast<size_t>(family);
    return i < known_families_ ? handles_[i] : nullptr;
  }
  bool has(Family family) const { return cf(family) != nullptr; }
  // The names of every family opened, with those opened only because they exist.
  std::vector<std::string> opened_family_names() const;

  // sync: the write is on disk before this returns (use for everything acknowledged).
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync);
  // Writes made with `sync` since the database was opened (each one fsync of its log).
  uint64_t synced_writes() const { return synced_writes_.load(std::memory_order_relaxed); }
  // NotFound when the key is absent.
  absl::StatusOr<std::string> Get(Family family, absl::string_view key) const;
  absl::Status Put(Family family, absl::string_view key, absl::string_view value, bool sync);

  const std::filesystem::path& dir() const { return dir_; }

  // After a write error from a full disk RocksDB stops taking writes (its background-error state)
  // until resumed; reads go on. `stopped()` says so (a write failed with no space, or RocksDB
  // reported a background error); TryResume, called periodically by the blob store's maintenance
  // thread, resumes it once space is back: no restart needed.
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  // Resumes a stopped database; OK if it was not stopped or resumed now. Disk I/O (it flushes):
  // call it with no lock held.
  // A failed write to the write-ahead log cannot be resumed in place: RocksDB 7.8 (Debian's) keeps
  // the failed log file and aborts the process at the next write to it (fixed upstream in 9.x,
  // facebook/rocksdb#12448). Then `needs_reopen()`, and once the disk has room for the reopening
  // (the logs to replay plus 4 MiB) TryResume asks the process to restart in place
  // (RequestRestart, common/base/daemon.h): its main closes the database and opens it again.
  absl::Status TryResume();
  bool needs_reopen() const { return needs_reopen_.load(std::memory_order_acquire); }
  // Gives deleted data's disk space back: flushes every family (so old write-ahead logs go) and
  // compacts [begin, end) of `family` (null: all of it), so files holding only deleted data are
  // removed. Disk I/O: no lock held.
  // The compaction is not started while the disk has less free space than it may write, plus 256 KiB:
  // for the whole family its tables, and the live blobs of a quarter of its blob files that garbage
  // collection moves (`live_blob_bytes` is what the caller knows is still stored); for a range only
  // the tables overlapping it, since a range's compaction collects no blob garbage (a blob file
  // whose blobs are all deleted goes without it). RocksDB 7.8 (Debian's, built with assertions)
  // aborts the process when a compaction's new file meets a full disk
  // (CompactionJob::UpdateCompactionJobStats on an output with no key). Then RESOURCE_EXHAUSTED,
  // and the space stays owed until the next try.
  // For the whole family, deleted blobs that share a blob file with live ones are given back too, by
  // moving the live ones as far as the disk has room (CollectBlobGarbage).
  absl::Status Reclaim(Family family, const std::string* begin, const std::string* end,
                       uint64_t live_blob_bytes = std::numeric_limits<uint64_t>::max());

 private:
  class ErrorListener;
  Database() = default;
  // keep_logs: the write-ahead logs' changes are replayed into the write buffers (made large enough
  // to hold them) and left in the logs, so opening writes no table.
  static absl::StatusOr<std::unique_ptr<Database>> OpenOnce(const std::filesystem::path& dir, const Options& options,
                                                            bool keep_logs);
  void RestoreWriteBuffers();  // the write buffers' usual sizes again, after OpenOnce(keep_logs)
  absl::Status NoteWriteError(const rocksdb::Status& status);
  absl::Status CheckRoomToCompact(Family family, const std::string* begin, const std::string* end,
                                  uint64_t live_blob_bytes) const;
  // A blob file's deleted blobs free no disk while live ones share it: a flush writes all the values
  // in its write buffer to one file, and RocksDB's garbage collection moves the live blobs only of
  // the oldest quarter of the files (of none where there are fewer than four). After a compaction
  // has counted the deleted ones, this moves the live blobs of the oldest files up to the newest one
  // holding deleted blobs, as many files as the disk has room to write their live blobs and the
  // family's tables again, and as long as no more than kMaxBlobBytesMovedPerByteFreed live bytes are
  // written per deleted byte given back; the files then go. Nothing to move, or no room: OK, nothing
  // done.
  absl::Status CollectBlobGarbage(Family family);
  static constexpr uint64_t kMaxBlobBytesMovedPerByteFreed = 4;
  // Bytes of the family's table files a compaction of [begin, end) reads: those overlapping it, and
  // those overlapping what they span in turn.
  uint64_t TableBytesOverlapping(Family family, const std::string& begin, const std::string& end) const;
  absl::Status RequestReopen();
  std::filesystem::path dir_;
  std::unique_ptr<rocksdb::DB> db_;
  // By Family index (null: not opened), then the families opened only because they exist.
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  size_t known_families_ = 0;  // handles_[0, known_families_) are by Family index
  std::atomic<uint64_t> synced_writes_{0};
  std::atomic<bool> stopped_{false};       // RocksDB is in its background-error state
  std::atomic<bool> resuming_{false};       // one try at a time; other writers do not wait
  std::atomic<bool> needs_reopen_{false};   // a write-ahead log write failed: only a reopen clears it
};

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view context);

// Big-endian fixed-width encodings so keys sort numerically.
std::string EncodeU64(uint64_t v);
std::string EncodeU32(uint32_t v);
uint64_t DecodeU64(absl::string_view s);
uint32_t DecodeU32(absl::string_view s);

}  // namespace assay
