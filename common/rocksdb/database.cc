#include "common/rocksdb/database.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/listener.h>
#include <rocksdb/metadata.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <optional>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/byte_size.h"
#include "common/base/daemon.h"
#include "common/base/file_util.h"

namespace assay {
namespace {

// RocksDB's own diagnostics go to spdlog, not to a LOG file beside the data: a LOG file that once
// failed on a full disk makes RocksDB 7.8 (Debian's, built with assertions) abort the process at its
// next line (`WritableFileWriter::AssertFalseAndGetStatusForPrevError`, from a flush job's report).
// Its chatty INFO lines are spdlog's debug level; warnings and errors stay warnings and errors.
class SpdlogRocksLogger final : public rocksdb::Logger {
 public:
  explicit SpdlogRocksLogger(rocksdb::InfoLogLevel level) : rocksdb::Logger(level) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char line[1024];
    va_list copy;
    va_copy(copy, ap);
    const int n = std::vsnprintf(line, sizeof(line), format, copy);
    va_end(copy);
    if (n < 0) return;
    spdlog::log(SpdlogLevel(level), "rocksdb: {}", std::string_view(line, std::min<size_t>(static_cast<size_t>(n), sizeof(line) - 1)));
  }

 private:
  static spdlog::level::level_enum SpdlogLevel(rocksdb::InfoLogLevel level) {
    switch (level) {
      case rocksdb::InfoLogLevel::DEBUG_LEVEL:
        return spdlog::level::trace;
      case rocksdb::InfoLogLevel::INFO_LEVEL:
      case rocksdb::InfoLogLevel::HEADER_LEVEL:
        return spdlog::level::debug;
      case rocksdb::InfoLogLevel::WARN_LEVEL:
        return spdlog::level::warn;
      default:
        return spdlog::level::err;
    }
  }
};

}  // namespace

std::vector<std::string> CasFamilyNames() { return {"default", "cas_meta", "cas_chunks"}; }

