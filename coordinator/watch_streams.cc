#include "coordinator/watch_streams.h"

#include <memory>
#include <vector>

#include <grpcpp/alarm.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/status_util.h"
#include "coordinator/job_store.h"
#include "coordinator/task_rules.h"

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
    poke_ = [target](bool urgent) { target->Poke(urgent); };
  }
  void Clear() {
    absl::MutexLock lock(&mu_);
    poke_ = nullptr;
  }
  void Poke(bool urgent) {
    absl::MutexLock lock(&mu_);
    if (poke_) poke_(urgent);
  }

 private:
  absl::Mutex mu_;
  std::function<void(bool)> poke_ ABSL_GUARDED_BY(mu_);
};

template <typename Message>
class PushStream : public grpc::ServerWriteReactor<Message> {
 public:
  // `min_interval`: reads start at least this far apart (a job's snapshot costs the whole job), except
  // for the read after the job ended, which starts at once.
  PushStream(JobManager* jobs, ThreadPool* executor, std::string job_id, absl::Duration min_interval = absl::ZeroDuration())
      : jobs_(jobs),
        executor_(executor),
        job_id_(std::move(job_id)),
        min_interval_(min_interval),
        poker_(std::make_shared<Poker>()) {}

  // Registers with the job and schedules the first read. Call once, after construction.
  void Start() {
    poker_->Set(this);
    auto watcher = jobs_->AddWatcher(job_id_, [poker = poker_](bool ended) { poker->Poke(ended); });
    if (watcher.ok()) {
      absl::MutexLock lock(&mu_);
      watcher_ = *watcher;
    }
    // Not in memory: the first read finds the job in the store (or says it does not exist).
    Poke(/*urgent=*/true);
  }

  // Something changed: read again (now, or after the read or writes in progress, or once the
  // minimum interval since the last read is over). `urgent`: the job ended, read at once.
  void Poke(bool urgent) {
    absl::MutexLock lock(&mu_);
    dirty_ = true;
    urgent_ = urgent_ || urgent;
    if (finishing_) return;
    if (alarm_set_) {
      if (urgent) alarm_->Cancel();  // its callback reads now
      return;
    }
    if (busy_) return;
    busy_ = true;
    ReadWhenDueLocked();
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
    if (alarm_set_) alarm_->Cancel();  // its callback finishes the stream
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
  // Reads now, or sets the alarm for when the minimum interval is over.
  void ReadWhenDueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time due = last_read_ + min_interval_;
    if (urgent_ || absl::Now() >= due) {
      ScheduleReadLocked();
      return;
    }
    alarm_set_ = true;
    ++refs_;
    alarm_ = std::make_unique<grpc::Alarm>();  // a fired alarm is not set again: a new one each time
    alarm_->Set(absl::ToChronoTime(due), [this](bool) {
      {
        absl::MutexLock lock(&mu_);
        alarm_set_ = false;
        if (cancelled_) {
          FinishLocked(grpc::Status::CANCELLED);
        } else {
          ScheduleReadLocked();
        }
      }
      Unref();
    });
  }

  void ScheduleReadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    dirty_ = false;
    urgent_ = false;
    last_read_ = absl::Now();
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
    if (batch_.again) {
      ScheduleReadLocked();
      return;
    }
    if (dirty_) {
      ReadWhenDueLocked();
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
  const absl::Duration min_interval_;
  const std::shared_ptr<Poker> poker_;
  absl::Mutex mu_;
  uint64_t watcher_ ABSL_GUARDED_BY(mu_) = 0;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  // gRPC's until OnDone; one per scheduled read
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;  // a read or its writes are in progress
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool urgent_ ABSL_GUARDED_BY(mu_) = false;     // the job ended: the next read is not held back
  absl::Time last_read_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::unique_ptr<grpc::Alarm> alarm_ ABSL_GUARDED_BY(mu_);
  bool alarm_set_ ABSL_GUARDED_BY(mu_) = false;  // a read waits for alarm_
  Batch<Message> batch_ ABSL_GUARDED_BY(mu_);
  size_t next_ ABSL_GUARDED_BY(mu_) = 0;
};

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
