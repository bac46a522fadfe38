#include "coordinator/watch_streams.h"

#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/status_util.h"
#include "coordinator/job_store.h"

namespace assay {
namespace {

// What a read produced: messages to write, then whether the stream ends (with `status`).
template <typename Message>
struct Batch {
  std::vector<Message> messages;
  bool end = false;
  bool again = false;  // more is ready now: read again without waiting for a poke
  grpc::Status status;
};

// The part of the reactor that JobManager holds (through its watcher callback): it may outlive the
// reactor, so it points to it only while the reactor lives.
class Poker {
 public:
  template <typename F>
  void Set(F* target) {
    absl::MutexLock lock(&mu_);
    poke_ = [target] { target->Poke(); };
  }
  void Clear() {
    absl::MutexLock lock(&mu_);
    poke_ = nullptr;
  }
  void Poke() {
    absl::MutexLock lock(&mu_);
    if (poke_) poke_();
  }

 private:
  absl::Mutex mu_;
  std::function<void()> poke_ ABSL_GUARDED_BY(mu_);
};

template <typename Message>
class PushStream : public grpc::ServerWriteReactor<Message> {
 public:
  PushStream(JobManager* jobs, ThreadPool* executor, std::string job_id)
      : jobs_(jobs), executor_(executor), job_id_(std::move(job_id)), poker_(std::make_shared<Poker>()) {}

  // Registers with the job and schedules the first read. Call once, after construction.
  void Start() {
    poker_->Set(this);
    auto watcher = jobs_->AddWatcher(job_id_, [poker = poker_] { poker->Poke(); });
    if (watcher.ok()) {
      absl::MutexLock lock(&mu_);
      watcher_ = *watcher;
    }
    // Not in memory: the first read finds the job in the store (or says it does not exist).
    Poke();
  }

  // Something changed: read again (now, or after the read or writes in progress).
  void Poke() {
    absl::MutexLock lock(&mu_);
    dirty_ = true;
    if (busy_ || finishing_) return;
    busy_ = true;
    ScheduleReadLocked();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      FinishOnce(grpc::Status::CANCELLED);
      return;
    }
    WriteNext();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!busy_) FinishLocked(grpc::Status::CANCELLED);  // idle: nobody else will finish it
  }

  void OnDone() override {
    poker_->Clear();
    uint64_t watcher = 0;
    {
      absl::MutexLock lock(&mu_);
      watcher = watcher_;
    }
    if (watcher != 0) jobs_->RemoveWatcher(job_id_, watcher);
    Unref();
  }

 protected:
  // Reads what is new; runs on the executor, never two at once for one stream.
  virtual Batch<Message> Read() = 0;
  JobManager* jobs() { return jobs_; }
  const std::string& job_id() const { return job_id_; }

 private:
  void ScheduleReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    dirty_ = false;
    ++refs_;
    executor_->Run([this] {
      Batch<Message> batch = Read();
      {
        absl::MutexLock lock(&mu_);
        batch_ = std::move(batch);
        next_ = 0;
      }
      WriteNext();
      Unref();
    });
  }

  void WriteNext() {
    absl::MutexLock lock(&mu_);
    if (cancelled_) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (next_ < batch_.messages.size()) {
      this->StartWrite(&batch_.messages[next_++]);  // stays valid: batch_ is replaced only by the next read
      return;
    }
    if (batch_.end) {
      FinishLocked(batch_.status);
      return;
    }
    if (dirty_ || batch_.again) {
      ScheduleReadLocked();
      return;
    }
    busy_ = false;  // wait for a poke
  }

  void FinishOnce(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    FinishLocked(std::move(status));
  }
  void FinishLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finishing_) return;
    finishing_ = true;
    this->Finish(std::move(status));
  }
  void Unref() {
    bool last = false;
    {
      absl::MutexLock lock(&mu_);
      last = --refs_ == 0;
    }
    if (last) delete this;
  }

  JobManager* const jobs_;
  ThreadPool* const executor_;
  const std::string job_id_;
  const std::shared_ptr<Poker> poker_;
  absl::Mutex mu_;
  uint64_t watcher_ ABSL_GUARDED_BY(mu_) = 0;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  // gRPC's until OnDone; one per scheduled read
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // a read or its writes are in progress
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  Batch<Message> batch_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

class WatchJobReactor final : public PushStream<assay::v1::Job> {
 public:
  WatchJobReactor(JobManager* jobs, ThreadPool* executor, const assay::v1::WatchJobRequest& request)
      : PushStream(jobs, executor, request.job_id()) {}

 protected:
  // The job whole, after every change; the stream ends with the job.
  Batch<assay::v1::Job> Read() override {
    Batch<assay::v1::Job> batch;
    auto job = jobs()->GetJob(job_id(), /*with_tasks=*/true);
    if (!job.ok()) {
      batch.end = true;
      batch.status = ToGrpc(job.status());
      return batch;
    }
    batch.end = IsFinal(job->state());
    batch.messages.push_back(std::move(*job));
    return batch;
  }
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
