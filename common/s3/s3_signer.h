// Requests to the bucket that someone else sends: AWS Signature Version 4 computed here, so the
// coordinator can hand a worker a request for one object that the worker sends to the bucket itself
// (the coordinator's own requests are signed by libcurl, s3_transport.h).
//
// - A presigned GET is a URL alone (query-string authentication), valid until it expires; a Range
//   header may be added to it (only `host` is signed), so a broken download can resume.
// - A signed PUT carries its signature in headers, and among them x-amz-content-sha256: the SHA-256
//   of the body it allows. The server hashes the body it receives and refuses one that differs, so a
//   PUT signed for a blob's digest can only ever write that blob's bytes. The server accepts it for
//   15 minutes after its x-amz-date.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/s3/s3_location.h"

namespace assay {

struct SignedS3Request {
  std::string method;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // to send as they are (Host aside)
};

// The parts of one request that SigV4 signs: the canonical request's inputs and the scope.
struct SigV4Input {
  std::string method;
  std::string host;  // as the Host header carries it: host, and :port when not the scheme's default
  std::string path;  // not encoded yet: "/BUCKET/KEY"
  std::vector<std::pair<std::string, std::string>> query;    // not encoded yet
  std::vector<std::pair<std::string, std::string>> headers;  // signed, besides host
  std::string payload_hash;                                  // hex SHA-256, or "UNSIGNED-PAYLOAD"
  absl::Time time;
  std::string region;
  std::string service = "s3";
};

// The hex signature of `input` ("AWS4-HMAC-SHA256"), and the list of signed header names.
struct SigV4Signature {
  std::string signature;
  std::string signed_headers;  // "host;x-amz-content-sha256;x-amz-date"
  std::string scope;           // "20130524/us-east-1/s3/aws4_request"
};
SigV4Signature SignV4(const SigV4Input& input, const S3Credentials& credentials);

// A GET of the object `key` (the whole key, prefix included) that anyone holding the URL may send
// until `now + expires` (at most 7 days, S3's limit).
SignedS3Request PresignGet(const S3Location& location, const S3Credentials& credentials, absl::string_view key,
                           absl::Time now, absl::Duration expires);

// A PUT of the object `key` whose body must hash to `sha256_hex`, valid 15 minutes from `now`.
SignedS3Request SignPut(const S3Location& location, const S3Credentials& credentials, absl::string_view key,
                        absl::string_view sha256_hex, absl::Time now);

}  // namespace assay
