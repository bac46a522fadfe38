// Where a store's objects live in an S3-compatible object store, as one string an operator writes:
//   s3://BUCKET/PREFIX?endpoint=URL&region=R
// and the credentials that sign requests to it. Parsing rejects what S3 would refuse later (a bucket
// name it does not allow, an endpoint that is not http(s)://HOST[:PORT]) with a message naming the
// bad part, so a typo fails at startup instead of on the first request.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace assay {

struct S3Location {
  std::string bucket;
  std::string prefix;    // "" or segments joined by '/', no leading or trailing '/'
  std::string endpoint;  // scheme://host[:port], no trailing '/'
  std::string region = "us-east-1";

  // The object key of `name` beneath the prefix ("PREFIX/name", or "name" without a prefix).
  std::string Key(absl::string_view name) const;
  // The name of `key` relative to the prefix, or "" when the key is not beneath it.
  std::string NameOf(absl::string_view key) const;
  // Host (and port) of the endpoint, for error messages.
  std::string Host() const;
  // s3://BUCKET/PREFIX?endpoint=URL&region=R, for logs (holds no secret).
  std::string ToString() const;
};

// Parses an s3:// location. `endpoint` defaults to AWS's regional endpoint
// (https://s3.REGION.amazonaws.com); `region` to us-east-1. Query values may be percent-encoded.
absl::StatusOr<S3Location> ParseS3Location(absl::string_view text);

// A bucket name S3 accepts: 3-63 characters of lowercase letters, digits, '.' and '-', starting and
// ending with a letter or digit, no "..". InvalidArgument naming the fault otherwise.
absl::Status CheckBucketName(absl::string_view bucket);

// The access key pair. The secret never appears in a log line, a status message or ToString().
struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  // Temporary credentials (STS, an instance role) carry a token too: sent with every request as
  // x-amz-security-token, and as secret as the key.
  std::string session_token = {};

  // "AKIA...(secret hidden)", for logs.
  std::string Describe() const;
};

// From AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN when set), as every S3
// tool reads them; FailedPrecondition naming the variable that is missing or empty.
absl::StatusOr<S3Credentials> S3CredentialsFromEnvironment();

// From a file, as AWS's shared credentials file writes them (`aws_access_key_id = ...` and
// `aws_secret_access_key = ...`, and `aws_session_token = ...` when the pair is temporary; `[section]` lines and `#` or `;` comments are skipped; the first
// value of each wins) or as an environment file (`AWS_ACCESS_KEY_ID=...`). Names are matched without
// case. FailedPrecondition naming the file and what it lacks; the secret is never quoted.
absl::StatusOr<S3Credentials> S3CredentialsFromFile(const std::string& path);

}  // namespace assay
