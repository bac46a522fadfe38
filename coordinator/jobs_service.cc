#include "coordinator/jobs_service.h"

#include "common/base/status_util.h"
#include "coordinator/execution_service.h"
#include "coordinator/watch_streams.h"

namespace assay {

using assay::v1::Job;

grpc::Status JobsService::Submit(grpc::ServerContext*, const assay::v1::SubmitRequest* request, Job* response) {
  auto job = jobs_->Submit(*request);
  if (!job.ok()) return ToGrpcWithDetails(job.status());  // missing blobs: named in the details too
  *response = std::move(*job);
  return grpc::Status::OK;
}

grpc::Status JobsService::GetJob(grpc::ServerContext*, const assay::v1::GetJobRequest* request, Job* response) {
  auto job = jobs_->GetJob(request->job_id(), /*with_tasks=*/true);
  if (!job.ok()) return ToGrpc(job.status());
  *response = std::move(*job);
  return grpc::Status::OK;
}

grpc::Status JobsService::ListJobs(grpc::ServerContext*, const assay::v1::ListJobsRequest* request,
                                   assay::v1::ListJobsResponse* response) {
  auto jobs = jobs_->ListJobs(request->limit() > 0 ? request->limit() : 50);
  if (!jobs.ok()) return ToGrpc(jobs.status());
  for (auto& j : *jobs) *response->add_jobs() = std::move(j);
  return grpc::Status::OK;
}

grpc::Status JobsService::CancelJob(grpc::ServerContext*, const assay::v1::CancelJobRequest* request, Job* response) {
  auto job = jobs_->Cancel(request->job_id());
  if (!job.ok()) return ToGrpc(job.status());
  *response = std::move(*job);
  return grpc::Status::OK;
}

grpc::Status JobsService::ListStepCaches(grpc::ServerContext*, const assay::v1::ListStepCachesRequest* request,
                                         assay::v1::ListStepCachesResponse* response) {
  if (step_caches_ != nullptr) *response = step_caches_->List(request->pipeline());
  return grpc::Status::OK;
}

grpc::Status JobsService::DeleteStepCaches(grpc::ServerContext*, const assay::v1::DeleteStepCachesRequest* request,
                                           assay::v1::DeleteStepCachesResponse* response) {
  if (step_caches_ == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "this coordinator keeps no step caches");
  if (request->key().size() > kMaxCacheKeyBytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "the key is longer than any cache key");
  }
  auto deleted = step_caches_->Delete(request->key(), request->all(), request->pipeline(), request->branch());
  if (!deleted.ok()) return ToGrpc(deleted.status());
  response->set_deleted(*deleted);
  return grpc::Status::OK;
}

grpc::Status JobsService::ListNotifications(grpc::ServerContext*, const assay::v1::ListNotificationsRequest* request,
                                            assay::v1::ListNotificationsResponse* response) {
  auto job = jobs_->GetJob(request->job_id(), /*with_tasks=*/false);  // NOT_FOUND names an unknown job
  if (!job.ok()) return ToGrpc(job.status());
  if (notifier_ == nullptr) return grpc::Status::OK;
  auto list = notifier_->List(request->job_id());
  if (!list.ok()) return ToGrpc(list.status());
  for (auto& n : *list) *response->add_notifications() = std::move(n);
  return grpc::Status::OK;
}

grpc::ServerWriteReactor<Job>* JobsService::WatchJob(grpc::CallbackServerContext*,
                                                     const assay::v1::WatchJobRequest* request) {
  return NewWatchJobReactor(jobs_, executor_, *request);
}

grpc::ServerWriteReactor<assay::v1::LogChunk>* JobsService::StreamLogs(grpc::CallbackServerContext*,
                                                                      const assay::v1::StreamLogsRequest* request) {
  return NewStreamLogsReactor(jobs_, executor_, *request);
}

}  // namespace assay
