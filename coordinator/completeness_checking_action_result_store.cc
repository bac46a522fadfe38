#include "coordinator/completeness_checking_action_result_store.h"

#include "absl/strings/str_cat.h"

namespace assay {

std::vector<Digest> CompletenessCheckingActionResultStore::Referenced(const reapi::ActionResult& result) {
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

absl::StatusOr<reapi::ActionResult> CompletenessCheckingActionResultStore::Get(absl::string_view instance,
                                                                               const Digest& action) {
  auto result = inner_->Get(instance, action);
  if (!result.ok()) return result;
  auto missing = cas_->FindMissing(Referenced(*result));
  if (!missing.ok()) return missing.status();
  if (!missing->empty()) {
    return absl::NotFoundError(absl::StrCat("action result for ", action.ToString(), " references ", missing->size(),
                                            " evicted blobs"));
  }
  return result;
}

absl::Status CompletenessCheckingActionResultStore::Put(absl::string_view instance, const Digest& action,
                                                        const reapi::ActionResult& result) {
  if (absl::Status s = CheckComplete(result); !s.ok()) return s;
  return inner_->Put(instance, action, result);
}

absl::Status CompletenessCheckingActionResultStore::CheckComplete(const reapi::ActionResult& result) const {
  auto missing = cas_->FindMissing(Referenced(result));
  if (!missing.ok()) return missing.status();
  if (!missing->empty()) {
    return absl::FailedPreconditionError(absl::StrCat("action result references blob ", missing->front().ToString(),
                                                      " which is not in the CAS"));
  }
  return absl::OkStatus();
}

}  // namespace assay
