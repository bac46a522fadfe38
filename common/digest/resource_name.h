// ByteStream resource names and REAPI instance names: made by clients, parsed (as hostile input)
// by the coordinator.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/digest/digest.h"

namespace assay {

// Instance names may not contain the reserved path segments of ByteStream resource names.
absl::Status CheckInstanceName(absl::string_view instance);

// "{instance}/blobs/{hash}/{size}" and "{instance}/uploads/{uuid}/blobs/{hash}/{size}".
std::string ReadResourceName(absl::string_view instance, const Digest& digest);
std::string WriteResourceName(absl::string_view instance, absl::string_view uuid, const Digest& digest);

struct ParsedResource {
  std::string instance;
  Digest digest;
};
// "{instance}/blobs/{hash}/{size}" (upload=false) or "{instance}/uploads/{uuid}/blobs/{hash}/{size}[/...]".
absl::StatusOr<ParsedResource> ParseResourceName(absl::string_view name, bool upload);

}  // namespace assay
