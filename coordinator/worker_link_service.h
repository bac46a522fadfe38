// assay.v1.WorkerLink, the workers' one stream: a transport adapter over JobManager's worker link.
#pragma once

#include "assay/v1/worker_link.grpc.pb.h"
#include "common/base/thread_pool.h"
#include "coordinator/job_manager.h"

namespace assay {

// The worker link on gRPC's callback API: a reactor per connected worker, no thread of its own.
// Heartbeats and log chunks are handled on gRPC's thread (neither waits for the disk); a hello, a
// result and the end of the stream go to `executor` (they wait for the group commit). The next
// message is read only once the last one is handled, so a worker's messages are taken in order.
class WorkerLinkService final : public assay::v1::WorkerLink::CallbackService {
 public:
  WorkerLinkService(JobManager* jobs, ThreadPool* executor) : jobs_(jobs), executor_(executor) {}
  grpc::ServerBidiReactor<assay::v1::WorkerMessage, assay::v1::CoordinatorMessage>* Connect(
      grpc::CallbackServerContext* context) override;

 private:
  JobManager* jobs_;
  ThreadPool* executor_;
};

}  // namespace assay
