#include "common/remote/direct_blob_access.h"

#include <grpcpp/client_context.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/log_format.h"
#include "common/base/status_util.h"
#include "common/remote/cas_client.h"
#include "common/s3/signed_transfer.h"

namespace assay {
namespace {

SignedS3Request ToSigned(const assay::v1::BlobRequest& r) {
  SignedS3Request out;
  out.method = r.method();
  out.url = r.url();
  for (const auto& h : r.headers()) out.headers.emplace_back(h.name(), h.value());
  return out;
}

}  // namespace

DirectBlobAccess::DirectBlobAccess(std::shared_ptr<grpc::Channel> channel, std::string instance_name)
    : instance_name_(std::move(instance_name)), stub_(assay::v1::BlobAccess::NewStub(channel)) {}

bool DirectBlobAccess::available() const {
  return enabled_.load() && offered_.load() && absl::ToUnixMillis(absl::Now()) >= unreachable_until_ms_.load();
}

absl::Status DirectBlobAccess::Noted(absl::Status status) {
  if (absl::IsUnimplemented(status)) {
    if (offered_.exchange(false)) spdlog::debug("the coordinator offers no direct bucket access: blobs go through it");
  } else if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    const int64_t until = absl::ToUnixMillis(absl::Now() + absl::Minutes(1));
    if (unreachable_until_ms_.exchange(until) < absl::ToUnixMillis(absl::Now())) {
      spdlog::warn("the bucket is out of reach from here ({}); blobs go through the coordinator for a minute",
                   status.message());
    }
  }
  return status;
}

absl::StatusOr<assay::v1::BlobRequest> DirectBlobAccess::AnswerFor(Rpc rpc, const Digest& digest, absl::Time deadline) {
  assay::v1::BlobRequestsRequest request;
  request.set_instance_name(instance_name_);
  *request.add_digests() = digest.ToProto();
  assay::v1::BlobRequestsResponse response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Seconds(30))));
  if (absl::Status s = FromGrpc(((*stub_).*rpc)(&context, request, &response)); !s.ok()) return Noted(s);
  if (response.requests_size() != 1) return absl::InternalError("BlobAccess answered the wrong number of requests");
  const assay::v1::BlobRequest& r = response.requests(0);
  if (r.code() != 0) return absl::Status(static_cast<absl::StatusCode>(r.code()), r.message());
  return r;
}

absl::Status DirectBlobAccess::Download(const Digest& digest, VerifiedFileWriter* writer, BlobWriter* tee,
                                        absl::Time deadline) {
  auto signed_request = AnswerFor(&assay::v1::BlobAccess::Stub::GetDownloadRequests, digest, deadline);
  if (!signed_request.ok()) return signed_request.status();
  const int64_t start = writer->written();
  absl::Status s = SignedGet(ToSigned(*signed_request), start, [&](absl::string_view data) {
    absl::Status written = writer->Append(data);
    if (written.ok() && tee != nullptr) written = tee->Append(data);
    return written;
  }, deadline);
  if (!s.ok()) return Noted(s);
  ++downloads_;
  return absl::OkStatus();
}

absl::Status DirectBlobAccess::Upload(const TreeBlob& blob, absl::Time deadline) {
  auto signed_request = AnswerFor(&assay::v1::BlobAccess::Stub::GetUploadRequests, blob.digest, deadline);
  if (!signed_request.ok()) return signed_request.status();
  absl::Status put;
  if (blob.file.empty()) {
    put = SignedPut(ToSigned(*signed_request), blob.data, deadline);
  } else {
    auto fd = OpenBlobFile(blob);
    if (!fd.ok()) return fd.status();
    put = SignedPut(ToSigned(*signed_request), fd->get(), blob.digest.size(), deadline);
  }
  if (!put.ok()) return Noted(put);
  auto committed = AnswerFor(&assay::v1::BlobAccess::Stub::CommitUploads, blob.digest, deadline);
  if (!committed.ok()) return committed.status();
  ++uploads_;
  return absl::OkStatus();
}

}  // namespace assay
