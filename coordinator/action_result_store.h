// Action results by action digest, per instance name: the interface the action cache's layers
// share (RocksDbActionResultStore stores, CompletenessCheckingActionResultStore checks), as
// BlobStore is for the CAS.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/digest/digest.h"

namespace assay {

class ActionResultStore {
 public:
  virtual ~ActionResultStore() = default;
  // NotFound when there is no (usable) result.
  virtual absl::StatusOr<reapi::ActionResult> Get(absl::string_view instance, const Digest& action) = 0;
  virtual absl::Status Put(absl::string_view instance, const Digest& action, const reapi::ActionResult& result) = 0;
};

}  // namespace assay
