// assay.v1.Jobs, the CLI's API: a thin adapter over JobManager.
#pragma once

#include "assay/v1/jobs.grpc.pb.h"
#include "common/base/thread_pool.h"
#include "coordinator/job_manager.h"
#include "coordinator/notifier.h"
#include "coordinator/step_cache_store.h"

namespace assay {

// The CLI's API. WatchJob and StreamLogs are reactors pushed on change (watch_streams.h); the
// others are plain calls.
class JobsService final
    : public assay::v1::Jobs::WithCallbackMethod_WatchJob<
          assay::v1::Jobs::WithCallbackMethod_StreamLogs<assay::v1::Jobs::Service>> {
 public:
  // `step_caches` may be null (ListStepCaches answers none, DeleteStepCaches is unavailable), and so
  // may `notifier` (no targets configured: ListNotifications answers none).
  JobsService(JobManager* jobs, ThreadPool* executor, StepCacheStore* step_caches = nullptr,
              const Notifier* notifier = nullptr)
      : jobs_(jobs), executor_(executor), step_caches_(step_caches), notifier_(notifier) {}
  grpc::Status Submit(grpc::ServerContext*, const assay::v1::SubmitRequest*, assay::v1::Job*) override;
  grpc::Status GetJob(grpc::ServerContext*, const assay::v1::GetJobRequest*, assay::v1::Job*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const assay::v1::ListJobsRequest*, assay::v1::ListJobsResponse*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const assay::v1::CancelJobRequest*, assay::v1::Job*) override;
  grpc::ServerWriteReactor<assay::v1::Job>* WatchJob(grpc::CallbackServerContext*,
                                                     const assay::v1::WatchJobRequest*) override;
  grpc::ServerWriteReactor<assay::v1::LogChunk>* StreamLogs(grpc::CallbackServerContext*,
                                                            const assay::v1::StreamLogsRequest*) override;
  grpc::Status ListStepCaches(grpc::ServerContext*, const assay::v1::ListStepCachesRequest*,
                              assay::v1::ListStepCachesResponse*) override;
  grpc::Status DeleteStepCaches(grpc::ServerContext*, const assay::v1::DeleteStepCachesRequest*,
                                assay::v1::DeleteStepCachesResponse*) override;
  grpc::Status ListNotifications(grpc::ServerContext*, const assay::v1::ListNotificationsRequest*,
                                 assay::v1::ListNotificationsResponse*) override;

 private:
  JobManager* jobs_;
  ThreadPool* executor_;
  StepCacheStore* step_caches_;
  const Notifier* notifier_;
};

}  // namespace assay
