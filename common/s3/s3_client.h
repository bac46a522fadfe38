// A client of an S3-compatible object store (AWS S3, MinIO, Ceph RGW) for the blob stores above it.
// It speaks in names relative to the location's prefix: PutObject("ab/cd") writes the key
// "PREFIX/ab/cd" in the location's bucket, and ListObjects gives names back the same way.
//
// Every call returns a status (no exception leaves it); the codes follow s3_status.h. Each request
// has the retry policy's attempt_timeout as its deadline, and a request that failed with a
// retryable code (UNAVAILABLE, DEADLINE_EXCEEDED, ...) is sent again through the Retrier until the
// policy's overall_timeout. Reads return exactly the bytes the server holds now: nothing is cached,
// and checking them against a digest is the caller's job. Thread-safe; at most
// `max_connections` requests are in flight at once. The secret key is never logged.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/base/clock.h"
#include "common/base/retrier.h"
#include "common/s3/s3_location.h"
#include "common/s3/s3_metrics.h"
#include "common/s3/s3_xml.h"

namespace assay {

class S3Transport;
struct S3Request;
struct S3Response;

struct S3ClientOptions {
  int max_connections = 16;
  absl::Duration connect_timeout = absl::Seconds(5);
  // attempt_timeout bounds each request, a whole object or part included (size parts to fit it);
  // no retry starts after overall_timeout.
  RetryPolicy retry;
};

struct S3ObjectInfo {
  int64_t size = 0;
  std::string etag;
};

// The fate of one name in a multi-object delete.
struct S3KeyStatus {
  std::string name;
  absl::Status status;
};

class S3Client {
 public:
  static constexpr int kMaxDeleteBatch = 1000;  // S3's limit of keys in one multi-object delete
  static constexpr int kMaxParts = 10000;       // and of parts in one multipart upload
  static constexpr int64_t kMaxPutBytes = int64_t{5} << 30;  // and of one PUT's body

  S3Client(S3Location location, S3Credentials credentials, S3ClientOptions options = {},
           const Clock* clock = nullptr);
  // Parses `location` and reads the credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
  static absl::StatusOr<std::unique_ptr<S3Client>> FromEnvironment(absl::string_view location,
                                                                   S3ClientOptions options = {});
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  const S3Location& location() const { return location_; }
  const S3ClientMetrics& metrics() const { return metrics_; }
  // For signing requests that others send (s3_signer.h).
  const S3Credentials& credentials() const { return credentials_; }

  // Creates the location's bucket (for tests and setup); OK when this account owns it already.
  absl::Status CreateBucket();

  absl::Status PutObject(absl::string_view name, absl::string_view data);
  absl::StatusOr<std::string> GetObject(absl::string_view name);
  // `length` bytes from `offset` (fewer when the object ends first); OUT_OF_RANGE when `offset` is
  // at or past its end.
  absl::StatusOr<std::string> GetObjectRange(absl::string_view name, int64_t offset, int64_t length);
  // NOT_FOUND when there is no such object.
  absl::StatusOr<S3ObjectInfo> HeadObject(absl::string_view name);

  // Every object whose name starts with `name_prefix`, in key order, a page (of at most `page_size`)
  // at a time to `on_page`; an error from `on_page` stops the listing and is returned.
  absl::Status ListObjects(absl::string_view name_prefix,
                           const std::function<absl::Status(std::vector<S3Object> page)>& on_page,
                           int page_size = 1000);
  // All of them at once.
  absl::StatusOr<std::vector<S3Object>> ListAllObjects(absl::string_view name_prefix, int page_size = 1000);

  // Deletes the objects, kMaxDeleteBatch names per request. Fails when a request failed; otherwise
  // the names the server refused, each with its error (absent objects count as deleted).
  absl::StatusOr<std::vector<S3KeyStatus>> DeleteObjects(const std::vector<std::string>& names);

  // Multipart upload: parts numbered from 1, each but the last at least 5 MiB on AWS.
  absl::StatusOr<std::string> CreateMultipartUpload(absl::string_view name);  // the upload id
  absl::StatusOr<std::string> UploadPart(absl::string_view name, absl::string_view upload_id, int part_number,
                                         absl::string_view data);  // the part's ETag
  absl::Status CompleteMultipartUpload(absl::string_view name, absl::string_view upload_id,
                                       const std::vector<S3Part>& parts);
  absl::Status AbortMultipartUpload(absl::string_view name, absl::string_view upload_id);
  // All four in one: `data` in parts of `part_size` bytes, aborted when a step fails.
  absl::Status PutObjectMultipart(absl::string_view name, absl::string_view data, int64_t part_size);

 private:
  // Sends `request` until it succeeds or fails for good (the retry policy): a 2xx answer, or the error.
  // `error_in_ok`: a 200 answer may still carry an <Error> (CompleteMultipartUpload).
  absl::StatusOr<S3Response> Send(const S3Request& request, bool error_in_ok = false);
  absl::StatusOr<std::vector<S3KeyStatus>> DeleteBatch(const std::vector<std::string>& names, size_t begin,
                                                       size_t end);

  const S3Location location_;
  const S3Credentials credentials_;
  S3ClientMetrics metrics_;
  std::unique_ptr<S3Transport> transport_;
  Retrier retrier_;
};

}  // namespace assay
