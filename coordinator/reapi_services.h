// REAPI v2 over the coordinator's store: Capabilities, ContentAddressableStorage, ActionCache and
// google.bytestream.ByteStream. Thin adapters: wire messages become Digest values here, and
// absl::Status becomes grpc::Status once, on the way out.
#pragma once

#include <atomic>

#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/cas/blob_store.h"
#include "common/digest/resource_name.h"
#include "coordinator/action_cache.h"
#include "google/bytestream/bytestream.grpc.pb.h"

namespace assay {

// Counters of the CAS surface, for `assay cache stats` and metrics.
struct CasCounters {
  std::atomic<int64_t> reads{0};          // blobs read (ByteStream.Read calls + BatchReadBlobs entries)
  std::atomic<int64_t> writes{0};         // blobs written (ByteStream.Write calls + BatchUpdateBlobs entries)
  std::atomic<int64_t> read_bytes{0};     // their bytes through the coordinator, each way
  std::atomic<int64_t> written_bytes{0};
  // Blobs clients moved in the bucket itself (BlobAccess requests signed), and their bytes.
  std::atomic<int64_t> direct_reads{0};
  std::atomic<int64_t> direct_writes{0};
  std::atomic<int64_t> direct_read_bytes{0};
  std::atomic<int64_t> direct_written_bytes{0};
};


class CapabilitiesService final : public reapi::Capabilities::Service {
 public:
  grpc::Status GetCapabilities(grpc::ServerContext*, const reapi::GetCapabilitiesRequest*,
                               reapi::ServerCapabilities*) override;
};

// The read path Bazel hammers (FindMissingBlobs, GetActionResult, ByteStream.Read) uses gRPC's
// callback API: handled on gRPC's own threads without a hand-off per call. The rest is synchronous.
class CasService final
    : public reapi::ContentAddressableStorage::WithCallbackMethod_FindMissingBlobs<
          reapi::ContentAddressableStorage::Service> {
 public:
  CasService(BlobStore* blobs, CasCounters* counters) : blobs_(blobs), counters_(counters) {}
  grpc::ServerUnaryReactor* FindMissingBlobs(grpc::CallbackServerContext*, const reapi::FindMissingBlobsRequest*,
                                             reapi::FindMissingBlobsResponse*) override;
  grpc::Status BatchUpdateBlobs(grpc::ServerContext*, const reapi::BatchUpdateBlobsRequest*,
                                reapi::BatchUpdateBlobsResponse*) override;
  grpc::Status BatchReadBlobs(grpc::ServerContext*, const reapi::BatchReadBlobsRequest*,
                              reapi::BatchReadBlobsResponse*) override;
  grpc::Status GetTree(grpc::ServerContext*, const reapi::GetTreeRequest*,
                       grpc::ServerWriter<reapi::GetTreeResponse>*) override;

 private:
  BlobStore* blobs_;
  CasCounters* counters_;
};

class ActionCacheService final
    : public reapi::ActionCache::WithCallbackMethod_GetActionResult<reapi::ActionCache::Service> {
 public:
  ActionCacheService(ActionCache* cache, BlobStore* blobs) : cache_(cache), blobs_(blobs) {}
  grpc::ServerUnaryReactor* GetActionResult(grpc::CallbackServerContext*, const reapi::GetActionResultRequest*,
                                            reapi::ActionResult*) override;
  grpc::Status UpdateActionResult(grpc::ServerContext*, const reapi::UpdateActionResultRequest*,
                                  reapi::ActionResult*) override;

 private:
  grpc::Status DoGetActionResult(const reapi::GetActionResultRequest* request, reapi::ActionResult* response);
  ActionCache* cache_;
  BlobStore* blobs_;
};

class ByteStreamService final
    : public google::bytestream::ByteStream::WithCallbackMethod_Read<google::bytestream::ByteStream::Service> {
 public:
  ByteStreamService(BlobStore* blobs, CasCounters* counters) : blobs_(blobs), counters_(counters) {}
  grpc::ServerWriteReactor<google::bytestream::ReadResponse>* Read(grpc::CallbackServerContext*,
                                                                   const google::bytestream::ReadRequest*) override;
  grpc::Status Write(grpc::ServerContext*, grpc::ServerReader<google::bytestream::WriteRequest>*,
                     google::bytestream::WriteResponse*) override;
  grpc::Status QueryWriteStatus(grpc::ServerContext*, const google::bytestream::QueryWriteStatusRequest*,
                                google::bytestream::QueryWriteStatusResponse*) override;

 private:
  BlobStore* blobs_;
  CasCounters* counters_;
};

constexpr int64_t kMaxBatchTotalBytes = 4 << 20;

}  // namespace assay
