// assay.v1.Admin, for operators: the workers, cordon/drain/activate, the cache's figures.
#pragma once

#include "assay/v1/admin.grpc.pb.h"
#include "common/cas/evicting_blob_store.h"
#include "common/rocksdb/rocksdb_blob_store.h"
#include "coordinator/job_manager.h"
#include "coordinator/reapi_services.h"

namespace assay {

class AdminService final : public assay::v1::Admin::Service {
 public:
  AdminService(JobManager* jobs, EvictableBlobStore* blobs, EvictingBlobStore* eviction, ActionCache* cache,
               const CasCounters* counters)
      : jobs_(jobs), blobs_(blobs), eviction_(eviction), cache_(cache), counters_(counters) {}
  grpc::Status ListWorkers(grpc::ServerContext*, const assay::v1::ListWorkersRequest*,
                           assay::v1::ListWorkersResponse*) override;
  grpc::Status GetCacheStats(grpc::ServerContext*, const assay::v1::GetCacheStatsRequest*,
                             assay::v1::CacheStats*) override;
  grpc::Status SetWorkerState(grpc::ServerContext*, const assay::v1::SetWorkerStateRequest*,
                              assay::v1::Worker*) override;

 private:
  JobManager* jobs_;
  EvictableBlobStore* blobs_;
  EvictingBlobStore* eviction_;
  ActionCache* cache_;
  const CasCounters* counters_;
};

// The cache's figures now. Counting action results walks the whole action cache, so scrapes skip it.
assay::v1::CacheStats CollectCacheStats(EvictableBlobStore* blobs, EvictingBlobStore* eviction, ActionCache* cache,
                                        const CasCounters* counters, bool count_action_results);

}  // namespace assay
