#include "coordinator/bucket_action_result_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/log_format.h"

namespace assay {
namespace {

constexpr absl::string_view kPrefix = "ac/";

struct ResultName {
  std::string instance;
  Digest action;
};

// "ac/INSTANCE-HEX/HASH-SIZE" (the instance part is empty for the default instance).
absl::StatusOr<ResultName> ParseName(absl::string_view name) {
  if (!absl::ConsumePrefix(&name, kPrefix)) return absl::InvalidArgumentError("not an action result's name");
  const size_t slash = name.find('/');
  if (slash == absl::string_view::npos) return absl::InvalidArgumentError("no instance part");
  const absl::string_view hex = name.substr(0, slash);
  std::pair<absl::string_view, absl::string_view> parts = absl::StrSplit(name.substr(slash + 1), absl::MaxSplits('-', 1));
  int64_t size = 0;
  if (hex.size() % 2 != 0 || !std::all_of(hex.begin(), hex.end(), absl::ascii_isxdigit) ||
      !absl::SimpleAtoi(parts.second, &size)) {
    return absl::InvalidArgumentError("malformed name");
  }
  auto action = Digest::Create(parts.first, size);
  if (!action.ok()) return action.status();
  return ResultName{absl::HexStringToBytes(hex), *action};
}

}  // namespace

std::string BucketActionResultStore::ObjectName(absl::string_view instance, const Digest& action) {
  return absl::StrCat(kPrefix, absl::BytesToHexString(instance), "/", action.hash(), "-", action.size());
}

absl::Status BucketActionResultStore::Put(absl::string_view instance, const Digest& action,
                                          const reapi::ActionResult& result) {
  if (absl::Status s = Mirror(instance, action, result); !s.ok()) return s;
  return local_->Put(instance, action, result);
}

absl::Status BucketActionResultStore::Mirror(absl::string_view instance, const Digest& action,
                                             const reapi::ActionResult& result) {
  return bucket_->PutObject(ObjectName(instance, action), result.SerializeAsString());
}

absl::StatusOr<int64_t> BucketActionResultStore::Restore() {
  int64_t restored = 0;
  absl::Status listed = bucket_->ListObjects(kPrefix, [&](std::vector<S3Object> page) -> absl::Status {
    for (const S3Object& object : page) {
      auto name = ParseName(object.key);
      if (!name.ok()) {
        spdlog::warn("bucket: object '{}' is not an action result of ours; left alone", object.key);
        continue;
      }
      auto bytes = bucket_->GetObject(object.key);
      if (absl::IsNotFound(bytes.status())) continue;  // deleted since the listing
      if (!bytes.ok()) return bytes.status();
      reapi::ActionResult result;
      if (!result.ParseFromString(*bytes)) {
        spdlog::warn("bucket: action result '{}' does not parse; skipped", object.key);
        continue;
      }
      if (absl::Status s = local_->Put(name->instance, name->action, result); !s.ok()) return s;
      ++restored;
    }
    return absl::OkStatus();
  });
  if (!listed.ok()) return absl::Status(listed.code(), absl::StrCat("restoring action results: ", listed.message()));
  return restored;
}

}  // namespace assay
