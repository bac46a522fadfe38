#include "common/s3/s3_location.h"

#include <stdlib.h>

#include <fstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace assay {

namespace {

constexpr absl::string_view kForm = "expected s3://BUCKET/PREFIX?endpoint=URL&region=R";

absl::Status Bad(absl::string_view text, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("S3 location '", text, "': ", what, " (", kForm, ")"));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; InvalidArgument on a broken one.
absl::StatusOr<std::string> PercentDecode(absl::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return absl::InvalidArgumentError("a '%' without two hex digits");
    const int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return absl::InvalidArgumentError("a '%' without two hex digits");
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// The prefix: segments without control characters, "." or "..", empty ones (a doubled '/') refused.
absl::StatusOr<std::string> CheckPrefix(absl::string_view text, absl::string_view prefix) {
  prefix = absl::StripSuffix(prefix, "/");
  if (prefix.empty()) return std::string();
  for (absl::string_view segment : absl::StrSplit(prefix, '/')) {
    if (segment.empty()) return Bad(text, absl::StrCat("the prefix '", prefix, "' has an empty segment (a doubled '/')"));
    if (segment == "." || segment == "..") {
      return Bad(text, absl::StrCat("the prefix '", prefix, "' has a '", segment, "' segment"));
    }
    for (char c : segment) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '#') {
        return Bad(text, absl::StrCat("the prefix '", prefix, "' has a control character or '#'"));
      }
    }
  }
  return std::string(prefix);
}

// http(s)://HOST[:PORT] with nothing after it but an optional '/'.
absl::StatusOr<std::string> CheckEndpoint(absl::string_view text, absl::string_view endpoint) {
  absl::string_view rest = endpoint;
  if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) {
    return Bad(text, absl::StrCat("endpoint '", endpoint, "' must start with http:// or https://"));
  }
  rest = absl::StripSuffix(rest, "/");
  if (rest.empty()) return Bad(text, absl::StrCat("endpoint '", endpoint, "' has no host"));
  for (char c : rest) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != ':' && c != '[' &&
        c != ']' && c != '_') {
      return Bad(text, absl::StrCat("endpoint '", endpoint, "' must be scheme://HOST[:PORT] with no path, user or query"));
    }
  }
  return std::string(absl::StripSuffix(endpoint, "/"));
}

absl::Status CheckRegion(absl::string_view text, absl::string_view region) {
  if (region.empty()) return Bad(text, "region is empty");
  for (char c : region) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) && !absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        c != '-') {
      return Bad(text, absl::StrCat("region '", region, "' may hold only lowercase letters, digits and '-'"));
    }
  }
  return absl::OkStatus();
}

// endpoint=...&region=...: each key once, no other key.
absl::Status ParseQuery(absl::string_view text, absl::string_view query, S3Location& location) {
  bool seen_endpoint = false, seen_region = false;
  for (absl::string_view pair : absl::StrSplit(query, '&')) {
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    if (eq == absl::string_view::npos) return Bad(text, absl::StrCat("'", pair, "' is not KEY=VALUE"));
    const absl::string_view key = pair.substr(0, eq);
    absl::StatusOr<std::string> value = PercentDecode(pair.substr(eq + 1));
    if (!value.ok()) return Bad(text, absl::StrCat("the value of '", key, "' has ", value.status().message()));
    bool& seen = key == "endpoint" ? seen_endpoint : seen_region;
    if (key != "endpoint" && key != "region") {
      return Bad(text, absl::StrCat("unknown parameter '", key, "' (known: endpoint, region)"));
    }
    if (seen) return Bad(text, absl::StrCat("'", key, "' is given twice"));
    seen = true;
    if (key == "region") {
      if (absl::Status s = CheckRegion(text, *value); !s.ok()) return s;
      location.region = *value;
    } else {
      absl::StatusOr<std::string> endpoint = CheckEndpoint(text, *value);
      if (!endpoint.ok()) return endpoint.status();
      location.endpoint = *endpoint;
    }
  }
  if (!seen_endpoint) location.endpoint = absl::StrCat("https://s3.", location.region, ".amazonaws.com");
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckBucketName(absl::string_view bucket) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("bucket name '", bucket, "' ", why));
  };
  if (bucket.size() < 3 || bucket.size() > 63) return bad("must be 3 to 63 characters long");
  for (char c : bucket) {
    if (!absl::ascii_islower(static_cast<unsigned char>(c)) && !absl::ascii_isdigit(static_cast<unsigned char>(c)) &&
        c != '.' && c != '-') {
      return bad("may hold only lowercase letters, digits, '.' and '-'");
    }
  }
  auto alnum = [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); };
  if (!alnum(bucket.front()) || !alnum(bucket.back())) return bad("must start and end with a letter or digit");
  if (absl::StrContains(bucket, "..")) return bad("must not hold \"..\"");
  return absl::OkStatus();
}

