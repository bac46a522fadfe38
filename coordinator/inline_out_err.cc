#include "coordinator/inline_out_err.h"

#include "common/digest/digest.h"

namespace assay {

void InlineBlob(BlobStore& blobs, const reapi::Digest& digest, int64_t limit, std::string* out) {
  auto d = Digest::FromProto(digest);
  if (!d.ok() || d->size() == 0 || d->size() > limit) return;
  auto bytes = blobs.Get(*d);
  if (bytes.ok()) *out = std::move(*bytes);
}

void InlineOutErr(BlobStore& blobs, bool asked_stdout, bool asked_stderr, reapi::ActionResult* result) {
  if (result->stdout_raw().empty() && result->has_stdout_digest()) {
    InlineBlob(blobs, result->stdout_digest(), asked_stdout ? kMaxAskedInlineBytes : kInlineOutErrBytes,
               result->mutable_stdout_raw());
  }
  if (result->stderr_raw().empty() && result->has_stderr_digest()) {
    InlineBlob(blobs, result->stderr_digest(), asked_stderr ? kMaxAskedInlineBytes : kInlineOutErrBytes,
               result->mutable_stderr_raw());
  }
}

}  // namespace assay
