#include "common/s3/s3_signer.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/s3/s3_transport.h"

namespace assay {
namespace {

std::string Hmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), out, &length);
  return std::string(reinterpret_cast<const char*>(out), length);
}

std::string AmzDate(absl::Time t) { return absl::FormatTime("%Y%m%dT%H%M%SZ", t, absl::UTCTimeZone()); }

// The Host header of the endpoint: its authority, without the scheme's default port.
std::string HostOf(const S3Location& location) {
  absl::string_view rest = location.endpoint;
  const bool https = absl::ConsumePrefix(&rest, "https://");
  if (!https) absl::ConsumePrefix(&rest, "http://");
  if (absl::EndsWith(rest, https ? ":443" : ":80")) rest.remove_suffix(https ? 4 : 3);
  return std::string(rest);
}

std::string EncodedQuery(const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  for (const auto& [name, value] : query) encoded.emplace_back(S3UriEncode(name, false), S3UriEncode(value, false));
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) absl::StrAppend(&out, out.empty() ? "" : "&", name, "=", value);
  return out;
}

// What every request for one object signs: its method, host, path-style path, time and region.
SigV4Input ObjectInput(const S3Location& location, const char* method, absl::string_view key, absl::Time now) {
  SigV4Input input;
  input.method = method;
  input.host = HostOf(location);
  input.path = absl::StrCat("/", location.bucket, "/", key);
  input.time = now;
  input.region = location.region;
  return input;
}

}  // namespace

SigV4Signature SignV4(const SigV4Input& input, const S3Credentials& credentials) {
  std::vector<std::pair<std::string, std::string>> headers = {{"host", input.host}};
  for (const auto& [name, value] : input.headers) {
    headers.emplace_back(absl::AsciiStrToLower(name), std::string(absl::StripAsciiWhitespace(value)));
  }
  std::sort(headers.begin(), headers.end());
  std::string canonical_headers, signed_headers;
  for (const auto& [name, value] : headers) {
    absl::StrAppend(&canonical_headers, name, ":", value, "\n");
    absl::StrAppend(&signed_headers, signed_headers.empty() ? "" : ";", name);
  }
  const std::string canonical_request =
      absl::StrJoin({input.method, S3UriEncode(input.path, /*keep_slash=*/true), EncodedQuery(input.query),
                     canonical_headers, signed_headers, input.payload_hash},
                    "\n");
  const std::string date = absl::FormatTime("%Y%m%d", input.time, absl::UTCTimeZone());
  SigV4Signature out;
  out.scope = absl::StrCat(date, "/", input.region, "/", input.service, "/aws4_request");
  const std::string string_to_sign =
      absl::StrJoin({std::string("AWS4-HMAC-SHA256"), AmzDate(input.time), out.scope, Sha256Hex(canonical_request)}, "\n");
  std::string key = Hmac(absl::StrCat("AWS4", credentials.secret_access_key), date);
  key = Hmac(key, input.region);
  key = Hmac(key, input.service);
  key = Hmac(key, "aws4_request");
  out.signature = absl::BytesToHexString(Hmac(key, string_to_sign));
  out.signed_headers = std::move(signed_headers);
  return out;
}

SignedS3Request PresignGet(const S3Location& location, const S3Credentials& credentials, absl::string_view key,
                           absl::Time now, absl::Duration expires) {
  SigV4Input input = ObjectInput(location, "GET", key, now);
  input.payload_hash = "UNSIGNED-PAYLOAD";
  const std::string date = absl::FormatTime("%Y%m%d", now, absl::UTCTimeZone());
  input.query = {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
                 {"X-Amz-Credential",
                  absl::StrCat(credentials.access_key_id, "/", date, "/", location.region, "/s3/aws4_request")},
                 {"X-Amz-Date", AmzDate(now)},
                 {"X-Amz-Expires", absl::StrCat(std::clamp<int64_t>(absl::ToInt64Seconds(expires), 1, 604800))},
                 {"X-Amz-SignedHeaders", "host"}};
  if (!credentials.session_token.empty()) input.query.emplace_back("X-Amz-Security-Token", credentials.session_token);
  const SigV4Signature signature = SignV4(input, credentials);
  SignedS3Request out;
  out.method = "GET";
  out.url = absl::StrCat(location.endpoint, S3UriEncode(input.path, true), "?", EncodedQuery(input.query),
                         "&X-Amz-Signature=", signature.signature);
  return out;
}

SignedS3Request SignPut(const S3Location& location, const S3Credentials& credentials, absl::string_view key,
                        absl::string_view sha256_hex, absl::Time now) {
  SigV4Input input = ObjectInput(location, "PUT", key, now);
  input.payload_hash = std::string(sha256_hex);
  input.headers = {{"x-amz-content-sha256", input.payload_hash}, {"x-amz-date", AmzDate(now)}};
  if (!credentials.session_token.empty()) input.headers.emplace_back("x-amz-security-token", credentials.session_token);
  const SigV4Signature signature = SignV4(input, credentials);
  SignedS3Request out;
  out.method = "PUT";
  out.url = absl::StrCat(location.endpoint, S3UriEncode(input.path, true));
  out.headers = input.headers;
  out.headers.emplace_back(
      "Authorization", absl::StrCat("AWS4-HMAC-SHA256 Credential=", credentials.access_key_id, "/", signature.scope,
                                    ", SignedHeaders=", signature.signed_headers, ", Signature=", signature.signature));
  return out;
}

}  // namespace assay