absl::StatusOr<S3Location> ParseS3Location(absl::string_view text) {
  absl::string_view rest = text;
  if (!absl::ConsumePrefix(&rest, "s3://")) return Bad(text, "it does not start with s3://");
  absl::string_view query;
  if (const size_t q = rest.find('?'); q != absl::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  const size_t slash = rest.find('/');
  const absl::string_view bucket = rest.substr(0, slash);
  if (bucket.empty()) return Bad(text, "the bucket is missing");
  if (absl::Status s = CheckBucketName(bucket); !s.ok()) return Bad(text, s.message());
  S3Location location;
  location.bucket = std::string(bucket);
  if (slash != absl::string_view::npos) {
    absl::StatusOr<std::string> prefix = CheckPrefix(text, rest.substr(slash + 1));
    if (!prefix.ok()) return prefix.status();
    location.prefix = *prefix;
  }
  if (absl::Status s = ParseQuery(text, query, location); !s.ok()) return s;
  return location;
}

std::string S3Location::Key(absl::string_view name) const {
  return prefix.empty() ? std::string(name) : absl::StrCat(prefix, "/", name);
}

std::string S3Location::NameOf(absl::string_view key) const {
  if (prefix.empty()) return std::string(key);
  if (key.size() <= prefix.size() + 1 || !absl::StartsWith(key, prefix) || key[prefix.size()] != '/') return "";
  return std::string(key.substr(prefix.size() + 1));
}

std::string S3Location::Host() const {
  absl::string_view host = endpoint;
  if (!absl::ConsumePrefix(&host, "https://")) absl::ConsumePrefix(&host, "http://");
  return std::string(host);
}

std::string S3Location::ToString() const {
  return absl::StrCat("s3://", bucket, prefix.empty() ? "" : "/", prefix, "?endpoint=", endpoint, "&region=", region);
}

std::string S3Credentials::Describe() const { return absl::StrCat("access key ", access_key_id, " (secret hidden)"); }

absl::StatusOr<S3Credentials> S3CredentialsFromEnvironment() {
  S3Credentials credentials;
  for (auto [name, field] : {std::pair{"AWS_ACCESS_KEY_ID", &credentials.access_key_id},
                             std::pair{"AWS_SECRET_ACCESS_KEY", &credentials.secret_access_key}}) {
    const char* value = ::getenv(name);
    if (value == nullptr || *value == '\0') {
      return absl::FailedPreconditionError(absl::StrCat(
          name, " is ", value == nullptr ? "not set" : "empty",
          ": S3 credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"));
    }
    *field = value;
  }
  if (const char* token = ::getenv("AWS_SESSION_TOKEN"); token != nullptr) credentials.session_token = token;
  return credentials;
}

absl::StatusOr<S3Credentials> S3CredentialsFromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::FailedPreconditionError(absl::StrCat("cannot read the S3 credentials file ", path));
  S3Credentials credentials;
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#' || text[0] == ';' || text[0] == '[') continue;
    const size_t eq = text.find('=');
    if (eq == absl::string_view::npos) continue;
    const std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text.substr(0, eq)));
    const std::string value(absl::StripAsciiWhitespace(text.substr(eq + 1)));
    std::string* field = key == "aws_access_key_id"       ? &credentials.access_key_id
                         : key == "aws_secret_access_key" ? &credentials.secret_access_key
                         : key == "aws_session_token"     ? &credentials.session_token
                                                          : nullptr;
    if (field != nullptr && field->empty()) *field = value;
  }
  for (auto [name, field] : {std::pair{"aws_access_key_id", &credentials.access_key_id},
                             std::pair{"aws_secret_access_key", &credentials.secret_access_key}}) {
    if (field->empty()) {
      return absl::FailedPreconditionError(absl::StrCat("the S3 credentials file ", path, " has no ", name));
    }
  }
  return credentials;
}

}  // namespace assay
