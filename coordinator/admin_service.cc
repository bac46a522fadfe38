#include "coordinator/admin_service.h"

#include "common/base/status_util.h"

namespace assay {

grpc::Status AdminService::ListWorkers(grpc::ServerContext*, const assay::v1::ListWorkersRequest*,
                                       assay::v1::ListWorkersResponse* response) {
  for (auto& w : jobs_->ListWorkers()) *response->add_workers() = std::move(w);
  return grpc::Status::OK;
}

grpc::Status AdminService::SetWorkerState(grpc::ServerContext*, const assay::v1::SetWorkerStateRequest* request,
                                          assay::v1::Worker* response) {
  auto worker = jobs_->SetWorkerState(request->worker_id(), request->state());
  if (!worker.ok()) return ToGrpc(worker.status());
  *response = std::move(*worker);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetCacheStats(grpc::ServerContext*, const assay::v1::GetCacheStatsRequest*,
                                         assay::v1::CacheStats* response) {
  *response = CollectCacheStats(blobs_, eviction_, cache_, counters_, /*count_action_results=*/true);
  return grpc::Status::OK;
}

assay::v1::CacheStats CollectCacheStats(EvictableBlobStore* blobs, EvictingBlobStore* eviction, ActionCache* cache,
                                        const CasCounters* counters, bool count_action_results) {
  assay::v1::CacheStats out;
  out.set_bytes(blobs->stored_bytes());
  out.set_blobs(blobs->stored_blobs());
  out.set_budget_bytes(eviction->budget_bytes());
  out.set_evicted_blobs(eviction->evicted_blobs());
  out.set_evicted_bytes(eviction->evicted_bytes());
  out.set_cas_reads(counters->reads.load());
  out.set_cas_writes(counters->writes.load());
  out.set_cas_read_bytes(counters->read_bytes.load());
  out.set_cas_written_bytes(counters->written_bytes.load());
  out.set_direct_reads(counters->direct_reads.load());
  out.set_direct_writes(counters->direct_writes.load());
  out.set_direct_read_bytes(counters->direct_read_bytes.load());
  out.set_direct_written_bytes(counters->direct_written_bytes.load());
  out.set_ac_hits(cache->hits());
  out.set_ac_misses(cache->misses());
  if (count_action_results) {
    auto entries = cache->CountEntries();
    if (entries.ok()) out.set_action_results(*entries);
  }
  return out;
}

}  // namespace assay
