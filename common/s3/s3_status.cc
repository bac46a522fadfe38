#include "common/s3/s3_status.h"

#include <curl/curl.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/s3/s3_xml.h"

namespace assay {

namespace {

// S3 error codes whose meaning is clearer than their HTTP status.
absl::StatusCode CodeOfS3Name(absl::string_view s3_code) {
  static constexpr std::pair<absl::string_view, absl::StatusCode> kCodes[] = {
      {"AccessDenied", absl::StatusCode::kPermissionDenied},
      {"InvalidAccessKeyId", absl::StatusCode::kPermissionDenied},
      {"SignatureDoesNotMatch", absl::StatusCode::kPermissionDenied},
      {"RequestTimeTooSkewed", absl::StatusCode::kPermissionDenied},
      {"InvalidRange", absl::StatusCode::kOutOfRange},
      {"BucketAlreadyExists", absl::StatusCode::kAlreadyExists},
      {"BucketAlreadyOwnedByYou", absl::StatusCode::kAlreadyExists},
      {"SlowDown", absl::StatusCode::kUnavailable},
      {"ServiceUnavailable", absl::StatusCode::kUnavailable},
      {"InternalError", absl::StatusCode::kUnavailable},
      {"RequestTimeout", absl::StatusCode::kUnavailable},
      {"OperationAborted", absl::StatusCode::kAborted},
      {"InvalidPart", absl::StatusCode::kFailedPrecondition},
      {"InvalidPartOrder", absl::StatusCode::kInvalidArgument},
      {"EntityTooSmall", absl::StatusCode::kInvalidArgument},
      {"EntityTooLarge", absl::StatusCode::kInvalidArgument},
      {"BadDigest", absl::StatusCode::kDataLoss},
      {"XAmzContentSHA256Mismatch", absl::StatusCode::kDataLoss},
  };
  for (const auto& [name, code] : kCodes) {
    if (name == s3_code) return code;
  }
  if (absl::StartsWith(s3_code, "NoSuch")) return absl::StatusCode::kNotFound;  // NoSuchKey, NoSuchBucket, NoSuchUpload
  return absl::StatusCode::kOk;                                                 // not known by name
}

absl::StatusCode CodeOfHttp(int http_status) {
  switch (http_status) {
    case 400: return absl::StatusCode::kInvalidArgument;
    case 401: return absl::StatusCode::kUnauthenticated;
    case 403: return absl::StatusCode::kPermissionDenied;
    case 404: return absl::StatusCode::kNotFound;
    case 408: return absl::StatusCode::kUnavailable;
    case 409: return absl::StatusCode::kFailedPrecondition;
    case 412: return absl::StatusCode::kFailedPrecondition;
    case 416: return absl::StatusCode::kOutOfRange;
    case 429: return absl::StatusCode::kResourceExhausted;
    case 501: return absl::StatusCode::kUnimplemented;
    default: break;
  }
  if (http_status >= 500) return absl::StatusCode::kUnavailable;
  if (http_status >= 400) return absl::StatusCode::kFailedPrecondition;
  return absl::StatusCode::kUnknown;  // 1xx or 3xx: the client follows no redirect
}

// What to check, for the errors an operator fixes in the configuration.
absl::string_view Hint(absl::string_view s3_code, int http_status) {
  if (s3_code == "InvalidAccessKeyId") return " (the server does not know this access key: check AWS_ACCESS_KEY_ID)";
  if (s3_code == "SignatureDoesNotMatch") {
    return " (the request's signature does not match: check AWS_SECRET_ACCESS_KEY and the location's region)";
  }
  if (s3_code == "RequestTimeTooSkewed") return " (this machine's clock differs too much from the server's)";
  if (s3_code.empty() && http_status == 403) {
    return " (no error body, as with HEAD: wrong credentials, or no permission on the bucket)";
  }
  if (s3_code == "NoSuchBucket") return " (create the bucket, or check the location's bucket name)";
  return "";
}

}  // namespace

absl::StatusCode CodeOfS3Error(int http_status, absl::string_view s3_code) {
  const absl::StatusCode by_name = CodeOfS3Name(s3_code);
  return by_name != absl::StatusCode::kOk ? by_name : CodeOfHttp(http_status);
}

absl::Status StatusFromHttp(int http_status, absl::string_view body, absl::string_view what, absl::string_view host) {
  if (http_status >= 200 && http_status < 300) return absl::OkStatus();
  std::optional<S3ErrorBody> error = ParseS3Error(body);
  const std::string s3_code = error.has_value() ? error->code : "";
  std::string detail = absl::StrCat("HTTP ", http_status);
  if (error.has_value()) {
    absl::StrAppend(&detail, " ", error->code, error->message.empty() ? "" : ": ", error->message);
  }
  return absl::Status(CodeOfS3Error(http_status, s3_code),
                      absl::StrCat("S3 ", what, " on ", host, ": ", detail, Hint(s3_code, http_status)));
}

absl::Status StatusFromCurl(int curl_code, absl::string_view detail, absl::string_view what, absl::string_view host) {
  const CURLcode code = static_cast<CURLcode>(curl_code);
  const std::string message =
      absl::StrCat("S3 ", what, " on ", host, ": ", detail.empty() ? curl_easy_strerror(code) : detail);
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return absl::DeadlineExceededError(message);
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return absl::InvalidArgumentError(message);
    case CURLE_OUT_OF_MEMORY:
      return absl::ResourceExhaustedError(message);
    case CURLE_PEER_FAILED_VERIFICATION:  // the server's certificate: a setting to fix, not a blip
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return absl::FailedPreconditionError(message);
    case CURLE_ABORTED_BY_CALLBACK:
      return absl::CancelledError(message);
    default:  // refused, reset, name not resolved, a transfer cut short: the server is not there now
      return absl::UnavailableError(message);
  }
}

}  // namespace assay
