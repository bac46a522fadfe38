// REAPI's Execution service (docs/bazel.md): Execute and WaitExecution as server-streaming
// reactors over JobManager. An Execute is checked (ExecuteIntake), looked up in the action cache,
// then becomes a task (or joins the identical one in flight); its stream sends a first Operation
// (QUEUED, named) at once, one at every stage change, and a last one, done, whose ExecuteResponse
// always carries a result when its status is OK. The operation's name is its task's
// ("operations/<job>/<task index>"), so WaitExecution resumes it from the store after a restart.
#pragma once

#include <grpcpp/support/server_callback.h>

#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/base/thread_pool.h"
#include "coordinator/action_cache.h"
#include "coordinator/execute_intake.h"
#include "coordinator/job_manager.h"
#include "google/longrunning/operations.pb.h"
#include "google/rpc/status.pb.h"

namespace assay {

// The status as google.rpc.Status, its PreconditionFailure payload (if any) as a detail.
google::rpc::Status StatusProto(const absl::Status& status);
// The status for a stream's end: the same details travel in grpc-status-details-bin.
grpc::Status ToGrpcWithDetails(const absl::Status& status);

// The ExecuteResponse for a remote task that is final: a run's result (exit code, stdout and stderr)
// with status OK; DEADLINE_EXCEEDED with the partial result of a timed-out run; CANCELLED; and for
// a task that never ran to an exit, FAILED_PRECONDITION (naming the missing inputs, if that is why).
reapi::ExecuteResponse ResponseFor(const assay::v1::Task& task, const std::vector<Digest>& missing_inputs);

class ExecutionService final : public reapi::Execution::CallbackService {
 public:
  ExecutionService(JobManager* jobs, ActionCache* cache, const ExecuteIntake* intake, BlobStore* blobs,
                   ThreadPool* executor)
      : jobs_(jobs), cache_(cache), intake_(intake), blobs_(blobs), executor_(executor) {}

  grpc::ServerWriteReactor<google::longrunning::Operation>* Execute(grpc::CallbackServerContext* context,
                                                                    const reapi::ExecuteRequest* request) override;
  grpc::ServerWriteReactor<google::longrunning::Operation>* WaitExecution(
      grpc::CallbackServerContext* context, const reapi::WaitExecutionRequest* request) override;

 private:
  JobManager* const jobs_;
  ActionCache* const cache_;
  const ExecuteIntake* const intake_;
  BlobStore* const blobs_;  // small stdout and stderr inlined into results (inline_out_err.h)
  ThreadPool* const executor_;
};

}  // namespace assay