// Notes RocksDB's background errors (a flush or a write that found the disk full), so that the
// next write resumes the database, and their end.
class Database::ErrorListener final : public rocksdb::EventListener {
 public:
  explicit ErrorListener(Database* database) : database_(database) {}
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* error) override {
    if (error == nullptr || error->ok()) return;
    spdlog::error("database stopped taking writes: {}", error->ToString());
    // kWriteCallback: a write to the write-ahead log failed (kMemTable: the memtable insert after it).
    if (reason == rocksdb::BackgroundErrorReason::kWriteCallback || reason == rocksdb::BackgroundErrorReason::kMemTable) {
      database_->needs_reopen_.store(true, std::memory_order_release);
    }
    database_->stopped_.store(true, std::memory_order_release);
  }
  // RocksDB's own recovery from a full disk waits for as much free space as its largest write buffer
  // (64 MiB by default), polling every 5 s: never, on a small disk. The blob store's maintenance
  // thread resumes the database instead (TryResume), as soon as a flush fits.
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    if (auto_recovery != nullptr) *auto_recovery = false;
  }
  void OnErrorRecoveryCompleted(rocksdb::Status) override {
    spdlog::info("database takes writes again");
    database_->stopped_.store(false, std::memory_order_release);
  }

 private:
  Database* database_;
};

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", status.ToString());
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsNoSpace()) return absl::ResourceExhaustedError(message);
  if (status.IsIOError() || status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsBusy() || status.IsTimedOut() || status.IsTryAgain()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

namespace {

// What each family's write buffer holds before it is flushed.
size_t WriteBufferBytes(size_t family_index) {
  return family_index == static_cast<size_t>(Family::kCasChunks) ? static_cast<size_t>(kCasWriteBufferBytes)
                                                                  : rocksdb::ColumnFamilyOptions().write_buffer_size;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::filesystem::path& dir, const Options& options) {
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  auto database = OpenOnce(dir, options, /*keep_logs=*/false);
  if (database.ok() || database.status().code() != absl::StatusCode::kResourceExhausted) return database;
  // Opening writes what the write-ahead logs hold and no table has yet into new tables, and a
  // process killed on a nearly full disk may leave more there than the disk has free: it would never
  // start again. Opened once more keeping those changes in the logs, it writes nothing; they go to
  // tables at the next flush, once the disk has room (the same room the process needed before it
  // was killed).
  spdlog::warn("{}; opening it again keeping the write-ahead logs' changes in them", std::string(database.status().message()));
  auto kept = OpenOnce(dir, options, /*keep_logs=*/true);
  if (!kept.ok()) return kept.status();
  (*kept)->RestoreWriteBuffers();
  spdlog::warn("database in {} opened on a full disk: its write-ahead logs' changes go to tables once the disk has room",
               dir.string());
  return kept;
}

absl::StatusOr<std::unique_ptr<Database>> Database::OpenOnce(const std::filesystem::path& dir, const Options& options,
                                                             bool keep_logs) {
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.max_total_wal_size = 256 << 20;
  // No space reserved ahead of what is written: RocksDB would otherwise reserve (fallocate) a write
  // buffer and a tenth for each new write-ahead log, 70 MiB with the default buffers, whatever it
  // holds. That space counts as used against --min-free-disk, and a process killed with its log
  // open leaves it reserved until the log is gone, which needs a successful start.
  db_options.allow_fallocate = false;
  db_options.avoid_flush_during_recovery = keep_logs;
  // A flush that failed on a full disk leaves its half-written table or blob file behind, tracked by
  // nothing; RocksDB removes such files only in a full scan of the folder, by default every 6 hours.
  // Every 10 s (a listing of one folder, done after a flush or compaction): the space of an upload
  // refused on a full disk comes back soon after the disk has room again.
  db_options.delete_obsolete_files_period_micros = 10'000'000;
  db_options.info_log = std::make_shared<SpdlogRocksLogger>(
      spdlog::should_log(spdlog::level::debug) ? rocksdb::InfoLogLevel::INFO_LEVEL : rocksdb::InfoLogLevel::WARN_LEVEL);

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  auto table_factory = std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table));

  // The families to open: those asked for, and any the database already has.
  const std::vector<std::string>& names = options.family_names;
  std::vector<bool> wanted(names.size(), options.families.empty());
  wanted[0] = true;  // RocksDB always has "default"
  for (Family f : options.families) wanted[static_cast<size_t>(f)] = true;
  std::vector<std::string> existing, others;
  if (rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.string(), &existing).ok()) {
    for (const std::string& name : existing) {
      auto known = std::find(names.begin(), names.end(), name);
      if (known != names.end()) {
        wanted[static_cast<size_t>(known - names.begin())] = true;
      } else {
        others.push_back(name);
      }
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  std::vector<size_t> family_of;  // index in `families` -> index in handles_
  for (size_t i = 0; i < names.size() + others.size(); ++i) {
    if (i < names.size() && !wanted[i]) continue;
    family_of.push_back(i);
    rocksdb::ColumnFamilyOptions cf_options;
    cf_options.table_factory = table_factory;
    if (i == static_cast<size_t>(Family::kCasChunks)) {
      cf_options.enable_blob_files = true;
      cf_options.min_blob_size = options.min_blob_size;
      cf_options.enable_blob_garbage_collection = true;
      cf_options.blob_garbage_collection_age_cutoff = 0.25;
      // Chunk values are written once and flushed to blob files: small memtables bound memory.
      cf_options.max_write_buffer_number = kCasWriteBuffers;
    }
    // Keeping the logs' changes, a replay that filled a buffer would flush after all: room for
    // everything the family's buffers held, and more (RestoreWriteBuffers sets them back).
    cf_options.write_buffer_size = WriteBufferBytes(i) * (keep_logs ? 2 * cf_options.max_write_buffer_number : 1);
    families.emplace_back(i < names.size() ? names[i] : others[i - names.size()], cf_options);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::DBOptions base(db_options);
  std::unique_ptr<Database> database(new Database());
  base.listeners.push_back(std::make_shared<ErrorListener>(database.get()));
  rocksdb::Status status = rocksdb::DB::Open(base, dir.string(), families, &handles, &raw);
  if (!status.ok()) return FromRocks(status, absl::StrCat("opening database ", dir.string()));
  database->dir_ = dir;
  database->db_.reset(raw);
  database->handles_.assign(names.size() + others.size(), nullptr);
  database->known_families_ = names.size();
  for (size_t i = 0; i < handles.size(); ++i) database->handles_[family_of[i]] = handles[i];
  return database;
}

void Database::RestoreWriteBuffers() {
  for (size_t i = 0; i < handles_.size(); ++i) {
    if (handles_[i] == nullptr) continue;
    // The options take effect even when their file cannot be written on the full disk.
    rocksdb::Status s = db_->SetOptions(handles_[i], {{"write_buffer_size", std::to_string(WriteBufferBytes(i))}});
    if (!s.ok()) spdlog::debug("setting the write buffer of {} back: {}", handles_[i]->GetName(), s.ToString());
  }
}

std::vector<std::string> Database::opened_family_names() const {
  std::vector<std::string> out;
  for (auto* handle : handles_) {
    if (handle != nullptr) out.push_back(handle->GetName());
  }
  return out;
}

Database::~Database() {
  if (!db_) return;
  for (auto* handle : handles_) {
    if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle);
  }
  db_->Close();
}

absl::Status Database::Write(rocksdb::WriteBatch* batch, bool sync) {
  // Nothing more goes to files a full disk already failed (RocksDB asserts on a second write to a
  // file that failed): refused here until the maintenance thread resumed the database.
  if (stopped()) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the database in ", dir_.string(),
        " takes no writes: its disk is full (writes resume by themselves once space is freed; reads go on)"));
  }
  rocksdb::WriteOptions options;
  options.sync = sync;
  rocksdb::Status status = db_->Write(options, batch);
  if (!status.ok()) return NoteWriteError(status);
  if (sync) synced_writes_.fetch_add(1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status Database::NoteWriteError(const rocksdb::Status& status) {
  absl::Status out = FromRocks(status, absl::StrCat("writing the database in ", dir_.string()));
  if (!status.IsNoSpace()) return out;
  stopped_.store(true, std::memory_order_release);
  return absl::ResourceExhaustedError(absl::StrCat(
      out.message(), " (its disk is full: writes resume by themselves once space is freed; reads go on)"));
}

absl::Status Database::TryResume() {
  if (!stopped()) return absl::OkStatus();
  if (needs_reopen()) return RequestReopen();
  // RocksDB resumes one at a time; a second caller does not wait for the first.
  bool expected = false;
  if (!resuming_.compare_exchange_strong(expected, true)) return absl::UnavailableError("resuming already");
  rocksdb::Status status = db_->Resume();
  resuming_.store(false);
  if (!status.ok()) {
    return FromRocks(status, absl::StrCat("resuming writes to the database in ", dir_.string()));
  }
  if (stopped_.exchange(false)) spdlog::info("database in {} takes writes again", dir_.string());
  return absl::OkStatus();
}

absl::Status Database::RequestReopen() {
  // Room to reopen: the logs RocksDB replays (and flushes) plus its new manifest, options and log.
  std::error_code ec;
  uintmax_t logs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (entry.path().extension() == ".log") logs += entry.file_size(ec);
  }
  const std::filesystem::space_info space = std::filesystem::space(dir_, ec);
  const uintmax_t needed = logs + (4u << 20);
  if (ec || space.available < needed) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the database in ", dir_.string(), " waits for ", needed >> 20,
        " MiB free to reopen (a write to its write-ahead log failed on a full disk)"));
  }
  RequestRestart(absl::StrCat("a write to the write-ahead log of the database in ", dir_.string(),
                              " failed on a full disk; RocksDB 7.8 resumes such a log only by reopening"));
  return absl::UnavailableError("the database reopens: the process restarts in place");
}

