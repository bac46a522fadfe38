// WatchJob and StreamLogs on gRPC's callback API: each open stream is a reactor that JobManager
// pokes when its job changes (after the change is written). A poke schedules one read on an
// executor; the result is written, one message in flight at a time; pokes that arrive meanwhile
// fold into one more read. No thread waits per watcher, and a log chunk wakes only its job's streams.
#pragma once

#include <grpcpp/support/server_callback.h>

#include "assay/v1/jobs.pb.h"
#include "common/base/thread_pool.h"
#include "coordinator/job_manager.h"

namespace assay {

grpc::ServerWriteReactor<assay::v1::Job>* NewWatchJobReactor(JobManager* jobs, ThreadPool* executor,
                                                             const assay::v1::WatchJobRequest& request);
grpc::ServerWriteReactor<assay::v1::LogChunk>* NewStreamLogsReactor(JobManager* jobs, ThreadPool* executor,
                                                                    const assay::v1::StreamLogsRequest& request);

}  // namespace assay
