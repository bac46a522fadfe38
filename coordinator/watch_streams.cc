#include "coordinator/watch_streams.h"

#include <memory>
#include <vector>

#include "common/base/status_util.h"
#include "coordinator/job_store.h"
#include "coordinator/push_stream.h"
#include "coordinator/task_rules.h"

namespace assay {
namespace {

class WatchJobReactor final : public PushStream<assay::v1::Job> {
 public:
  // A snapshot is the whole job (every task, read under the job manager's lock): at most 20 a second
  // for a watcher however busy the job, and the last one (the job ended) at once.
  static constexpr absl::Duration kMinInterval = absl::Milliseconds(50);
  WatchJobReactor(JobManager* jobs, ThreadPool* executor, const assay::v1::WatchJobRequest& request)
      : PushStream(jobs, executor, request.job_id(), kMinInterval), changes_only_(request.changes_only()) {}

 protected:
  // The job whole, or with only the tasks changed since the last message (changes_only), after every
  // change; the stream ends with the job.
  Batch<assay::v1::Job> Read() override {
    Batch<assay::v1::Job> batch;
    auto job = changes_only_ ? jobs()->GetJobChanges(job_id(), &seen_) : jobs()->GetJob(job_id(), /*with_tasks=*/true);
    if (!job.ok()) {
      batch.end = true;
      batch.status = ToGrpc(job.status());
      return batch;
    }
    batch.end = IsFinal(job->state());
    batch.messages.push_back(std::move(*job));
    return batch;
  }

 private:
  const bool changes_only_;
  uint64_t seen_ = 0;  // GetJobChanges's version; used by one read at a time
};

class StreamLogsReactor final : public PushStream<assay::v1::LogChunk> {
 public:
  static constexpr size_t kChunksPerRead = 256;
  StreamLogsReactor(JobManager* jobs, ThreadPool* executor, const assay::v1::StreamLogsRequest& request)
      : PushStream(jobs, executor, request.job_id()), task_(request.task_id()), follow_(request.follow()) {}

 protected:
  Batch<assay::v1::LogChunk> Read() override {
    Batch<assay::v1::LogChunk> batch;
    auto read = jobs()->ReadLogs(job_id(), task_, &cursor_, kChunksPerRead);
    if (!read.ok()) {
      batch.end = true;
      batch.status = ToGrpc(read.status());
      return batch;
    }
    batch.messages = std::move(read->chunks);
    batch.again = read->more;
    // Without follow: what is there now. With it: until the job is over and all of it was sent.
    batch.end = !read->more && (read->over || !follow_);
    return batch;
  }

 private:
  const std::string task_;
  const bool follow_;
  JobManager::LogCursor cursor_;  // used by one read at a time
};

}  // namespace

grpc::ServerWriteReactor<assay::v1::Job>* NewWatchJobReactor(JobManager* jobs, ThreadPool* executor,
                                                             const assay::v1::WatchJobRequest& request) {
  auto* reactor = new WatchJobReactor(jobs, executor, request);
  reactor->Start();
  return reactor;
}

grpc::ServerWriteReactor<assay::v1::LogChunk>* NewStreamLogsReactor(JobManager* jobs, ThreadPool* executor,
                                                                    const assay::v1::StreamLogsRequest& request) {
  auto* reactor = new StreamLogsReactor(jobs, executor, request);
  reactor->Start();
  return reactor;
}

}  // namespace assay
