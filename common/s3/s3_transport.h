// One signed HTTP exchange with an S3 server, over libcurl, which signs it (SigV4, CURLOPT_AWS_SIGV4).
// Path-style URLs (ENDPOINT/BUCKET/KEY): they work with every S3-compatible server and need no DNS
// name per bucket. libcurl 7.88 signs the query and the path as they are, so the URL is written
// canonical already: every parameter as name=value (also `uploads=`), sorted, AWS-encoded. Every
// request carries x-amz-content-sha256, the hash of its body, which servers check against the body.
//
// At most `max_connections` exchanges run at once: each holds one of a bounded set of libcurl
// handles, which keep their connection open between exchanges. A caller past the cap waits for a
// handle, up to its deadline.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/s3/s3_location.h"

namespace assay {

struct S3Request {
  std::string method = "GET";  // GET, HEAD, PUT, POST or DELETE
  std::string key;             // the whole object key ("" for a request on the bucket)
  std::vector<std::pair<std::string, std::string>> query;    // not encoded yet
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Range, Content-MD5)
  absl::string_view body;                                    // PUT and POST; must outlive the call
  std::string content_type = "application/octet-stream";
};

struct S3Response {
  int status = 0;
  std::string body;
  std::string etag;             // the ETag header, quotes included
  int64_t content_length = -1;  // the Content-Length header, -1 without one
};

// AWS's URI encoding: A-Z a-z 0-9 - _ . ~ kept, every other byte %XX (uppercase); '/' kept when
// `keep_slash` (object keys in the path), encoded otherwise (query values).
std::string S3UriEncode(absl::string_view text, bool keep_slash);
// ENDPOINT/BUCKET[/KEY][?QUERY] with the query sorted and encoded as SigV4's canonical form wants it.
std::string S3Url(const S3Location& location, const S3Request& request);

std::string Sha256Hex(absl::string_view data);
// libcurl's global set-up, once per process, before the first handle.
void CurlGlobalInit();
std::string Md5Base64(absl::string_view data);  // for Content-MD5

class S3Transport {
 public:
  S3Transport(S3Location location, S3Credentials credentials, int max_connections, absl::Duration connect_timeout);
  ~S3Transport();
  S3Transport(const S3Transport&) = delete;
  S3Transport& operator=(const S3Transport&) = delete;

  // Sends `request` once, giving up at `deadline`. The server's answer whatever its status; an error
  // (StatusFromCurl) only when there was none.
  absl::StatusOr<S3Response> Send(const S3Request& request, absl::Time deadline);

  const S3Location& location() const { return location_; }

 private:
  // A libcurl handle (CURL*) of the pool, or DEADLINE_EXCEEDED when none came free in time.
  absl::StatusOr<void*> Acquire(absl::Time deadline);
  void Release(void* handle);
  absl::StatusOr<S3Response> Perform(void* handle, const S3Request& request, absl::Time deadline);

  const S3Location location_;
  const S3Credentials credentials_;
  const int max_connections_;
  const absl::Duration connect_timeout_;
  const std::string sigv4_;  // "aws:amz:REGION:s3"

  absl::Mutex mu_;
  std::vector<void*> idle_ ABSL_GUARDED_BY(mu_);
  int in_use_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace assay
