#include "coordinator/reapi_services.h"

#include <deque>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/status_util.h"
#include "coordinator/inline_out_err.h"

namespace assay {
namespace {

google::rpc::Status RpcStatus(const absl::Status& s) {
  google::rpc::Status out;
  out.set_code(static_cast<int>(s.code()));
  out.set_message(std::string(s.message()));
  return out;
}

absl::StatusOr<std::vector<Digest>> Digests(const google::protobuf::RepeatedPtrField<reapi::Digest>& protos) {
  std::vector<Digest> out;
  out.reserve(static_cast<size_t>(protos.size()));
  for (const auto& p : protos) {
    auto d = Digest::FromProto(p);
    if (!d.ok()) return d.status();
    out.push_back(*d);
  }
  return out;
}

}  // namespace

grpc::Status CapabilitiesService::GetCapabilities(grpc::ServerContext*, const reapi::GetCapabilitiesRequest* request,
                                                  reapi::ServerCapabilities* response) {
  if (absl::Status s = CheckInstanceName(request->instance_name()); !s.ok()) return ToGrpc(s);
  auto* cache = response->mutable_cache_capabilities();
  cache->add_digest_functions(reapi::DigestFunction::SHA256);
  cache->mutable_action_cache_update_capabilities()->set_update_enabled(true);
  cache->set_max_batch_total_size_bytes(kMaxBatchTotalBytes);
  cache->set_symlink_absolute_path_strategy(reapi::SymlinkAbsolutePathStrategy::DISALLOWED);
  auto* exec = response->mutable_execution_capabilities();
  exec->set_digest_function(reapi::DigestFunction::SHA256);
  exec->set_exec_enabled(true);  // Execute runs actions on the workers (docs/bazel.md)
  response->mutable_low_api_version()->set_major(2);
  response->mutable_high_api_version()->set_major(2);
  response->mutable_high_api_version()->set_minor(0);
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* CasService::FindMissingBlobs(grpc::CallbackServerContext* context,
                                                       const reapi::FindMissingBlobsRequest* request,
                                                       reapi::FindMissingBlobsResponse* response) {
  auto* reactor = context->DefaultReactor();
  auto status = [&]() -> absl::Status {
    if (absl::Status s = CheckInstanceName(request->instance_name()); !s.ok()) return s;
    auto digests = Digests(request->blob_digests());
    if (!digests.ok()) return digests.status();
    auto missing = blobs_->FindMissing(*digests);
    if (!missing.ok()) return missing.status();
    for (const Digest& d : *missing) *response->add_missing_blob_digests() = d.ToProto();
    return absl::OkStatus();
  }();
  reactor->Finish(ToGrpc(status));
  return reactor;
}

grpc::Status CasService::BatchUpdateBlobs(grpc::ServerContext*, const reapi::BatchUpdateBlobsRequest* request,
                                          reapi::BatchUpdateBlobsResponse* response) {
  if (absl::Status s = CheckInstanceName(request->instance_name()); !s.ok()) return ToGrpc(s);
  int64_t total = 0;
  for (const auto& r : request->requests()) total += static_cast<int64_t>(r.data().size());
  if (total > kMaxBatchTotalBytes + (1 << 20)) {
    return ToGrpc(absl::InvalidArgumentError(absl::StrCat("batch of ", total, " bytes exceeds the limit of ",
                                                          kMaxBatchTotalBytes, "; use ByteStream for large blobs")));
  }
  counters_->writes += request->requests_size();
  counters_->written_bytes += total;
  // The well-formed ones are stored together (one fsync for the batch); each answer in its place.
  std::vector<absl::StatusOr<BlobToPut>> items;
  for (const auto& r : request->requests()) {
    items.push_back(BlobToPut::FromProto(r.digest(), r.data()));
  }
  const std::vector<absl::Status> statuses = PutEach(*blobs_, items);
  for (int i = 0; i < request->requests_size(); ++i) {
    auto* out = response->add_responses();
    *out->mutable_digest() = request->requests(i).digest();
    *out->mutable_status() = RpcStatus(statuses[static_cast<size_t>(i)]);
  }
  return grpc::Status::OK;
}

grpc::Status CasService::BatchReadBlobs(grpc::ServerContext*, const reapi::BatchReadBlobsRequest* request,
                                        reapi::BatchReadBlobsResponse* response) {
  if (absl::Status s = CheckInstanceName(request->instance_name()); !s.ok()) return ToGrpc(s);
  int64_t total = 0;
  for (const auto& d : request->digests()) total += d.size_bytes();
  if (total > kMaxBatchTotalBytes + (1 << 20)) {
    return ToGrpc(absl::InvalidArgumentError(absl::StrCat("batch read of ", total, " bytes exceeds the limit of ",
                                                          kMaxBatchTotalBytes, "; use ByteStream.Read")));
  }
  counters_->reads += request->digests_size();
  for (const auto& d : request->digests()) {
    auto* out = response->add_responses();
    *out->mutable_digest() = d;
    auto digest = Digest::FromProto(d);
    if (!digest.ok()) {
      *out->mutable_status() = RpcStatus(digest.status());
      continue;
    }
    auto data = blobs_->Get(*digest);
    if (data.ok()) {
      counters_->read_bytes += static_cast<int64_t>(data->size());
      out->set_data(std::move(*data));
      out->mutable_status()->set_code(0);
    } else {
      *out->mutable_status() = RpcStatus(data.status());
    }
  }
  return grpc::Status::OK;
}

grpc::Status CasService::GetTree(grpc::ServerContext* context, const reapi::GetTreeRequest* request,
                                 grpc::ServerWriter<reapi::GetTreeResponse>* writer) {
  if (absl::Status s = CheckInstanceName(request->instance_name()); !s.ok()) return ToGrpc(s);
  auto root = Digest::FromProto(request->root_digest());
  if (!root.ok()) return ToGrpc(root.status());
  const int page = request->page_size() > 0 ? std::min(request->page_size(), 10'000) : 1'000;
  // Breadth-first from the root. Every page goes out in this one stream (page_size bounds each
  // response), so no next_page_token is ever needed.
  std::deque<Digest> queue{*root};
  absl::flat_hash_set<Digest> seen{*root};
  reapi::GetTreeResponse response;
  while (!queue.empty()) {
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
    Digest digest = queue.front();
    queue.pop_front();
    auto bytes = blobs_->Get(digest);
    if (!bytes.ok()) return ToGrpc(Annotate(bytes.status(), "GetTree"));
    reapi::Directory* dir = response.add_directories();
    if (!dir->ParseFromString(*bytes)) {
      return ToGrpc(absl::InvalidArgumentError(absl::StrCat(digest.ToString(), " is not a Directory")));
    }
    for (const auto& sub : dir->directories()) {
      auto d = Digest::FromProto(sub.digest());
      if (!d.ok()) return ToGrpc(d.status());
      if (seen.insert(*d).second) queue.push_back(*d);
    }
    if (response.directories_size() >= page) {
      writer->Write(response);
      response.Clear();
    }
  }
  if (response.directories_size() > 0) writer->Write(response);
  return grpc::Status::OK;
}

grpc::ServerUnaryReactor* ActionCacheService::GetActionResult(grpc::CallbackServerContext* context,
                                                              const reapi::GetActionResultRequest* request,
                                                              reapi::ActionResult* response) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(DoGetActionResult(request, response));
  return reactor;
}

grpc::Status ActionCacheService::DoGetActionResult(const reapi::GetActionResultRequest* request,
                                                   reapi::ActionResult* response) {
  if (absl::Status s = CheckInstanceName(request->instance_name()); !s.ok()) return ToGrpc(s);
  auto digest = Digest::FromProto(request->action_digest());
  if (!digest.ok()) return ToGrpc(digest.status());
  auto result = cache_->Get(request->instance_name(), *digest);
  if (!result.ok()) return ToGrpc(result.status());
  *response = std::move(*result);
  InlineOutErr(*blobs_, request->inline_stdout(), request->inline_stderr(), response);
  absl::flat_hash_set<std::string> wanted(request->inline_output_files().begin(), request->inline_output_files().end());
  for (auto& f : *response->mutable_output_files()) {
    if (wanted.contains(f.path())) InlineBlob(*blobs_, f.digest(), kMaxAskedInlineBytes, f.mutable_contents());
  }
  return grpc::Status::OK;
}

grpc::Status ActionCacheService::UpdateActionResult(grpc::ServerContext*, const reapi::UpdateActionResultRequest* request,
                                                    reapi::ActionResult* response) {
  if (absl::Status s = CheckInstanceName(request->instance_name()); !s.ok()) return ToGrpc(s);
  auto digest = Digest::FromProto(request->action_digest());
  if (!digest.ok()) return ToGrpc(digest.status());
  reapi::ActionResult result = request->action_result();
  // Inlined bytes go to the CAS; the stored result references them by digest.
  auto store_inline = [&](std::string* raw, reapi::Digest* digest_out) -> absl::Status {
    if (raw->empty()) return absl::OkStatus();
    Digest d = Digest::OfBytes(*raw);
    if (absl::Status s = blobs_->Put(d, *raw); !s.ok()) return s;
    *digest_out = d.ToProto();
    raw->clear();
    return absl::OkStatus();
  };
  if (absl::Status s = store_inline(result.mutable_stdout_raw(), result.mutable_stdout_digest()); !s.ok()) return ToGrpc(s);
  if (absl::Status s = store_inline(result.mutable_stderr_raw(), result.mutable_stderr_digest()); !s.ok()) return ToGrpc(s);
  for (auto& f : *result.mutable_output_files()) {
    if (absl::Status s = store_inline(f.mutable_contents(), f.mutable_digest()); !s.ok()) return ToGrpc(s);
  }
  if (absl::Status s = cache_->Put(request->instance_name(), *digest, result); !s.ok()) return ToGrpc(s);
  *response = std::move(result);
  return grpc::Status::OK;
}

namespace {

// Streams one blob (or a range of it), a chunk per write: the next chunk is read only when the
// previous write is done, so a slow reader holds back the server instead of filling its memory.
class BlobReadReactor final : public grpc::ServerWriteReactor<google::bytestream::ReadResponse> {
 public:
  static constexpr int64_t kChunk = 1 << 20;

  BlobReadReactor(BlobStore* blobs, CasCounters* counters, const google::bytestream::ReadRequest& request)
      : blobs_(blobs), counters_(counters) {
    auto resource = ParseResourceName(request.resource_name(), /*upload=*/false);
    if (!resource.ok()) {
      Finish(ToGrpc(resource.status()));
      return;
    }
    digest_ = resource->digest;
    if (request.read_offset() < 0 || request.read_offset() > digest_.size()) {
      Finish(ToGrpc(absl::OutOfRangeError(absl::StrCat("read_offset ", request.read_offset(), " is outside the blob"))));
      return;
    }
    if (request.read_limit() < 0) {
      Finish(ToGrpc(absl::InvalidArgumentError("read_limit is negative")));
      return;
    }
    pos_ = request.read_offset();
    end_ = request.read_limit() > 0 ? std::min(digest_.size(), pos_ + request.read_limit()) : digest_.size();
    // A missing blob is NOT_FOUND even when the range is empty.
    if (auto missing = blobs_->FindMissing({digest_}); !missing.ok() || !missing->empty()) {
      Finish(ToGrpc(missing.ok() ? absl::NotFoundError(absl::StrCat("blob ", digest_.ToString(), " not found"))
                                 : missing.status()));
      return;
    }
    Next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    if (pos_ >= end_) {
      Finish(grpc::Status::OK);
      return;
    }
    response_.clear_data();
    std::string* data = response_.mutable_data();
    absl::Status s = blobs_->Read(digest_, pos_, std::min(kChunk, end_ - pos_), [&](absl::string_view piece) {
      data->append(piece.data(), piece.size());
      return absl::OkStatus();
    });
    if (!s.ok()) {
      Finish(ToGrpc(s));
      return;
    }
    if (data->empty()) {
      Finish(ToGrpc(absl::DataLossError(absl::StrCat("blob ", digest_.ToString(), " ended early"))));
      return;
    }
    pos_ += static_cast<int64_t>(data->size());
    counters_->read_bytes += static_cast<int64_t>(data->size());
    // The last chunk leaves with the status in one batch: a small blob is one response, not a
    // message and then trailers after another round through the reactor.
    if (pos_ >= end_) {
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    } else {
      StartWrite(&response_);
    }
  }

  BlobStore* blobs_;
  CasCounters* counters_;
  Digest digest_;
  int64_t pos_ = 0;
  int64_t end_ = 0;
  google::bytestream::ReadResponse response_;
};

}  // namespace

grpc::ServerWriteReactor<google::bytestream::ReadResponse>* ByteStreamService::Read(
    grpc::CallbackServerContext*, const google::bytestream::ReadRequest* request) {
  counters_->reads++;
  spdlog::debug("ByteStream.Read {}", request->resource_name());
  return new BlobReadReactor(blobs_, counters_, *request);
}

grpc::Status ByteStreamService::Write(grpc::ServerContext* context,
                                      grpc::ServerReader<google::bytestream::WriteRequest>* reader,
                                      google::bytestream::WriteResponse* response) {
  counters_->writes++;
  google::bytestream::WriteRequest request;
  if (!reader->Read(&request)) return ToGrpc(absl::InvalidArgumentError("Write stream ended before its first message"));
  auto resource = ParseResourceName(request.resource_name(), /*upload=*/true);
  if (!resource.ok()) return ToGrpc(resource.status());
  const Digest digest = resource->digest;
  const std::string first_name = request.resource_name();
  // A blob already stored needs no bytes.
  auto missing = blobs_->FindMissing({digest});
  if (!missing.ok()) return ToGrpc(missing.status());
  if (missing->empty()) {
    response->set_committed_size(digest.size());
    return grpc::Status::OK;
  }
  auto writer = blobs_->OpenWrite(digest);
  if (!writer.ok()) return ToGrpc(writer.status());
  while (true) {
    if (request.write_offset() != (*writer)->written()) {
      return ToGrpc(absl::InvalidArgumentError(absl::StrCat("write_offset ", request.write_offset(), " but ",
                                                            (*writer)->written(), " bytes were received")));
    }
    if (!request.resource_name().empty() && request.resource_name() != first_name) {
      return ToGrpc(absl::InvalidArgumentError("resource_name changed within one Write stream"));
    }
    if (absl::Status s = (*writer)->Append(request.data()); !s.ok()) return ToGrpc(s);
    counters_->written_bytes += static_cast<int64_t>(request.data().size());
    if (request.finish_write()) break;
    if (!reader->Read(&request)) {
      return ToGrpc(absl::InvalidArgumentError(absl::StrCat("Write stream for ", digest.ToString(), " ended after ",
                                                            (*writer)->written(), " bytes without finish_write; nothing stored")));
    }
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
  }
  if (absl::Status s = (*writer)->Commit(); !s.ok()) return ToGrpc(s);
  response->set_committed_size(digest.size());
  return grpc::Status::OK;
}

grpc::Status ByteStreamService::QueryWriteStatus(grpc::ServerContext*,
                                                 const google::bytestream::QueryWriteStatusRequest* request,
                                                 google::bytestream::QueryWriteStatusResponse* response) {
  auto resource = ParseResourceName(request->resource_name(), /*upload=*/true);
  if (!resource.ok()) return ToGrpc(resource.status());
  auto missing = blobs_->FindMissing({resource->digest});
  if (!missing.ok()) return ToGrpc(missing.status());
  // Partial uploads are not resumable: they are either complete or start again from zero.
  response->set_complete(missing->empty());
  response->set_committed_size(missing->empty() ? resource->digest.size() : 0);
  return grpc::Status::OK;
}

}  // namespace assay
