#include "coordinator/farm_services.h"

#include <thread>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/status_util.h"

namespace assay {

using assay::v1::Job;

grpc::Status JobsService::Submit(grpc::ServerContext*, const assay::v1::SubmitRequest* request, Job* response) {
  auto job = jobs_->Submit(*request);
  if (!job.ok()) return ToGrpc(job.status());
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

grpc::Status JobsService::WatchJob(grpc::ServerContext* context, const assay::v1::WatchJobRequest* request,
                                   grpc::ServerWriter<Job>* writer) {
  uint64_t version = 0;
  while (!context->IsCancelled()) {
    // A snapshot on every change, and at least once a second so running durations stay current.
    auto job = jobs_->WaitForChange(request->job_id(), &version, absl::Seconds(1));
    if (!job.ok()) return ToGrpc(job.status());
    if (!writer->Write(*job)) return grpc::Status::CANCELLED;
    if (IsFinal(job->state())) return grpc::Status::OK;
  }
  return grpc::Status::CANCELLED;
}

grpc::Status JobsService::StreamLogs(grpc::ServerContext* context, const assay::v1::StreamLogsRequest* request,
                                     grpc::ServerWriter<assay::v1::LogChunk>* writer) {
  JobManager::LogCursor cursor;
  while (!context->IsCancelled()) {
    auto done = jobs_->ReadLogs(request->job_id(), request->task_id(), &cursor,
                                [&](const assay::v1::LogChunk& chunk) { return writer->Write(chunk); });
    if (!done.ok()) return ToGrpc(done.status());
    if (*done || !request->follow()) return grpc::Status::OK;
    jobs_->WaitForLogs(request->job_id(), cursor.log_version, absl::Seconds(1));
  }
  return grpc::Status::CANCELLED;
}

grpc::Status AdminService::ListWorkers(grpc::ServerContext*, const assay::v1::ListWorkersRequest*,
                                       assay::v1::ListWorkersResponse* response) {
  for (auto& w : jobs_->ListWorkers()) *response->add_workers() = std::move(w);
  return grpc::Status::OK;
}

grpc::Status AdminService::GetCacheStats(grpc::ServerContext*, const assay::v1::GetCacheStatsRequest*,
                                         assay::v1::CacheStats* response) {
  *response = CollectCacheStats(blobs_, eviction_, cache_, counters_, /*count_action_results=*/true);
  return grpc::Status::OK;
}

assay::v1::CacheStats CollectCacheStats(RocksDbBlobStore* blobs, EvictingBlobStore* eviction, ActionCache* cache,
                                        const CasCounters* counters, bool count_action_results) {
  assay::v1::CacheStats out;
  auto stats = blobs->stats();
  out.set_bytes(stats.bytes);
  out.set_blobs(stats.blobs);
  out.set_budget_bytes(eviction->budget_bytes());
  out.set_evicted_blobs(eviction->evicted_blobs());
  out.set_evicted_bytes(eviction->evicted_bytes());
  out.set_cas_reads(counters->reads.load());
  out.set_cas_writes(counters->writes.load());
  out.set_ac_hits(cache->hits());
  out.set_ac_misses(cache->misses());
  if (count_action_results) {
    auto entries = cache->CountEntries();
    if (entries.ok()) out.set_action_results(*entries);
  }
  return out;
}

grpc::Status WorkerLinkService::Connect(
    grpc::ServerContext* context, grpc::ServerReaderWriter<assay::v1::CoordinatorMessage, assay::v1::WorkerMessage>* stream) {
  assay::v1::WorkerMessage message;
  if (!stream->Read(&message)) return grpc::Status::CANCELLED;
  if (!message.has_hello()) {
    return ToGrpc(absl::InvalidArgumentError("the first message on the worker link must be a hello"));
  }
  auto session = std::make_shared<WorkerSession>(message.hello().worker_id());
  if (absl::Status s = jobs_->WorkerConnected(message.hello(), session); !s.ok()) return ToGrpc(s);
  const std::string worker = session->worker_id();

  // One writer thread drains the session's queue; this thread reads.
  std::thread writer([&]() {
    while (true) {
      auto next = session->Next(absl::Milliseconds(500));
      if (!next) {
        if (session->closed() || context->IsCancelled()) break;
        continue;
      }
      if (!stream->Write(*next)) break;
    }
    // A closed session (replaced by a reconnect) ends the stream.
    context->TryCancel();
  });

  while (stream->Read(&message)) {
    switch (message.kind_case()) {
      case assay::v1::WorkerMessage::kHeartbeat:
        jobs_->OnHeartbeat(worker, message.heartbeat());
        break;
      case assay::v1::WorkerMessage::kLog:
        jobs_->OnLog(worker, message.log());
        break;
      case assay::v1::WorkerMessage::kResult: {
        absl::Status s = jobs_->OnResult(worker, message.result());
        if (!s.ok()) spdlog::debug("result from {} not taken: {}", worker, s.message());
        break;
      }
      default:
        spdlog::warn("worker {} sent an unexpected message; ignored", worker);
    }
  }
  jobs_->WorkerDisconnected(session);
  session->Close();
  writer.join();
  return grpc::Status::OK;
}

}  // namespace assay