uint64_t Database::TableBytesOverlapping(Family family, const std::string& begin, const std::string& end) const {
  std::vector<rocksdb::LiveFileMetaData> files;
  db_->GetLiveFilesMetaData(&files);
  const std::string& name = cf(family)->GetName();
  std::string lo = begin, hi = end;  // [lo, hi), widened to the files taken (the keys compare bytewise)
  std::vector<bool> taken(files.size(), false);
  uint64_t bytes = 0;
  for (bool grew = true; grew;) {
    grew = false;
    for (size_t i = 0; i < files.size(); ++i) {
      const rocksdb::LiveFileMetaData& f = files[i];
      if (taken[i] || f.column_family_name != name || f.largestkey < lo || f.smallestkey >= hi) continue;
      taken[i] = true;
      grew = true;
      bytes += f.size;
      if (f.smallestkey < lo) lo = f.smallestkey;
      if (f.largestkey >= hi) hi = f.largestkey + std::string(1, '\0');
    }
  }
  return bytes;
}

absl::Status Database::CheckRoomToCompact(Family family, const std::string* begin, const std::string* end,
                                          uint64_t live_blob_bytes) const {
  uint64_t needed = 256u << 10;  // the manifest's new records
  if (begin != nullptr && end != nullptr) {
    needed += TableBytesOverlapping(family, *begin, *end);
  } else {
    uint64_t tables = 0, blob_files = 0;
    db_->GetIntProperty(cf(family), "rocksdb.total-sst-files-size", &tables);  // left 0 when unknown
    db_->GetIntProperty(cf(family), "rocksdb.total-blob-file-size", &blob_files);
    // The compaction rewrites the family's tables, and garbage collection moves the live blobs of its
    // oldest quarter of blob files (no more than the live blobs there are).
    needed += tables + std::min(blob_files / 4, live_blob_bytes);
  }
  std::error_code ec;
  const std::filesystem::space_info space = std::filesystem::space(dir_, ec);
  if (ec || space.available >= needed) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "compacting the database in ", dir_.string(), " waits for ", FormatBytes(static_cast<int64_t>(needed)),
      " free (", FormatBytes(static_cast<int64_t>(space.available)),
      " are): RocksDB 7.8 aborts the process when a compaction finds the disk full"));
}

