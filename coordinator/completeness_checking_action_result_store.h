// Serves an action result only when every blob it references (output files, output directories'
// trees, stdout, stderr) is in the CAS, and refuses to store one that references a blob the CAS
// does not hold: the CAS and the action cache are evicted separately. As bb-storage's
// CompletenessCheckingBlobAccess, a layer of its own over the result storage; it asks the CAS
// through the top of its stack (BlobStore), whose FindMissing refreshes the blobs it finds.
#pragma once

#include <vector>

#include "common/cas/blob_store.h"
#include "coordinator/action_result_store.h"

namespace assay {

class CompletenessCheckingActionResultStore final : public ActionResultStore {
 public:
  CompletenessCheckingActionResultStore(ActionResultStore* inner, BlobStore* cas) : inner_(inner), cas_(cas) {}

  // NotFound on a miss or when a referenced blob is gone.
  absl::StatusOr<reapi::ActionResult> Get(absl::string_view instance, const Digest& action) override;
  // FAILED_PRECONDITION naming a referenced blob the CAS does not hold.
  absl::Status Put(absl::string_view instance, const Digest& action, const reapi::ActionResult& result) override;
  // Put's check alone: OK when the CAS holds every blob `result` references.
  absl::Status CheckComplete(const reapi::ActionResult& result) const;

  // The blobs a result references (digests that do not parse are left out).
  static std::vector<Digest> Referenced(const reapi::ActionResult& result);

 private:
  ActionResultStore* inner_;
  BlobStore* cas_;
};

}  // namespace assay
