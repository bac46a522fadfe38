#include "common/database.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/file_util.h"

namespace assay {
namespace {

constexpr std::array<const char*, static_cast<int>(Family::kCount)> kFamilyNames = {
    "default", "cas_meta", "cas_chunks", "action_cache", "jobs", "tasks", "logs", "meta"};

}  // namespace

absl::Status FromRocks(const rocksdb::Status& status, absl::string_view context) {
  if (status.ok()) return absl::OkStatus();
  std::string message = absl::StrCat(context, ": ", status.ToString());
  if (status.IsNotFound()) return absl::NotFoundError(message);
  if (status.IsIOError() || status.IsCorruption()) return absl::DataLossError(message);
  if (status.IsBusy() || status.IsTimedOut() || status.IsTryAgain()) return absl::UnavailableError(message);
  return absl::InternalError(message);
}

absl::StatusOr<std::unique_ptr<Database>> Database::Open(const std::filesystem::path& dir, const Options& options) {
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.IncreaseParallelism(2);
  db_options.keep_log_file_num = 3;
  db_options.max_total_wal_size = 256 << 20;

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  auto table_factory = std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table));

  // The families to open: those asked for, and any the database already has.
  std::vector<bool> wanted(static_cast<size_t>(Family::kCount), options.families.empty());
  wanted[0] = true;  // RocksDB always has "default"
  for (Family f : options.families) wanted[static_cast<size_t>(f)] = true;
  std::vector<std::string> existing;
  if (rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.string(), &existing).ok()) {
    for (const std::string& name : existing) {
      for (size_t i = 0; i < kFamilyNames.size(); ++i) {
        if (name == kFamilyNames[i]) wanted[i] = true;
      }
    }
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  std::vector<int> family_of;  // index in `families` -> Family
  for (int i = 0; i < static_cast<int>(Family::kCount); ++i) {
    if (!wanted[static_cast<size_t>(i)]) continue;
    family_of.push_back(i);
    rocksdb::ColumnFamilyOptions cf_options;
    cf_options.table_factory = table_factory;
    if (static_cast<Family>(i) == Family::kCasChunks) {
      cf_options.enable_blob_files = true;
      cf_options.min_blob_size = options.min_blob_size;
      cf_options.enable_blob_garbage_collection = true;
      cf_options.blob_garbage_collection_age_cutoff = 0.25;
      // Chunk values are written once and flushed to blob files: small memtables bound memory.
      cf_options.write_buffer_size = 16 << 20;
      cf_options.max_write_buffer_number = 2;
    }
    families.emplace_back(kFamilyNames[static_cast<size_t>(i)], cf_options);
  }

  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::DBOptions base(db_options);
  rocksdb::Status status = rocksdb::DB::Open(base, dir.string(), families, &handles, &raw);
  if (!status.ok()) return FromRocks(status, absl::StrCat("opening database ", dir.string()));
  std::unique_ptr<Database> database(new Database());
  database->dir_ = dir;
  database->db_.reset(raw);
  for (size_t i = 0; i < handles.size(); ++i) database->handles_[static_cast<size_t>(family_of[i])] = handles[i];
  return database;
}

Database::~Database() {
  if (!db_) return;
  for (auto* handle : handles_) {
    if (handle != nullptr) db_->DestroyColumnFamilyHandle(handle);
  }
  db_->Close();
}

absl::Status Database::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions options;
  options.sync = sync;
  return FromRocks(db_->Write(options, batch), "database write");
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
