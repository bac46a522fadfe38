#include "coordinator/execution_service.h"

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/task/task_states.h"
#include "coordinator/inline_out_err.h"
#include "coordinator/push_stream.h"

namespace assay {

using assay::v1::Task;
using google::longrunning::Operation;

namespace {

constexpr const char* kRequestMetadataHeader = "build.bazel.remote.execution.v2.requestmetadata-bin";

std::string OperationName(const std::string& job, int32_t index) { return absl::StrCat("operations/", job, "/", index); }

// "operations/<job>/<index>" back to its parts; false for any other name.
bool ParseOperationName(const std::string& name, std::string* job, int32_t* index) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  uint64_t number = 0;
  return parts.size() == 3 && parts[0] == "operations" && absl::SimpleAtoi(parts[1], &number) &&
         absl::SimpleAtoi(parts[2], index) && *index >= 0 && (*job = parts[1], true);
}

reapi::RequestMetadata MetadataOf(const grpc::CallbackServerContext* context) {
  reapi::RequestMetadata metadata;
  const auto& headers = context->client_metadata();
  auto it = headers.find(kRequestMetadataHeader);
  if (it != headers.end()) metadata.ParseFromArray(it->second.data(), static_cast<int>(it->second.size()));
  return metadata;
}

reapi::ExecutionStage::Value StageOf(const Task& task) {
  if (IsFinal(task.state())) return reapi::ExecutionStage::COMPLETED;
  if (task.state() == assay::v1::TASK_RUNNING) return reapi::ExecutionStage::EXECUTING;
  return reapi::ExecutionStage::QUEUED;
}

Operation MakeOperation(const std::string& name, const reapi::Digest& action, reapi::ExecutionStage::Value stage) {
  Operation op;
  op.set_name(name);
  reapi::ExecuteOperationMetadata metadata;
  metadata.set_stage(stage);
  *metadata.mutable_action_digest() = action;
  op.mutable_metadata()->PackFrom(metadata);
  return op;
}

// The task's command ran and exited (its result is the run's), or the task succeeded.
bool RanToAnExit(const Task& task) {
  return task.has_result() && !task.timed_out() && (task.exit_code() != 0 || task.state() == assay::v1::TASK_SUCCEEDED);
}

// One Execute or WaitExecution stream: the operation of one task, from its current stage to done.
class OperationStream final : public PushStream<Operation> {
 public:
  OperationStream(JobManager* jobs, ThreadPool* executor, const ExecuteIntake* intake, BlobStore* blobs)
      : PushStream(jobs, executor, ""), intake_(intake), blobs_(blobs) {}

  // Execute: checks the action, answers a cache hit at once, else makes it a task and follows it.
  void BeginExecute(ActionCache* cache, reapi::ExecuteRequest request, reapi::RequestMetadata metadata) {
    RunHeld([this, cache, request = std::move(request), metadata = std::move(metadata)] {
      auto action = intake_->Accept(request, metadata);
      if (!action.ok()) {
        FinishUnstarted(ToGrpcWithDetails(action.status()));
        return;
      }
      if (!action->skip_cache_lookup && !action->action.do_not_cache()) {
        if (auto hit = cache->Get(action->instance_name, action->action_digest); hit.ok()) {
          reapi::ExecuteResponse response;
          *response.mutable_result() = std::move(*hit);
          InlineOutErr(*blobs_, false, false, response.mutable_result());
          response.set_cached_result(true);
          response.mutable_status()->set_code(0);
          cached_ = MakeOperation(absl::StrCat("operations/cached/", action->action_digest.hash()),
                                  action->action_digest.ToProto(), reapi::ExecutionStage::COMPLETED);
          cached_->set_done(true);
          cached_->mutable_response()->PackFrom(response);
          Start();
          return;
        }
      }
      auto ticket = jobs()->Execute(*action);
      if (!ticket.ok()) {
        FinishUnstarted(ToGrpcWithDetails(ticket.status()));
        return;
      }
      spdlog::debug("execute {}: operation {} ({})", action->action_digest.ToString(),
                    OperationName(ticket->job_id, ticket->index), ticket->joined ? "joined" : "queued");
      announce_queued_ = true;
      Following(ticket->job_id, ticket->index);  // Execute counted this stream as the task's follower
      if (ended() && following_.exchange(false)) {  // the client left while the action was queued
        jobs()->FollowRemoteTask(ticket->job_id, ticket->index, /*following=*/false);
        return;
      }
      Follow(ticket->job_id, ticket->index);
    });
  }

  void Following(const std::string& job, int32_t index) {
    followed_job_ = job;
    followed_index_ = index;
    following_ = true;
  }

  void Follow(const std::string& job, int32_t index) {
    index_ = index;
    name_ = OperationName(job, index);
    SetJob(job);
    Start();
  }

  // WaitExecution: this stream follows the task from now (an abandoned task is cancelled).
  void Resume(const std::string& job, int32_t index) {
    jobs()->FollowRemoteTask(job, index, /*following=*/true);
    Following(job, index);
    Follow(job, index);
  }

 protected:
  void OnStreamEnded() override {
    if (following_.exchange(false)) jobs()->FollowRemoteTask(followed_job_, followed_index_, /*following=*/false);
  }

