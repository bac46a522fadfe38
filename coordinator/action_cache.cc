#include "coordinator/action_cache.h"

namespace assay {

absl::StatusOr<reapi::ActionResult> ActionCache::Get(absl::string_view instance, const Digest& action) {
  auto result = complete_.Get(instance, action);
  if (result.ok()) {
    hits_++;
  } else if (absl::IsNotFound(result.status())) {
    misses_++;
  }
  return result;
}

}  // namespace assay
