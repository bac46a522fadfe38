// Tells notification targets of job events (docs/pipeline.md "Notifications"): webhooks signed with
// HMAC-SHA256 and GitHub/GitLab commit statuses, chosen by the pipeline's `notify:` among the
// targets of --notify-config.
//
// An event is written in the same batch as the job state it tells of (OnJobStateLocked is called in
// JobManager's locked section, and its records join that section's group commit), so an event is
// never lost and never told before its state is on disk. Delivery is at least once: each target
// has a thread that sends its events in order (a later event of a job never overtakes an earlier
// one), retries with exponential backoff (retry.initial doubling up to retry.max) until delivered or
// give_up_after has passed, and writes each attempt's outcome. A restart sends what is pending.
// Nothing here ever delays a job.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "assay/v1/job.pb.h"
#include "assay/v1/jobs.pb.h"
#include "common/base/clock.h"
#include "common/rocksdb/database.h"
#include "coordinator/group_commit.h"
#include "coordinator/http_client.h"
#include "coordinator/notify_config.h"

namespace assay {

class Notifier {
 public:
  // The job with its tasks, read when an event is sent (JobManager::GetJob).
  using JobLoader = std::function<absl::StatusOr<assay::v1::Job>(const std::string& id)>;
  // Sends one request (SendHttp; tests give another).
  using Sender = std::function<absl::StatusOr<HttpResponse>(const HttpRequest&, const HttpOptions&)>;

  Notifier(Database* db, NotifyConfig config, const Clock* clock, Sender sender = SendHttp);
  ~Notifier();  // stops

  // Reads the pending notifications and the last outcome of each pipeline and branch (from
  // `recent_jobs`, newest first). Before Start.
  absl::Status Load(const std::vector<assay::v1::Job>& recent_jobs);
  // Starts a thread per target.
  void Start(JobLoader load_job);
  void Stop();

  // The name and kind ("webhook", "github", "gitlab") of every configured target.
  std::map<std::string, NotifyTarget::Kind> Targets() const;

  // A job moved from `previous` to its state: the events it raises for its `notify:` targets are put
  // in `change` (written with the state) and sent once it is written. Called under JobManager's lock:
  // no I/O. Every job's outcome is remembered, with or without `notify:`, for `recovered`.
  void OnJobStateLocked(const assay::v1::Job& job, assay::v1::JobState previous, GroupCommit::Change* change);

  // A job's notifications, in order (read from the database).
  absl::StatusOr<std::vector<assay::v1::Notification>> List(const std::string& job_id) const;

  struct Stats {
    struct Target {
      int64_t delivered = 0, failed = 0, retries = 0, pending = 0;
    };
    std::map<std::string, Target> targets;
  };
  Stats GetStats() const;

 private:
  struct Lane {
    NotifyTarget target;
    std::deque<assay::v1::Notification> queue;  // in order; the front is being tried
    absl::CondVar wake;
    std::thread thread;
    Stats::Target stats;
  };
  void Queue(const assay::v1::Notification& n);
  void Run(Lane* lane);
  // One attempt at `n` (no lock held); updates its state, attempts, times and error.
  void Attempt(const NotifyTarget& target, assay::v1::Notification* n);
  absl::Duration Backoff(int attempts) const;
  void Save(const assay::v1::Notification& n);

  Database* const db_;
  const NotifyConfig config_;
  const Clock* const clock_;
  const Sender sender_;
  JobLoader load_job_;
  std::atomic<bool> stopping_{false};
  mutable absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<Lane>> lanes_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<std::string, bool> last_failed_ ABSL_GUARDED_BY(mu_);  // pipeline + '\0' + branch -> last outcome
};

}  // namespace assay
