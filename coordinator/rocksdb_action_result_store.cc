#include "coordinator/rocksdb_action_result_store.h"

#include "absl/strings/str_cat.h"
#include "coordinator/families.h"

namespace assay {
namespace {
std::string AcKey(absl::string_view instance, const Digest& action) {
  return absl::StrCat(instance, std::string(1, '\0'), action.Key());
}
}  // namespace

absl::StatusOr<reapi::ActionResult> RocksDbActionResultStore::Get(absl::string_view instance, const Digest& action) {
  auto value = db_->Get(CoordinatorFamily::kActionCache, AcKey(instance, action));
  if (!value.ok()) {
    if (absl::IsNotFound(value.status())) {
      return absl::NotFoundError(absl::StrCat("no action result for ", action.ToString()));
    }
    return value.status();
  }
  reapi::ActionResult result;
  if (!result.ParseFromString(*value)) return absl::DataLossError("action result record is corrupt");
  return result;
}

absl::Status RocksDbActionResultStore::Put(absl::string_view instance, const Digest& action,
                                           const reapi::ActionResult& result) {
  return db_->Put(CoordinatorFamily::kActionCache, AcKey(instance, action), result.SerializeAsString(), /*sync=*/true);
}

void RocksDbActionResultStore::AddToBatch(rocksdb::WriteBatch* batch, absl::string_view instance, const Digest& action,
                                          const reapi::ActionResult& result) const {
  batch->Put(db_->cf(CoordinatorFamily::kActionCache), AcKey(instance, action), result.SerializeAsString());
}

absl::StatusOr<int64_t> RocksDbActionResultStore::CountEntries() const {
  int64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(CoordinatorFamily::kActionCache)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  if (!it->status().ok()) return FromRocks(it->status(), "counting action results");
  return n;
}

}  // namespace assay
