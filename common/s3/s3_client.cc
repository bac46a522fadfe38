#include "common/s3/s3_client.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/base/log_format.h"
#include "common/s3/s3_status.h"
#include "common/s3/s3_transport.h"

namespace assay {

namespace {

S3Request Request(std::string method, std::string key) {
  S3Request request;
  request.method = std::move(method);
  request.key = std::move(key);
  return request;
}

}  // namespace

S3Client::S3Client(S3Location location, S3Credentials credentials, S3ClientOptions options, const Clock* clock)
    : location_(location),
      credentials_(credentials),
      transport_(std::make_unique<S3Transport>(std::move(location), std::move(credentials), options.max_connections,
                                               options.connect_timeout)),
      retrier_(options.retry, clock) {}

S3Client::~S3Client() = default;

absl::StatusOr<std::unique_ptr<S3Client>> S3Client::FromEnvironment(absl::string_view location,
                                                                    S3ClientOptions options) {
  absl::StatusOr<S3Location> parsed = ParseS3Location(location);
  if (!parsed.ok()) return parsed.status();
  absl::StatusOr<S3Credentials> credentials = S3CredentialsFromEnvironment();
  if (!credentials.ok()) return credentials.status();
  spdlog::info("S3 store {} with {}", parsed->ToString(), credentials->Describe());
  return std::make_unique<S3Client>(*std::move(parsed), *std::move(credentials), std::move(options));
}

absl::StatusOr<S3Response> S3Client::Send(const S3Request& request, bool error_in_ok) {
  const std::string what = absl::StrCat(request.method, " ", location_.bucket, "/", request.key);
  const std::string host = location_.Host();
  return retrier_.Call<S3Response>(what, [&](absl::Time deadline) -> absl::StatusOr<S3Response> {
    const absl::Time start = absl::Now();
    absl::StatusOr<S3Response> response = transport_->Send(request, deadline);
    absl::Status status = response.status();
    if (response.ok()) status = StatusFromHttp(response->status, response->body, what, host);
    if (std::optional<S3ErrorBody> error =
            status.ok() && error_in_ok ? ParseS3Error(response->body) : std::nullopt) {
      status = absl::Status(CodeOfS3Error(500, error->code), absl::StrCat("S3 ", what, " on ", host, ": HTTP ",
                                                                          response->status, " carrying ", error->code,
                                                                          ": ", error->message));
    }
    metrics_.Record(request.method, absl::Now() - start, status.code(), static_cast<int64_t>(request.body.size()),
                    response.ok() ? static_cast<int64_t>(response->body.size()) : 0);
    if (!status.ok()) return status;
    return response;
  });
}

absl::Status S3Client::CreateBucket() {
  S3Request request = Request("PUT", "");
  std::string body;
  if (location_.region != "us-east-1") {  // us-east-1 is the default, and AWS refuses it named
    body = absl::StrCat("<CreateBucketConfiguration><LocationConstraint>", location_.region,
                        "</LocationConstraint></CreateBucketConfiguration>");
    request.body = body;
    request.content_type = "application/xml";
  }
  absl::StatusOr<S3Response> response = Send(request);
  if (!response.ok() && absl::StrContains(response.status().message(), "BucketAlreadyOwnedByYou")) {
    return absl::OkStatus();
  }
  return response.status();
}

absl::Status S3Client::PutObject(absl::string_view name, absl::string_view data) {
  S3Request request = Request("PUT", location_.Key(name));
  request.body = data;
  return Send(request).status();
}

absl::StatusOr<std::string> S3Client::GetObject(absl::string_view name) {
  absl::StatusOr<S3Response> response = Send(Request("GET", location_.Key(name)));
  if (!response.ok()) return response.status();
  return std::move(response->body);
}

absl::StatusOr<std::string> S3Client::GetObjectRange(absl::string_view name, int64_t offset, int64_t length) {
  if (offset < 0 || length < 0) {
    return absl::InvalidArgumentError(absl::StrCat("S3 range read of ", name, ": offset ", offset, " and length ",
                                                   length, " must not be negative"));
  }
  if (length == 0) return std::string();
  S3Request request = Request("GET", location_.Key(name));
  request.headers.emplace_back("Range", absl::StrCat("bytes=", offset, "-", offset + length - 1));
  absl::StatusOr<S3Response> response = Send(request);
  if (!response.ok()) return response.status();
  std::string& body = response->body;
  if (response->status == 206) {
    if (static_cast<int64_t>(body.size()) > length) {
      return absl::InternalError(absl::StrCat("S3 range read of ", name, ": ", body.size(), " bytes for ", length));
    }
    return std::move(body);
  }
  // The server ignored the range and sent the whole object.
  if (offset >= static_cast<int64_t>(body.size())) {
    return absl::OutOfRangeError(absl::StrCat("S3 range read of ", name, ": offset ", offset, " is past its end (",
                                              body.size(), " bytes)"));
  }
  return body.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
}

absl::StatusOr<S3ObjectInfo> S3Client::HeadObject(absl::string_view name) {
  absl::StatusOr<S3Response> response = Send(Request("HEAD", location_.Key(name)));
  if (!response.ok()) return response.status();
  if (response->content_length < 0) {
    return absl::InternalError(absl::StrCat("S3 HEAD of ", name, ": the answer has no Content-Length"));
  }
  return S3ObjectInfo{response->content_length, response->etag};
}

absl::Status S3Client::ListObjects(absl::string_view name_prefix,
                                   const std::function<absl::Status(std::vector<S3Object> page)>& on_page,
                                   int page_size) {
  page_size = std::clamp(page_size, 1, 1000);
  std::string token;
  do {
    S3Request request = Request("GET", "");
    request.query = {{"list-type", "2"}, {"prefix", location_.Key(name_prefix)}, {"max-keys", absl::StrCat(page_size)}};
    if (!token.empty()) request.query.emplace_back("continuation-token", token);
    absl::StatusOr<S3Response> response = Send(request);
    if (!response.ok()) return response.status();
    absl::StatusOr<S3ListPage> page = ParseListObjectsV2(response->body);
    if (!page.ok()) return page.status();
    std::vector<S3Object> objects;
    objects.reserve(page->objects.size());
    for (S3Object& object : page->objects) {
      std::string relative = location_.NameOf(object.key);
      if (!relative.empty()) objects.push_back({std::move(relative), object.size});
    }
    if (absl::Status s = on_page(std::move(objects)); !s.ok()) return s;
    token = page->truncated ? page->next_token : "";
  } while (!token.empty());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<S3Object>> S3Client::ListAllObjects(absl::string_view name_prefix, int page_size) {
  std::vector<S3Object> all;
  absl::Status status = ListObjects(
      name_prefix,
      [&](std::vector<S3Object> page) {
        all.insert(all.end(), std::make_move_iterator(page.begin()), std::make_move_iterator(page.end()));
        return absl::OkStatus();
      },
      page_size);
  if (!status.ok()) return status;
  return all;
}

absl::StatusOr<std::vector<S3KeyStatus>> S3Client::DeleteObjects(const std::vector<std::string>& names) {
  std::vector<S3KeyStatus> refused;
  for (size_t begin = 0; begin < names.size(); begin += kMaxDeleteBatch) {
    absl::StatusOr<std::vector<S3KeyStatus>> batch =
        DeleteBatch(names, begin, std::min(names.size(), begin + kMaxDeleteBatch));
    if (!batch.ok()) return batch.status();
    refused.insert(refused.end(), batch->begin(), batch->end());
  }
  return refused;
}

absl::StatusOr<std::vector<S3KeyStatus>> S3Client::DeleteBatch(const std::vector<std::string>& names, size_t begin,
                                                               size_t end) {
  std::vector<std::string> keys;
  for (size_t i = begin; i < end; ++i) keys.push_back(location_.Key(names[i]));
  const std::string body = DeleteRequestBody(keys);
  S3Request request = Request("POST", "");
  request.query = {{"delete", ""}};
  request.body = body;
  request.content_type = "application/xml";
  request.headers.emplace_back("Content-MD5", Md5Base64(body));  // S3 requires it on this call
  absl::StatusOr<S3Response> response = Send(request);
  if (!response.ok()) return response.status();
  absl::StatusOr<std::vector<S3DeleteError>> errors = ParseDeleteResult(response->body);
  if (!errors.ok()) return errors.status();
  std::vector<S3KeyStatus> refused;
  for (const S3DeleteError& error : *errors) {
    const std::string name = location_.NameOf(error.key);
    refused.push_back({name.empty() ? error.key : name,
                       absl::Status(CodeOfS3Error(0, error.code),
                                    absl::StrCat("S3 DELETE ", location_.bucket, "/", error.key, " on ",
                                                 location_.Host(), ": ", error.code, ": ", error.message))});
  }
  return refused;
}

absl::StatusOr<std::string> S3Client::CreateMultipartUpload(absl::string_view name) {
  S3Request request = Request("POST", location_.Key(name));
  request.query = {{"uploads", ""}};
  absl::StatusOr<S3Response> response = Send(request);
  if (!response.ok()) return response.status();
  return ParseUploadId(response->body);
}

absl::StatusOr<std::string> S3Client::UploadPart(absl::string_view name, absl::string_view upload_id, int part_number,
                                                 absl::string_view data) {
  if (part_number < 1 || part_number > kMaxParts) {
    return absl::InvalidArgumentError(absl::StrCat("S3 part number ", part_number, " is not in 1..", kMaxParts));
  }
  S3Request request = Request("PUT", location_.Key(name));
  request.query = {{"partNumber", absl::StrCat(part_number)}, {"uploadId", std::string(upload_id)}};
  request.body = data;
  absl::StatusOr<S3Response> response = Send(request);
  if (!response.ok()) return response.status();
  if (response->etag.empty()) {
    return absl::InternalError(absl::StrCat("S3 part ", part_number, " of ", name, ": the answer has no ETag"));
  }
  return response->etag;
}

absl::Status S3Client::CompleteMultipartUpload(absl::string_view name, absl::string_view upload_id,
                                               const std::vector<S3Part>& parts) {
  const std::string body = CompleteMultipartBody(parts);
  S3Request request = Request("POST", location_.Key(name));
  request.query = {{"uploadId", std::string(upload_id)}};
  request.body = body;
  request.content_type = "application/xml";
  return Send(request, /*error_in_ok=*/true).status();
}

absl::Status S3Client::AbortMultipartUpload(absl::string_view name, absl::string_view upload_id) {
  S3Request request = Request("DELETE", location_.Key(name));
  request.query = {{"uploadId", std::string(upload_id)}};
  return Send(request).status();
}

absl::Status S3Client::PutObjectMultipart(absl::string_view name, absl::string_view data, int64_t part_size) {
  const int64_t size = static_cast<int64_t>(data.size());
  if (part_size <= 0 || (size + part_size - 1) / part_size > kMaxParts) {
    return absl::InvalidArgumentError(absl::StrCat("S3 multipart upload of ", name, ": parts of ", part_size,
                                                   " bytes do not fit ", size, " bytes in ", kMaxParts, " parts"));
  }
  absl::StatusOr<std::string> upload = CreateMultipartUpload(name);
  if (!upload.ok()) return upload.status();
  std::vector<S3Part> parts;
  absl::Status status;
  for (int64_t offset = 0; status.ok() && (offset < size || parts.empty()); offset += part_size) {
    const int number = static_cast<int>(parts.size()) + 1;
    absl::StatusOr<std::string> etag = UploadPart(name, *upload, number, data.substr(offset, part_size));
    status = etag.status();
    if (etag.ok()) parts.push_back({number, *etag});
  }
  if (status.ok()) status = CompleteMultipartUpload(name, *upload, parts);
  if (!status.ok()) {
    if (absl::Status aborted = AbortMultipartUpload(name, *upload); !aborted.ok()) {
      spdlog::warn("S3 multipart upload {} of {} left behind: {}", *upload, name, aborted.ToString());
    }
  }
  return status;
}

}  // namespace assay
