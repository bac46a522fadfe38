// One HTTP request over libcurl, for the coordinator's outgoing calls (notifications): no redirects
// followed, http and https only, a deadline for the whole exchange, and a way to give up early.
#pragma once

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace assay {

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::string body;  // at most kMaxResponseBytes of it
  static constexpr size_t kMaxResponseBytes = 4096;
};

struct HttpOptions {
  absl::Duration timeout = absl::Seconds(10);  // the whole exchange
  std::string ca_file;                         // "": the system's certificates
  const std::atomic<bool>* cancel = nullptr;   // set: the exchange stops soon (UNAVAILABLE)
};

// The server's answer, whatever its status; UNAVAILABLE when there was none (refused, timed out,
// TLS failed), the reason in the message.
absl::StatusOr<HttpResponse> SendHttp(const HttpRequest& request, const HttpOptions& options);

}  // namespace assay
