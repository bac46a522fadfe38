#include "common/s3/s3_transport.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/s3/curl_handles.h"
#include "common/s3/curl_loader.h"
#include "common/s3/s3_status.h"

namespace assay {

namespace {

bool Append(CurlHeaders& headers, const std::string& line) {
  curl_slist* appended = curl_slist_append(headers.get(), line.c_str());
  if (appended == nullptr) return false;
  (void)headers.release();  // curl_slist_append extended the list it was given
  headers.reset(appended);
  return true;
}

size_t KeepBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// Reads ETag and Content-Length; a new status line (after an interim answer) starts over.
size_t KeepHeader(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<S3Response*>(user);
  const absl::string_view line(data, size * count);
  if (absl::StartsWith(line, "HTTP/")) {
    response->etag.clear();
    response->content_length = -1;
  }
  const size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    const std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (name == "etag") response->etag = std::string(value);
    if (name == "content-length" && !absl::SimpleAtoi(value, &response->content_length)) response->content_length = -1;
  }
  return size * count;
}

std::string Digest(const EVP_MD* md, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(data.data(), data.size(), out, &size, md, nullptr);
  return std::string(reinterpret_cast<const char*>(out), size);
}


absl::Status SetCurlHeaders(const S3Request& request, const std::string& session_token, CurlHeaders& headers) {
  // libcurl 7.88 signs every header given here, so none may be one it then drops (an empty
  // "Expect:" to turn 100-continue off would be signed and not sent).
  std::vector<std::string> lines = {absl::StrCat("x-amz-content-sha256: ", Sha256Hex(request.body))};
  if (!session_token.empty()) lines.push_back(absl::StrCat("x-amz-security-token: ", session_token));
  if (request.method == "PUT" || request.method == "POST") lines.push_back("Content-Type: " + request.content_type);
  for (const auto& [name, value] : request.headers) lines.push_back(absl::StrCat(name, ": ", value));
  for (const std::string& line : lines) {
    if (!Append(headers, line)) return absl::ResourceExhaustedError("libcurl could not add a header");
  }
  return absl::OkStatus();
}

void SetMethod(CURL* c, const S3Request& request) {
  if (request.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    // The body from memory, so that libcurl hashes exactly what it sends when it signs.
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
}

}  // namespace

void CurlGlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string S3UriEncode(absl::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (absl::ascii_isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && keep_slash)) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    }
  }
  return out;
}

std::string S3Url(const S3Location& location, const S3Request& request) {
  std::string url = absl::StrCat(location.endpoint, "/", location.bucket);
  if (!request.key.empty()) absl::StrAppend(&url, "/", S3UriEncode(request.key, /*keep_slash=*/true));
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [name, value] : request.query) {
    query.emplace_back(S3UriEncode(name, false), S3UriEncode(value, false));
  }
  std::sort(query.begin(), query.end());  // SigV4 sorts by the encoded names
  for (size_t i = 0; i < query.size(); ++i) {
    absl::StrAppend(&url, i == 0 ? "?" : "&", query[i].first, "=", query[i].second);
  }
  return url;
}

std::string Sha256Hex(absl::string_view data) {
  return absl::BytesToHexString(Digest(EVP_sha256(), data));
}

std::string Md5Base64(absl::string_view data) { return absl::Base64Escape(Digest(EVP_md5(), data)); }

S3Transport::S3Transport(S3Location location, S3Credentials credentials, int max_connections,
                         absl::Duration connect_timeout)
    : location_(std::move(location)),
      credentials_(std::move(credentials)),
      max_connections_(std::max(1, max_connections)),
      connect_timeout_(connect_timeout),
      sigv4_(absl::StrCat("aws:amz:", location_.region, ":s3")) {
  CurlGlobalInit();
}

S3Transport::~S3Transport() {
  absl::MutexLock lock(&mu_);
  for (void* handle : idle_) curl_easy_cleanup(static_cast<CURL*>(handle));
  idle_.clear();
}

absl::StatusOr<void*> S3Transport::Acquire(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto free = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_use_ < max_connections_; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&free), deadline)) {
    return absl::DeadlineExceededError(absl::StrCat("S3 on ", location_.Host(), ": all ", max_connections_,
                                                    " connections stayed busy until the request's deadline"));
  }
  ++in_use_;
  if (!idle_.empty()) {
    void* handle = idle_.back();
    idle_.pop_back();
    return handle;
  }
  CURL* handle = curl_easy_init();
  if (handle == nullptr) {
    --in_use_;
    if (absl::Status ready = CurlReady(); !ready.ok()) return ready;
    return absl::ResourceExhaustedError("libcurl could not make a handle");
  }
  return static_cast<void*>(handle);
}

void S3Transport::Release(void* handle) {
  absl::MutexLock lock(&mu_);
  --in_use_;
  idle_.push_back(handle);
}

absl::StatusOr<S3Response> S3Transport::Send(const S3Request& request, absl::Time deadline) {
  absl::StatusOr<void*> handle = Acquire(deadline);
  if (!handle.ok()) return handle.status();
  const absl::Time start = absl::Now();
  absl::StatusOr<S3Response> response = Perform(*handle, request, deadline);
  Release(*handle);
  spdlog::debug("S3 {} {}/{}: {} in {}", request.method, location_.bucket, request.key,
                response.ok() ? absl::StrCat("HTTP ", response->status) : response.status().ToString(),
                absl::FormatDuration(absl::Now() - start));
  return response;
}

absl::StatusOr<S3Response> S3Transport::Perform(void* handle, const S3Request& request, absl::Time deadline) {
  CURL* c = static_cast<CURL*>(handle);
  curl_easy_reset(c);  // options only: the handle keeps its open connection
  const std::string what = absl::StrCat(request.method, " ", location_.bucket, "/", request.key);
  CurlHeaders headers;
  if (absl::Status s = SetCurlHeaders(request, credentials_.session_token, headers); !s.ok()) return s;
  const std::string url = S3Url(location_, request);
  const int64_t timeout_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()));
  S3Response response;
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4_.c_str());
  curl_easy_setopt(c, CURLOPT_USERNAME, credentials_.access_key_id.c_str());
  curl_easy_setopt(c, CURLOPT_PASSWORD, credentials_.secret_access_key.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(connect_timeout_)));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, KeepBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, KeepHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &response);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  SetMethod(c, request);
  const CURLcode code = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);  // `error` goes out of scope
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  if (code != CURLE_OK) return StatusFromCurl(code, error, what, location_.Host());
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  response.status = static_cast<int>(status);
  return response;
}

}  // namespace assay
