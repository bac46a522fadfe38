// How an S3 answer, or the lack of one, becomes an absl::Status: one table for the client, tested
// without a server. Every message starts "S3 <what> on <host>: " so a reader sees which request to
// which server failed; S3's own error Code and Message follow when the body carried them.
//   404 / NoSuch*                          NOT_FOUND
//   403 / AccessDenied, InvalidAccessKeyId,
//         SignatureDoesNotMatch, ...       PERMISSION_DENIED, with a hint at the credentials
//   5xx, SlowDown, RequestTimeout, no
//         connection, a broken transfer    UNAVAILABLE (retried)
//   a request over its deadline            DEADLINE_EXCEEDED (retried)
//   416 / InvalidRange                     OUT_OF_RANGE
//   429                                    RESOURCE_EXHAUSTED (retried)
//   other 4xx                              INVALID_ARGUMENT, FAILED_PRECONDITION, ... (final)
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace assay {

// The code of an S3 error `s3_code` ("" when the body had none) answered with `http_status`.
absl::StatusCode CodeOfS3Error(int http_status, absl::string_view s3_code);

// OK for a 2xx answer; otherwise the error, with the Code and Message of an S3 error `body`.
// `what` names the request ("GET bucket/key"), `host` the server.
absl::Status StatusFromHttp(int http_status, absl::string_view body, absl::string_view what, absl::string_view host);

// A request libcurl could not complete: `curl_code` is its CURLcode, `detail` its error buffer.
absl::Status StatusFromCurl(int curl_code, absl::string_view detail, absl::string_view what, absl::string_view host);

}  // namespace assay