absl::Status Database::Reclaim(Family family, const std::string* begin, const std::string* end,
                               uint64_t live_blob_bytes) {
  // A flush of a stopped database would write to the files that failed: refused until resumed.
  if (stopped()) return absl::ResourceExhaustedError(absl::StrCat("the database in ", dir_.string(), " takes no writes"));
  std::vector<rocksdb::ColumnFamilyHandle*> all;
  for (auto* handle : handles_) {
    if (handle != nullptr) all.push_back(handle);
  }
  rocksdb::Status status = db_->Flush(rocksdb::FlushOptions(), all);
  if (!status.ok()) return FromRocks(status, "flushing the database");
  const bool ranged = begin != nullptr && end != nullptr;
  if (absl::Status room = CheckRoomToCompact(family, begin, end, live_blob_bytes); !room.ok()) return room;
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  // A range (a failed upload's chunks) moves no live blobs: what it needs stays what was checked.
  if (ranged) options.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kDisable;
  std::optional<rocksdb::Slice> b, e;
  if (begin != nullptr) b.emplace(*begin);
  if (end != nullptr) e.emplace(*end);
  status = db_->CompactRange(options, cf(family), b ? &*b : nullptr, e ? &*e : nullptr);
  if (!status.ok()) return FromRocks(status, "compacting the database");
  return ranged ? absl::OkStatus() : CollectBlobGarbage(family);
}

absl::Status Database::CollectBlobGarbage(Family family) {
  rocksdb::ColumnFamilyMetaData meta;
  db_->GetColumnFamilyMetaData(cf(family), &meta);
  std::vector<rocksdb::BlobMetaData>& files = meta.blob_files;
  std::sort(files.begin(), files.end(), [](const rocksdb::BlobMetaData& a, const rocksdb::BlobMetaData& b) {
    return a.blob_file_number < b.blob_file_number;
  });
  uint64_t tables = 0;
  db_->GetIntProperty(cf(family), "rocksdb.total-sst-files-size", &tables);
  std::error_code ec;
  const std::filesystem::space_info space = std::filesystem::space(dir_, ec);
  if (ec) return absl::OkStatus();
  uint64_t needed = (256u << 10) + tables, moved = 0, freed = 0;
  size_t take = 0;  // the oldest `take` files are collected
  for (size_t i = 0; i < files.size(); ++i) {
    const uint64_t garbage = std::min(files[i].garbage_blob_bytes, files[i].total_blob_bytes);
    moved += files[i].total_blob_bytes - garbage;
    freed += garbage;
    if (needed + moved > space.available) break;
    if (garbage > 0 && moved <= kMaxBlobBytesMovedPerByteFreed * freed) take = i + 1;
  }
  if (take == 0) return absl::OkStatus();
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  options.blob_garbage_collection_policy = rocksdb::BlobGarbageCollectionPolicy::kForce;
  // RocksDB moves the blobs of the files before the one at index cutoff * count (rounded down).
  options.blob_garbage_collection_age_cutoff =
      take == files.size() ? 1.0 : (static_cast<double>(take) + 0.5) / static_cast<double>(files.size());
  rocksdb::Status status = db_->CompactRange(options, cf(family), nullptr, nullptr);
  return FromRocks(status, "moving live blobs out of blob files holding deleted ones");
}

absl::StatusOr<std::string> Database::Get(Family family, absl::string_view key) const {
  std::string value;
  rocksdb::Status status = db_->Get(rocksdb::ReadOptions(), cf(family), rocksdb::Slice(key.data(), key.size()), &value);
  if (status.IsNotFound()) return absl::NotFoundError("key not found");
  if (!status.ok()) return FromRocks(status, "database read");
  return value;
}

absl::Status Database::Put(Family family, absl::string_view key, absl::string_view value, bool sync) {
  rocksdb::WriteBatch batch;
  batch.Put(cf(family), rocksdb::Slice(key.data(), key.size()), rocksdb::Slice(value.data(), value.size()));
  return Write(&batch, sync);
}

std::string EncodeU64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>(v >> (56 - 8 * i));
  return s;
}

std::string EncodeU32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
  return s;
}

uint64_t DecodeU64(absl::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = v << 8 | static_cast<unsigned char>(s[i]);
  return v;
}

uint32_t DecodeU32(absl::string_view s) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4 && i < s.size(); ++i) v = v << 8 | static_cast<unsigned char>(s[i]);
  return v;
}

}  // namespace assay
