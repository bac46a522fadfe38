// The server-streaming reactor under WatchJob, StreamLogs and Execute: JobManager pokes it when its
// job changes (after the change is written); a poke schedules one read on an executor; the result is
// written, one message in flight at a time; pokes that arrive meanwhile fold into one more read. No
// thread waits per stream.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/alarm.h>
#include <grpcpp/support/server_callback.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/thread_pool.h"
#include "coordinator/job_manager.h"

namespace assay {

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
  // A stream that already ended (cancelled before it started: see RunHeld) registers nothing.
  void Start() {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
    }
    poker_->Set(this);
    auto watcher = jobs_->AddWatcher(job_id_, [poker = poker_](bool ended) { poker->Poke(ended); });
    bool ended_meanwhile = false;
    if (watcher.ok()) {
      absl::MutexLock lock(&mu_);
      watcher_ = *watcher;
      ended_meanwhile = done_;  // OnDone ran before watcher_ was set: it is ours to remove
    }
    if (ended_meanwhile) {
      poker_->Clear();
      jobs_->RemoveWatcher(job_id_, *watcher);
      return;
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

  // Ends a stream that never started watching (Start not called) with `status`.
  void FinishUnstarted(grpc::Status status) { FinishOnce(std::move(status)); }

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
      done_ = true;
      watcher = watcher_;
    }
    if (watcher != 0) jobs_->RemoveWatcher(job_id_, watcher);
    OnStreamEnded();
    Unref();
  }

 protected:
  // Reads what is new; runs on the executor, never two at once for one stream.
  virtual Batch<Message> Read() = 0;
  // The stream is over (gRPC's OnDone), however it ended.
  virtual void OnStreamEnded() {}
  JobManager* jobs() { return jobs_; }
  ThreadPool* executor() { return executor_; }
  // Runs `work` on the executor, keeping the stream alive until it has run. The stream may end
  // meanwhile (a client that cancels at once): Start and FinishUnstarted then do nothing.
  void RunHeld(std::function<void()> work) {
    {
      absl::MutexLock lock(&mu_);
      ++refs_;
    }
    executor_->Run([this, work = std::move(work)] {
      work();
      Unref();
    });
  }
  // gRPC is done with the stream (OnDone ran).
  bool ended() {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  // For a stream that learns its job only once it began (Execute): call before Start.
  void SetJob(std::string job_id) { job_id_ = std::move(job_id); }

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
    if (next_ + 1 == batch_.messages.size() && batch_.end && batch_.status.ok() && !finishing_) {
      // The last message goes out with the stream's status: the client hears the end with it (an
      // Execute's done Operation, a watched job's end), and no write-done round comes first.
      finishing_ = true;
      this->StartWriteAndFinish(&batch_.messages[next_++], grpc::WriteOptions(), batch_.status);
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
  std::string job_id_;  // set before Start (SetJob), then only read
  const absl::Duration min_interval_;
  const std::shared_ptr<Poker> poker_;
  absl::Mutex mu_;
  uint64_t watcher_ ABSL_GUARDED_BY(mu_) = 0;
  int refs_ ABSL_GUARDED_BY(mu_) = 1;  // gRPC's until OnDone; one per scheduled read or RunHeld
  bool done_ ABSL_GUARDED_BY(mu_) = false;  // OnDone ran: nothing may register any more
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

}  // namespace assay