  Batch<Operation> Read() override {
    Batch<Operation> batch;
    if (cached_.has_value()) {
      batch.messages.push_back(*cached_);
      batch.end = true;
      return batch;
    }
    auto task = jobs()->GetTask(job_id(), index_);
    if (!task.ok() || !task->spec().remote()) {
      batch.end = true;
      batch.status = grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no operation ", name_, " on this farm"));
      return batch;
    }
    const reapi::ExecutionStage::Value stage = StageOf(*task);
    if (stage == sent_) return batch;  // a change of the job, not of this operation's stage
    if (sent_ == reapi::ExecutionStage::UNKNOWN && announce_queued_ && stage != reapi::ExecutionStage::QUEUED) {
      // Execute's first Operation says QUEUED, even when a free slot took the task at once.
      batch.messages.push_back(MakeOperation(name_, task->action_digest(), reapi::ExecutionStage::QUEUED));
    }
    sent_ = stage;
    Operation op = MakeOperation(name_, task->action_digest(), stage);
    if (stage == reapi::ExecutionStage::COMPLETED) {
      std::vector<Digest> missing;
      if (task->state() == assay::v1::TASK_FAILED && !RanToAnExit(*task)) {  // perhaps inputs went missing
        auto digest = Digest::FromProto(task->action_digest());
        auto absent = digest.ok() ? intake_->MissingInputsOf(*digest) : digest.status();
        if (absent.ok()) missing = std::move(*absent);
      }
      op.set_done(true);
      reapi::ExecuteResponse response = ResponseFor(*task, missing);
      if (response.has_result()) InlineOutErr(*blobs_, false, false, response.mutable_result());
      op.mutable_response()->PackFrom(response);
      batch.end = true;
    }
    batch.messages.push_back(std::move(op));
    return batch;
  }

 private:
  const ExecuteIntake* const intake_;
  BlobStore* const blobs_;
  int32_t index_ = 0;
  std::string name_;
  std::optional<Operation> cached_;  // an action-cache hit: the one message
  bool announce_queued_ = false;     // an Execute (not a WaitExecution): the first Operation is QUEUED
  // Counted among the task's followers (FollowRemoteTask); whoever clears following_ says the stream
  // stopped following. The task is written before following_ is set, and read after it is cleared.
  std::atomic<bool> following_{false};
  std::string followed_job_;
  int32_t followed_index_ = 0;
  reapi::ExecutionStage::Value sent_ = reapi::ExecutionStage::UNKNOWN;  // used by one read at a time
};

}  // namespace

google::rpc::Status StatusProto(const absl::Status& status) {
  google::rpc::Status proto;
  proto.set_code(static_cast<int32_t>(status.code()));
  proto.set_message(std::string(status.message()));
  if (auto payload = status.GetPayload(kPreconditionFailureType); payload.has_value()) {
    auto* detail = proto.add_details();
    detail->set_type_url(kPreconditionFailureType);
    detail->set_value(std::string(*payload));
  }
  return proto;
}

grpc::Status ToGrpcWithDetails(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  if (!status.GetPayload(kPreconditionFailureType).has_value()) return grpc::Status(code, std::string(status.message()));
  return grpc::Status(code, std::string(status.message()), StatusProto(status).SerializeAsString());
}

reapi::ExecuteResponse ResponseFor(const Task& task, const std::vector<Digest>& missing_inputs) {
  reapi::ExecuteResponse response;
  response.set_message(task.message());
  response.set_cached_result(task.cached());
  if (task.timed_out()) {
    *response.mutable_result() = task.result();  // the output it printed before
    *response.mutable_status() = StatusProto(absl::DeadlineExceededError(
        absl::StrCat("the action ran out of its ", task.spec().timeout_ms(), " ms timeout: ", task.message())));
  } else if (RanToAnExit(task)) {
    *response.mutable_result() = task.result();
    response.mutable_result()->set_exit_code(task.exit_code());
    response.mutable_status()->set_code(0);
  } else if (task.state() == assay::v1::TASK_CANCELLED) {
    *response.mutable_status() = StatusProto(absl::CancelledError(task.message()));
  } else if (!missing_inputs.empty()) {
    *response.mutable_status() = StatusProto(MissingBlobsError(missing_inputs, "action's inputs"));
  } else {
    // Not UNAVAILABLE or INTERNAL: Bazel retries those, then aborts the whole build.
    *response.mutable_status() = StatusProto(absl::FailedPreconditionError(
        absl::StrCat("the farm could not run the action: ", task.message().empty() ? "no reason given" : task.message())));
  }
  return response;
}

grpc::ServerWriteReactor<Operation>* ExecutionService::Execute(grpc::CallbackServerContext* context,
                                                               const reapi::ExecuteRequest* request) {
  auto* stream = new OperationStream(jobs_, executor_, intake_, blobs_);
  stream->BeginExecute(cache_, *request, MetadataOf(context));
  return stream;
}

grpc::ServerWriteReactor<Operation>* ExecutionService::WaitExecution(grpc::CallbackServerContext*,
                                                                     const reapi::WaitExecutionRequest* request) {
  auto* stream = new OperationStream(jobs_, executor_, intake_, blobs_);
  std::string job;
  int32_t index = 0;
  if (!ParseOperationName(request->name(), &job, &index)) {
    // Bazel executes again on NOT_FOUND: an operation this farm never named is one it does not know.
    stream->FinishUnstarted(grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no operation ", request->name())));
    return stream;
  }
  stream->Resume(job, index);
  return stream;
}

}  // namespace assay
