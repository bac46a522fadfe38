#include "coordinator/action_cache.h"

#include "absl/strings/str_cat.h"

namespace assay {
namespace {
std::string AcKey(absl::string_view instance, const Digest& action) {
  return absl::StrCat(instance, std::string(1, '\0'), action.Key());
}
}  // namespace

std::vector<Digest> ActionCache::Referenced(const reapi::ActionResult& result) {
  std::vector<Digest> out;
  auto add = [&](const reapi::Digest& d) {
    auto digest = Digest::FromProto(d);
    if (digest.ok()) out.push_back(*digest);
  };
  for (const auto& f : result.output_files()) add(f.digest());
  for (const auto& d : result.output_directories()) add(d.tree_digest());
  if (result.has_stdout_digest()) add(result.stdout_digest());
  if (result.has_stderr_digest()) add(result.stderr_digest());
  return out;
}

absl::StatusOr<reapi::ActionResult> ActionCache::Get(absl::string_view instance, const Digest& action) {
  auto value = db_->Get(Family::kActionCache, AcKey(instance, action));
  if (!value.ok()) {
    if (absl::IsNotFound(value.status())) {
      misses_++;
      return absl::NotFoundError(absl::StrCat("no action result for ", action.ToString()));
    }
    return value.status();
  }
  reapi::ActionResult result;
  if (!result.ParseFromString(*value)) return absl::DataLossError("action result record is corrupt");
  std::vector<Digest> referenced = Referenced(result);
  auto missing = blobs_->FindMissing(referenced);
  if (!missing.ok()) return missing.status();
  if (!missing->empty()) {
    misses_++;
    return absl::NotFoundError(absl::StrCat("action result for ", action.ToString(), " references ", missing->size(),
                                            " evicted blobs"));
  }
  for (const Digest& d : referenced) blobs_->Touch(d).IgnoreError();
  hits_++;
  return result;
}

absl::Status ActionCache::Put(absl::string_view instance, const Digest& action, const reapi::ActionResult& result) {
  auto missing = blobs_->FindMissing(Referenced(result));
  if (!missing.ok()) return missing.status();
  if (!missing->empty()) {
    return absl::FailedPreconditionError(absl::StrCat("action result references blob ", missing->front().ToString(),
                                                      " which is not in the CAS"));
  }
  return db_->Put(Family::kActionCache, AcKey(instance, action), result.SerializeAsString(), /*sync=*/true);
}

absl::StatusOr<int64_t> ActionCache::CountEntries() const {
  int64_t n = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->db()->NewIterator(rocksdb::ReadOptions(), db_->cf(Family::kActionCache)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  if (!it->status().ok()) return FromRocks(it->status(), "counting action results");
  return n;
}

}  // namespace assay
