#include "coordinator/worker_link_service.h"

#include <spdlog/spdlog.h>

#include "common/base/status_util.h"

namespace assay {

namespace {

class WorkerLinkReactor final
    : public grpc::ServerBidiReactor<assay::v1::WorkerMessage, assay::v1::CoordinatorMessage> {
 public:
  WorkerLinkReactor(JobManager* jobs, ThreadPool* executor) : jobs_(jobs), executor_(executor) {
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
          absl::Status s = jobs_->OnResult(session_->worker_id(), std::move(result));
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
  return new WorkerLinkReactor(jobs_, executor_);
}

}  // namespace assay
