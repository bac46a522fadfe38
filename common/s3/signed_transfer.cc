#include "common/s3/signed_transfer.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/s3/curl_handles.h"
#include "common/s3/curl_loader.h"
#include "common/s3/s3_status.h"
#include "common/s3/s3_transport.h"

namespace assay {
namespace {

// A body to `sink`, unless the answer is an error: then kept (at most 64 KiB) for its message.
struct GetState {
  const std::function<absl::Status(absl::string_view)>* sink = nullptr;
  long http_status = 0;
  CURL* curl = nullptr;
  std::string error_body;
  absl::Status sink_status;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* state = static_cast<GetState*>(user);
  const size_t n = size * count;
  if (state->http_status == 0) curl_easy_getinfo(state->curl, CURLINFO_RESPONSE_CODE, &state->http_status);
  if (state->http_status / 100 != 2) {
    state->error_body.append(data, std::min<size_t>(n, 65536 - std::min<size_t>(65536, state->error_body.size())));
    return n;
  }
  state->sink_status = (*state->sink)(absl::string_view(data, n));
  return state->sink_status.ok() ? n : 0;  // 0 stops the transfer
}

// The body: from `fd` when it is one, from `data` otherwise.
struct PutState {
  int fd = -1;
  absl::string_view data;
  int64_t left = 0;
  std::string error_body;
};

size_t OnRead(char* buffer, size_t size, size_t count, void* user) {
  auto* state = static_cast<PutState*>(user);
  const size_t want = std::min<int64_t>(static_cast<int64_t>(size * count), state->left);
  if (want == 0) return 0;
  if (state->fd < 0) {
    std::memcpy(buffer, state->data.data(), want);
    state->data.remove_prefix(want);
    state->left -= static_cast<int64_t>(want);
    return want;
  }
  ssize_t n;
  do {
    n = ::read(state->fd, buffer, want);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return CURL_READFUNC_ABORT;  // the file ended early or failed: never a short body
  state->left -= n;
  return static_cast<size_t>(n);
}

size_t KeepError(char* data, size_t size, size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() < 65536) body->append(data, std::min<size_t>(size * count, 65536 - body->size()));
  return size * count;
}

std::string HostOf(const std::string& url) {
  const size_t start = url.find("://");
  const size_t from = start == std::string::npos ? 0 : start + 3;
  return url.substr(from, url.find('/', from) - from);
}

// What both directions set: the URL, the signed headers, the deadline, no redirects or signals.
CurlHeaders Prepare(CURL* c, const SignedS3Request& request, absl::Time deadline,
                                                   char* error) {
  CurlHeaders headers;
  for (const auto& [name, value] : request.headers) {
    curl_slist* appended = curl_slist_append(headers.get(), absl::StrCat(name, ": ", value).c_str());
    if (appended != nullptr) {
      (void)headers.release();
      headers.reset(appended);
    }
  }
  const int64_t timeout_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(deadline - absl::Now()));
  curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  return headers;
}

}  // namespace

absl::Status SignedGet(const SignedS3Request& request, int64_t offset,
                       const std::function<absl::Status(absl::string_view)>& sink, absl::Time deadline) {
  if (absl::Status ready = CurlReady(); !ready.ok()) return ready;
  CurlGlobalInit();  // before the first handle: curl_easy_init's own is not thread-safe
  CurlEasy c(curl_easy_init());
  if (!c) return absl::ResourceExhaustedError("libcurl could not make a handle");
  char error[CURL_ERROR_SIZE] = {0};
  SignedS3Request get = request;
  if (offset > 0) get.headers.emplace_back("Range", absl::StrCat("bytes=", offset, "-"));
  auto headers = Prepare(c.get(), get, deadline, error);
  GetState state;
  state.sink = &sink;
  state.curl = c.get();
  curl_easy_setopt(c.get(), CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &state);
  const std::string what = "signed GET";
  const CURLcode code = curl_easy_perform(c.get());
  if (!state.sink_status.ok()) return state.sink_status;
  if (code != CURLE_OK) return StatusFromCurl(code, error, what, HostOf(request.url));
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  if (offset > 0 && status == 200) {
    return absl::InternalError("signed GET: the server ignored the Range header and sent the whole object");
  }
  return StatusFromHttp(static_cast<int>(status), state.error_body, what, HostOf(request.url));
}

namespace {

absl::Status Put(const SignedS3Request& request, PutState state, absl::Time deadline) {
  const int64_t size = state.left;
  if (absl::Status ready = CurlReady(); !ready.ok()) return ready;
  CurlGlobalInit();  // before the first handle: curl_easy_init's own is not thread-safe
  CurlEasy c(curl_easy_init());
  if (!c) return absl::ResourceExhaustedError("libcurl could not make a handle");
  char error[CURL_ERROR_SIZE] = {0};
  SignedS3Request put = request;
  put.headers.emplace_back("Content-Type", "application/octet-stream");
  put.headers.emplace_back("Expect", "");  // no 100-continue round trip
  auto headers = Prepare(c.get(), put, deadline, error);
  curl_easy_setopt(c.get(), CURLOPT_UPLOAD, 1L);
  curl_easy_setopt(c.get(), CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size));
  curl_easy_setopt(c.get(), CURLOPT_READFUNCTION, OnRead);
  curl_easy_setopt(c.get(), CURLOPT_READDATA, &state);
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, KeepError);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &state.error_body);
  const std::string what = "signed PUT";
  const CURLcode code = curl_easy_perform(c.get());
  if (code != CURLE_OK) return StatusFromCurl(code, error, what, HostOf(request.url));
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  return StatusFromHttp(static_cast<int>(status), state.error_body, what, HostOf(request.url));
}

}  // namespace

absl::Status SignedPut(const SignedS3Request& request, int fd, int64_t size, absl::Time deadline) {
  if (::lseek(fd, 0, SEEK_SET) != 0) return absl::InternalError("signed PUT: the file cannot be read from its start");
  PutState state;
  state.fd = fd;
  state.left = size;
  return Put(request, std::move(state), deadline);
}

absl::Status SignedPut(const SignedS3Request& request, absl::string_view body, absl::Time deadline) {
  PutState state;
  state.data = body;
  state.left = static_cast<int64_t>(body.size());
  return Put(request, std::move(state), deadline);
}

}  // namespace assay
