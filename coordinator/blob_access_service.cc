#include "coordinator/blob_access_service.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/digest/resource_name.h"
#include "common/s3/s3_signer.h"
#include "common/base/status_util.h"

namespace assay {
namespace {

// The request's digests, each valid, at most kMaxDigests; the first fault names its index.
absl::StatusOr<std::vector<Digest>> DigestsOf(const assay::v1::BlobRequestsRequest& request) {
  if (absl::Status s = CheckInstanceName(request.instance_name()); !s.ok()) return s;
  if (request.digests_size() > BlobAccessService::kMaxDigests) {
    return absl::InvalidArgumentError(absl::StrCat(request.digests_size(), " digests in one request; at most ",
                                                   BlobAccessService::kMaxDigests));
  }
  std::vector<Digest> out;
  for (int i = 0; i < request.digests_size(); ++i) {
    auto d = Digest::FromProto(request.digests(i));
    if (!d.ok()) return absl::InvalidArgumentError(absl::StrCat("digests[", i, "]: ", d.status().message()));
    out.push_back(*d);
  }
  return out;
}

void SetStatus(assay::v1::BlobRequest* out, const absl::Status& status) {
  out->set_code(static_cast<int>(status.code()));
  out->set_message(std::string(status.message()));
}

void SetRequest(assay::v1::BlobRequest* out, const SignedS3Request& signed_request) {
  out->set_method(signed_request.method);
  out->set_url(signed_request.url);
  for (const auto& [name, value] : signed_request.headers) {
    auto* header = out->add_headers();
    header->set_name(name);
    header->set_value(value);
  }
}

}  // namespace

BlobAccessService::BlobAccessService(BucketBlobStore* bucket, S3Location location, S3Credentials credentials,
                                     CasCounters* counters, const Clock* clock)
    : bucket_(bucket),
      location_(std::move(location)),
      credentials_(std::move(credentials)),
      counters_(counters),
      clock_(clock) {}

grpc::Status BlobAccessService::GetDownloadRequests(grpc::ServerContext*, const assay::v1::BlobRequestsRequest* request,
                                                    assay::v1::BlobRequestsResponse* response) {
  auto digests = DigestsOf(*request);
  if (!digests.ok()) return ToGrpc(digests.status());
  const absl::Time now = clock_->Now();
  for (const Digest& d : *digests) {
    auto* out = response->add_requests();
    *out->mutable_digest() = d.ToProto();
    // Touch fails NOT_FOUND for a blob the bucket does not hold (and for the empty blob: no object).
    if (absl::Status held = d.empty_blob() ? absl::NotFoundError("the empty blob has no object") : bucket_->Touch(d);
        !held.ok()) {
      SetStatus(out, absl::IsNotFound(held) ? absl::NotFoundError(absl::StrCat("blob ", d.ToString(), " is not in the bucket"))
                                            : held);
      continue;
    }
    SetRequest(out, PresignGet(location_, credentials_, location_.Key(BucketBlobStore::ObjectName(d)), now, kValidity));
    ++counters_->direct_reads;
    counters_->direct_read_bytes += d.size();
  }
  return grpc::Status::OK;
}

grpc::Status BlobAccessService::GetUploadRequests(grpc::ServerContext*, const assay::v1::BlobRequestsRequest* request,
                                                  assay::v1::BlobRequestsResponse* response) {
  auto digests = DigestsOf(*request);
  if (!digests.ok()) return ToGrpc(digests.status());
  const absl::Time now = clock_->Now();
  for (const Digest& d : *digests) {
    auto* out = response->add_requests();
    *out->mutable_digest() = d.ToProto();
    if (d.size() > S3Client::kMaxPutBytes) {
      SetStatus(out, absl::InvalidArgumentError(absl::StrCat("blob ", d.ToString(), " is larger than one PUT may be (",
                                                             S3Client::kMaxPutBytes, " bytes); use ByteStream")));
      continue;
    }
    SetRequest(out, SignPut(location_, credentials_, location_.Key(BucketBlobStore::ObjectName(d)), d.hash(), now));
  }
  return grpc::Status::OK;
}

grpc::Status BlobAccessService::CommitUploads(grpc::ServerContext*, const assay::v1::BlobRequestsRequest* request,
                                              assay::v1::BlobRequestsResponse* response) {
  auto digests = DigestsOf(*request);
  if (!digests.ok()) return ToGrpc(digests.status());
  for (const Digest& d : *digests) {
    auto* out = response->add_requests();
    *out->mutable_digest() = d.ToProto();
    auto adopted = bucket_->Adopt(d);
    if (!adopted.ok()) {
      SetStatus(out, adopted.status());
      continue;
    }
    if (*adopted) {
      ++counters_->direct_writes;
      counters_->direct_written_bytes += d.size();
    }
  }
  return grpc::Status::OK;
}

}  // namespace assay
