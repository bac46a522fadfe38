// assay.v1 services: Jobs (the CLI's API), Admin (operators), WorkerLink (workers' one stream).
#pragma once

#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "assay/v1/worker_link.grpc.pb.h"
#include "common/evicting_blob_store.h"
#include "common/thread_pool.h"
#include "common/rocksdb_blob_store.h"
#include "coordinator/job_manager.h"
#include "coordinator/reapi_services.h"

namespace assay {

// The CLI's API. WatchJob and StreamLogs are reactors pushed on change (watch_streams.h); the
// others are plain calls.
class JobsService final
    : public assay::v1::Jobs::WithCallbackMethod_WatchJob<
          assay::v1::Jobs::WithCallbackMethod_StreamLogs<assay::v1::Jobs::Service>> {
 public:
  JobsService(JobManager* jobs, ThreadPool* executor) : jobs_(jobs), executor_(executor) {}
  grpc::Status Submit(grpc::ServerContext*, const assay::v1::SubmitRequest*, assay::v1::Job*) override;
  grpc::Status GetJob(grpc::ServerContext*, const assay::v1::GetJobRequest*, assay::v1::Job*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const assay::v1::ListJobsRequest*, assay::v1::ListJobsResponse*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const assay::v1::CancelJobRequest*, assay::v1::Job*) override;
  grpc::ServerWriteReactor<assay::v1::Job>* WatchJob(grpc::CallbackServerContext*,
                                                     const assay::v1::WatchJobRequest*) override;
  grpc::ServerWriteReactor<assay::v1::LogChunk>* StreamLogs(grpc::CallbackServerContext*,
                                                            const assay::v1::StreamLogsRequest*) override;

 private:
  JobManager* jobs_;
  ThreadPool* executor_;
};

class AdminService final : public assay::v1::Admin::Service {
 public:
  AdminService(JobManager* jobs, RocksDbBlobStore* blobs, EvictingBlobStore* eviction, ActionCache* cache,
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
  RocksDbBlobStore* blobs_;
  EvictingBlobStore* eviction_;
  ActionCache* cache_;
  const CasCounters* counters_;
};

// The cache's figures now. Counting action results walks the whole action cache, so scrapes skip it.
assay::v1::CacheStats CollectCacheStats(RocksDbBlobStore* blobs, EvictingBlobStore* eviction, ActionCache* cache,
                                        const CasCounters* counters, bool count_action_results);

// The worker link on gRPC's callback API: a reactor per connected worker, no thread of its own.
// Heartbeats and log chunks are handled on gRPC's thread (neither waits for the disk); a hello, a
// result and the end of the stream go to `executor` (they wait for the group commit). The next
// message is read only once the last one is handled, so a worker's messages are taken in order.
class WorkerLinkService final : public assay::v1::WorkerLink::CallbackService {
 public:
  // `blobs`: where blobs sent inline with a result are stored (verified) before the result is taken.
  WorkerLinkService(JobManager* jobs, ThreadPool* executor, BlobStore* blobs)
      : jobs_(jobs), executor_(executor), blobs_(blobs) {}
  grpc::ServerBidiReactor<assay::v1::WorkerMessage, assay::v1::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  JobManager* jobs_;
  ThreadPool* executor_;
  BlobStore* blobs_;
};

}  // namespace assay
