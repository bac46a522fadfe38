#include "common/digest/resource_name.h"

#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/status_util.h"

namespace assay {
namespace {

const absl::flat_hash_set<std::string>& ReservedSegments() {
  static const auto* reserved = new absl::flat_hash_set<std::string>{
      "blobs", "uploads", "actions", "actionResults", "operations", "capabilities", "compressed-blobs"};
  return *reserved;
}

}  // namespace

absl::Status CheckInstanceName(absl::string_view instance) {
  if (instance.empty()) return absl::OkStatus();
  if (instance.size() > 256) return absl::InvalidArgumentError("instance name is longer than 256 characters");
  for (absl::string_view part : absl::StrSplit(instance, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(absl::StrCat("instance name '", instance, "' has an empty or relative segment"));
    }
    if (ReservedSegments().contains(std::string(part))) {
      return absl::InvalidArgumentError(absl::StrCat("instance name '", instance, "' uses the reserved segment '", part, "'"));
    }
  }
  return absl::OkStatus();
}

std::string ReadResourceName(absl::string_view instance, const Digest& digest) {
  return absl::StrCat(instance, instance.empty() ? "" : "/", "blobs/", digest.hash(), "/", digest.size());
}

std::string WriteResourceName(absl::string_view instance, absl::string_view uuid, const Digest& digest) {
  return absl::StrCat(instance, instance.empty() ? "" : "/", "uploads/", uuid, "/blobs/", digest.hash(), "/",
                      digest.size());
}

absl::StatusOr<ParsedResource> ParseResourceName(absl::string_view name, bool upload) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  // Find the "blobs" segment that follows the instance (and "uploads/{uuid}").
  for (size_t i = 0; i < parts.size(); ++i) {
    if (parts[i] != "blobs") continue;
    if (upload && (i < 2 || parts[i - 2] != "uploads")) continue;
    if (i + 2 >= parts.size()) break;
    if (!upload && i + 3 != parts.size()) break;
    int64_t size = 0;
    if (!absl::SimpleAtoi(parts[i + 2], &size)) {
      return absl::InvalidArgumentError(absl::StrCat("resource name '", name, "': size '", parts[i + 2], "' is not a number"));
    }
    auto digest = Digest::Create(parts[i + 1], size);
    if (!digest.ok()) return Annotate(digest.status(), absl::StrCat("resource name '", name, "'"));
    size_t instance_parts = upload ? i - 2 : i;
    std::vector<std::string> instance(parts.begin(), parts.begin() + static_cast<long>(instance_parts));
    ParsedResource out{absl::StrJoin(instance, "/"), *digest};
    if (absl::Status s = CheckInstanceName(out.instance); !s.ok()) return s;
    return out;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "resource name '", name.substr(0, 200), "' is not of the form ",
      upload ? "{instance}/uploads/{uuid}/blobs/{hash}/{size}" : "{instance}/blobs/{hash}/{size}"));
}

}  // namespace assay
