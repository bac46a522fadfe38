// A client's side of BlobAccess (proto/assay/v1/blob_access.proto): large blobs read from and
// written to the coordinator's bucket itself, with requests the coordinator signs for each, so the
// bytes do not pass through the coordinator. CasClient tries it first for every blob it would
// stream (over CasClient::kBatchBlobLimit) and falls back to ByteStream when it fails.
//
// Off for good once the coordinator answers UNIMPLEMENTED (its CAS is not in a bucket, or it was
// started with --cas-direct-access=false); off for a minute after the bucket could not be reached
// (a worker with no route to it), with one warning. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "assay/v1/blob_access.grpc.pb.h"
#include "common/cas/blob_store.h"
#include "common/tree/merkle.h"
#include "common/tree/safe_fs.h"

namespace assay {

class DirectBlobAccess {
 public:
  DirectBlobAccess(std::shared_ptr<grpc::Channel> channel, std::string instance_name);

  // Whether a transfer is worth trying now.
  bool available() const;
  void set_enabled(bool on) { enabled_ = on; }

  // Reads the blob from the bucket into `writer` (from what it holds already) and `tee`, without
  // committing either. On an error the caller reads the rest some other way.
  absl::Status Download(const Digest& digest, VerifiedFileWriter* writer, BlobWriter* tee, absl::Time deadline);
  // Writes the blob (its file, or its bytes) into the bucket and has the coordinator index it.
  absl::Status Upload(const TreeBlob& blob, absl::Time deadline);

  int64_t downloads() const { return downloads_.load(); }
  int64_t uploads() const { return uploads_.load(); }

 private:
  // `rpc`'s answer for `digest` alone: a signed request (or, from CommitUploads, a commit), or why
  // there is none.
  using Rpc = grpc::Status (assay::v1::BlobAccess::Stub::*)(grpc::ClientContext*, const assay::v1::BlobRequestsRequest&,
                                                           assay::v1::BlobRequestsResponse*);
  absl::StatusOr<assay::v1::BlobRequest> AnswerFor(Rpc rpc, const Digest& digest, absl::Time deadline);
  // Notes what a failure says about the path: the coordinator does not offer it, or the bucket is
  // out of reach from here.
  absl::Status Noted(absl::Status status);

  std::string instance_name_;
  std::unique_ptr<assay::v1::BlobAccess::Stub> stub_;
  std::atomic<bool> enabled_{true};
  std::atomic<bool> offered_{true};
  std::atomic<int64_t> unreachable_until_ms_{0};
  std::atomic<int64_t> downloads_{0};
  std::atomic<int64_t> uploads_{0};
};

}  // namespace assay
