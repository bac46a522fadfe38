#include "coordinator/farm_services.h"


#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/status_util.h"
#include "coordinator/watch_streams.h"

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

grpc::ServerWriteReactor<Job>* JobsService::WatchJob(grpc::CallbackServerContext*,
                                                     const assay::v1::WatchJobRequest* request) {
  return NewWatchJobReactor(jobs_, executor_, *request);
}

grpc::ServerWriteReactor<assay::v1::LogChunk>* JobsService::StreamLogs(grpc::CallbackServerContext*,
                                                                      const assay::v1::StreamLogsRequest* request) {
  return NewStreamLogsReactor(jobs_, executor_, *request);
}

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

namespace {

class WorkerLinkReactor final
    : public grpc::ServerBidiReactor<assay::v1::WorkerMessage, assay::v1::CoordinatorMessage> {
 public:
  WorkerLinkReactor(JobManager* jobs, ThreadPool* executor, BlobStore* blobs)
      : jobs_(jobs), executor_(executor), blobs_(blobs) {
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the worker went away, or the stream was finished
      Defer([this] { Ended(); });
      return;
    }
    if (!session_) {
      if (!in_.has_hello()) {
        FinishWith(ToGrpc(absl::InvalidArgumentError("the first message on the worker link must be a hello")));
        return;
      }
      Defer([this, hello = in_.hello()] { Hello(hello); });
      return;
    }
    switch (in_.kind_case()) {
      case assay::v1::WorkerMessage::kHeartbeat:
        jobs_->OnHeartbeat(session_->worker_id(), in_.heartbeat());
        StartRead(&in_);
        break;
      case assay::v1::WorkerMessage::kLog:
        jobs_->OnLog(session_->worker_id(), in_.log());
        StartRead(&in_);
        break;
      case assay::v1::WorkerMessage::kStopping:
        jobs_->OnStopping(session_->worker_id(), in_.stopping());
        StartRead(&in_);
        break;
      case assay::v1::WorkerMessage::kResult:
        Defer([this, result = std::move(*in_.mutable_result())]() mutable {
          StoreInlineBlobs(&result);
          absl::Status s = jobs_->OnResult(session_->worker_id(), result);
          if (!s.ok()) spdlog::info("result from worker {} not taken: {}", session_->worker_id(), s.message());
          StartRead(&in_);
        });
        break;
      default:
        spdlog::warn("worker {} sent an unexpected message; ignored", session_->worker_id());
        StartRead(&in_);
    }
  }

  void OnWriteDone(bool ok) override { session_->WriteDone(ok); }

  void OnDone() override { Unref(); }

 private:
  // Runs `work` on the executor, keeping this reactor alive until it has run.
  void Defer(std::function<void()> work) {
    {
      absl::MutexLock lock(&mu_);
      ++refs_;
    }
    executor_->Run([this, work = std::move(work)] {
      work();
      Unref();
    });
  }
  void Unref() {
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }

  void Hello(const assay::v1::WorkerHello& hello) {
    auto session = std::make_shared<WorkerSession>(hello.worker_id());
    session->Attach([this](const assay::v1::CoordinatorMessage* message) { StartWrite(message); },
                    [this] { FinishWhenIdle(); });
    session_ = session;
    if (absl::Status s = jobs_->WorkerConnected(hello, session); !s.ok()) {
      {
        absl::MutexLock lock(&mu_);
        status_ = ToGrpc(s);
      }
      session->Close();
      return;
    }
    StartRead(&in_);
  }

  // Blobs sent with a result go to the CAS (verified against their digests) before the result is
  // taken, so everything it refers to is there; a blob that fails makes the result an error.
  void StoreInlineBlobs(assay::v1::TaskResult* result) {
    for (const auto& blob : result->inline_blobs()) {
      auto digest = Digest::FromProto(blob.digest());
      absl::Status s = digest.ok() ? blobs_->Put(*digest, blob.data()) : digest.status();
      if (!s.ok()) {
        spdlog::warn("worker {}: a blob sent with a result was refused: {}", session_->worker_id(), s.message());
        if (result->error().empty()) result->set_error(absl::StrCat("storing an output: ", s.message()));
      }
    }
    result->clear_inline_blobs();
  }

  void Ended() {
    if (session_) {
      jobs_->WorkerDisconnected(session_);
      session_->Close();  // ends the stream once no write is in flight
    } else {
      FinishWhenIdle();
    }
  }

  void FinishWith(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      status_ = std::move(status);
    }
    FinishWhenIdle();
  }

  // Finishes the stream once (a closed session: replaced by a reconnect, or the worker gone), never
  // while a write is in flight.
  void FinishWhenIdle() {
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || (session_ && !session_->idle())) return;
      finished_ = true;
      status = status_;
    }
    Finish(status);
  }

  JobManager* const jobs_;
  ThreadPool* const executor_;
  BlobStore* const blobs_;
  assay::v1::WorkerMessage in_;                // one read at a time
  std::shared_ptr<WorkerSession> session_;     // set by Hello, before the second read starts
  absl::Mutex mu_;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;          // gRPC's, until OnDone; one per deferred piece of work
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<assay::v1::WorkerMessage, assay::v1::CoordinatorMessage>* WorkerLinkService::Connect(
    grpc::CallbackServerContext*) {
  return new WorkerLinkReactor(jobs_, executor_, blobs_);
}

}  // namespace assay
