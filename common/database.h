// The one RocksDB database a process keeps, with a column family per kind of data.
#pragma once

#include <array>
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include "absl/status/statusor.h"

namespace assay {

enum class Family : int {
  kDefault = 0,
  kCasMeta,      // digest key -> BlobMeta (chunk id, last access)
  kCasChunks,    // chunk id (8 bytes BE) + index (4 bytes BE) -> bytes
  kActionCache,  // instance + '\0' + digest key -> ActionResult
  kJobs,         // job number (8 bytes BE) -> assay.v1.Job (without tasks)
  kTasks,        // job number + task index (4 bytes BE) -> assay.v1.Task
  kLogs,         // job number + task index + seq (4 bytes BE) -> assay.v1.LogChunk
  kMeta,         // counters and settings
  kCount,
};

class Database {
 public:
  struct Options {
    // Values at least this large go to RocksDB's blob files (integrated BlobDB).
    uint64_t min_blob_size = 64 * 1024;
    size_t block_cache_bytes = 64 << 20;
    // The column families this process uses (empty: all). Families already in the database are
    // opened too (RocksDB requires it), so a database written by another version still opens.
    std::vector<Family> families;
  };
  // What a worker's local cache needs: the CAS, nothing of the coordinator's jobs or action cache.
  static Options CasOnly() {
    Options o;
    o.families = {Family::kDefault, Family::kCasMeta, Family::kCasChunks};
    return o;
  }

  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::filesystem::path& dir, const Options& options);
  static absl::StatusOr<std::unique_ptr<Database>> Open(const std::filesystem::path& dir) {
    return Open(dir, Options());
  }
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  // Null for a family that was not opened.
  rocksdb::ColumnFamilyHandle* cf(Family family) const { return handles_[static_cast<int>(family)]; }
  bool has(Family family) const { return cf(family) != nullptr; }

  // sync: the write is on disk before this returns (use for everything acknowledged).
  absl::Status Write(rocksdb::WriteBatch* batch, bool sync);
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
  // (RequestRestart, common/daemon.h): its main closes the database and opens it again.
  absl::Status TryResume();
  bool needs_reopen() const { return needs_reopen_.load(std::memory_order_acquire); }
  // Gives deleted data's disk space back: flushes every family (so old write-ahead logs go) and
  // compacts [begin, end) of `family` (null: all of it), so files holding only deleted data are
  // removed. Disk I/O: no lock held.
  absl::Status Reclaim(Family family, const std::string* begin, const std::string* end);

 private:
  class ErrorListener;
  Database() = default;
  absl::Status NoteWriteError(const rocksdb::Status& status);
  absl::Status RequestReopen();
  std::filesystem::path dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::array<rocksdb::ColumnFamilyHandle*, static_cast<int>(Family::kCount)> handles_{};
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
