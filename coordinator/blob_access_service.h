// BlobAccess (proto/assay/v1/blob_access.proto): with the CAS in a bucket, clients move blob bytes
// in the bucket itself and the coordinator only signs and indexes, so its traffic per task no longer
// grows with the blobs' sizes.
//
// - Downloads: a presigned GET for each blob the bucket's index holds (its use counts for the LRU).
//   A blob evicted meanwhile is a 404 from the bucket, and the client reads it through ByteStream.
// - Uploads: a PUT signed for the digest's SHA-256, which the bucket checks against the body: no
//   other bytes can be written under the blob's name. CommitUploads then indexes each blob whose
//   object the bucket holds with the digest's size (BucketBlobStore::Adopt); until then nothing
//   sees it.
//
// Every digest is checked like any REAPI digest (a SHA-256 and a size), and a request names at most
// kMaxDigests of them. Signing asks nothing of the bucket; CommitUploads sends one HEAD per blob.
#pragma once

#include <grpcpp/grpcpp.h>

#include "assay/v1/blob_access.grpc.pb.h"
#include "common/base/clock.h"
#include "common/bucket/bucket_blob_store.h"
#include "coordinator/reapi_services.h"

namespace assay {

class BlobAccessService final : public assay::v1::BlobAccess::Service {
 public:
  static constexpr int kMaxDigests = 1000;
  static constexpr absl::Duration kValidity = absl::Minutes(15);  // how long a signed request may be sent

  // `location` is the bucket as clients reach it (its endpoint may differ from the coordinator's).
  BlobAccessService(BucketBlobStore* bucket, S3Location location, S3Credentials credentials, CasCounters* counters,
                    const Clock* clock);

  grpc::Status GetDownloadRequests(grpc::ServerContext*, const assay::v1::BlobRequestsRequest* request,
                                   assay::v1::BlobRequestsResponse* response) override;
  grpc::Status GetUploadRequests(grpc::ServerContext*, const assay::v1::BlobRequestsRequest* request,
                                 assay::v1::BlobRequestsResponse* response) override;
  grpc::Status CommitUploads(grpc::ServerContext*, const assay::v1::BlobRequestsRequest* request,
                             assay::v1::BlobRequestsResponse* response) override;

 private:
  BucketBlobStore* const bucket_;
  const S3Location location_;
  const S3Credentials credentials_;
  CasCounters* const counters_;
  const Clock* const clock_;
};

}  // namespace assay
