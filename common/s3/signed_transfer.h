// Sending a request someone else signed (s3_signer.h) to a bucket: how a worker reads and writes
// blobs in the bucket itself with what the coordinator hands it, holding no credentials. A body
// streams to a sink or from a file, so memory stays bounded whatever the blob's size. Errors follow
// s3_status.h (UNAVAILABLE when the bucket cannot be reached, PERMISSION_DENIED for an expired or
// altered request, INVALID_ARGUMENT when the server refused a PUT's body as not the signed one).
#pragma once

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/s3/s3_signer.h"

namespace assay {

// GETs `request` from byte `offset` on (a Range header when it is not 0), handing the body to `sink`
// as it arrives; an error from `sink` stops the transfer and is returned.
absl::Status SignedGet(const SignedS3Request& request, int64_t offset,
                       const std::function<absl::Status(absl::string_view)>& sink, absl::Time deadline);

// PUTs `size` bytes read from `fd` (from its start) as the body of `request`.
absl::Status SignedPut(const SignedS3Request& request, int fd, int64_t size, absl::Time deadline);
// PUTs `body`.
absl::Status SignedPut(const SignedS3Request& request, absl::string_view body, absl::Time deadline);

}  // namespace assay
