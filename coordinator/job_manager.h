// The single writer of job state: turns submissions into tasks, moves tasks through their states,
// hands them to workers through the Scheduler, and tells watchers about every change.
// Every state change is persisted (JobStore) before anyone is told about it.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "assay/v1/admin.pb.h"
#include "assay/v1/jobs.pb.h"
#include "assay/v1/worker_link.pb.h"
#include "common/base/clock.h"
#include "common/base/latency_histogram.h"
#include "common/cas/blob_pinner.h"
#include "common/cas/blob_store.h"
#include "common/pipeline/pipeline.h"
#include "common/tree/tree_validator.h"
#include "coordinator/action_builder.h"
#include "coordinator/action_cache.h"
#include "coordinator/baseline.h"
#include "coordinator/dispatcher.h"
#include "coordinator/execute_intake.h"
#include "coordinator/group_commit.h"
#include "coordinator/intake.h"
#include "coordinator/job_store.h"
#include "coordinator/notifier.h"
#include "coordinator/run_history.h"
#include "coordinator/scheduler.h"
#include "coordinator/step_cache_store.h"
#include "coordinator/task_rules.h"
#include "coordinator/watchers.h"
#include "coordinator/worker_session.h"

namespace assay {

class JobManager {
 public:
  struct Options {
    absl::Duration lease_ttl = absl::Seconds(30);
    absl::Duration heartbeat_interval = absl::Seconds(5);
    PipelineLimits limits;
    TreeLimits tree_limits;             // what a submitted source tree may be
    int max_lost_attempts = 3;          // requeues after a worker vanished, before the task fails
    size_t finished_jobs_in_memory = 200;
    // A queued task whose labels no worker connected, or seen within this long, offers fails then.
    absl::Duration unschedulable_grace = absl::Minutes(5);
    StepCacheStore* step_caches = nullptr;  // the farm's step caches (`caches:`); null: none restored or saved
    Notifier* notifier = nullptr;           // tells `notify:` targets of job events; null: no targets configured
    // A job of remote actions (a Bazel invocation) ends once it has been idle this long: every task
    // final and none added.
    absl::Duration remote_job_idle = absl::Seconds(30);
    // A remote action no Execute or WaitExecution stream has followed for this long is cancelled.
    absl::Duration remote_abandoned_grace = absl::Seconds(60);
    // While the disk refuses the state's writes (they are kept in memory until it takes them), live
    // output past this many kept bytes is not taken: the gap is noted when output comes again.
    size_t max_kept_bytes = size_t{64} << 20;
    // Writes the state's batches; empty: the store's database (tests put a disk that fails here).
    GroupCommit::Writer state_writer;
  };

  // `pinner` keeps the blobs of running tasks from eviction (may be null). `blobs` is in `store`'s
  // database, or durable on its own (a bucket): a result's small outputs are put unsynced, and the
  // result's synced record, written after them, makes them durable (BlobStore::PutManyUnsynced).
  JobManager(JobStore* store, BlobStore* blobs, BlobPinner* pinner, ActionCache* action_cache, const Clock* clock,
             Options options);

  // Loads unfinished jobs after a restart and queues their runnable tasks again.
  absl::Status Recover();

  // --- the jobs API
  absl::StatusOr<assay::v1::Job> Submit(const assay::v1::SubmitRequest& request);
  absl::StatusOr<assay::v1::Job> GetJob(const std::string& id, bool with_tasks);
  // The job with only the tasks that changed since `*version` (0: every task), for WatchJob's
  // changes_only; sets `*version` to what the caller has now seen. A job no longer in memory comes
  // whole from the store (and `*version` is 0 again).
  absl::StatusOr<assay::v1::Job> GetJobChanges(const std::string& id, uint64_t* version);
  absl::StatusOr<std::vector<assay::v1::Job>> ListJobs(int limit);
  // One task of a job, once its last change is written (an Execute's operation).
  absl::StatusOr<assay::v1::Task> GetTask(const std::string& id, int32_t index);

  // --- remote execution (REAPI Execute, docs/bazel.md)
  struct ExecuteTicket {
    std::string job_id;
    int32_t index = 0;
    bool joined = false;  // an identical action was already queued or running: this joins it
  };
  // Makes the checked action (ExecuteIntake) a task of its invocation's open job (created on its
  // first action), or joins the identical action in flight (unless do_not_cache). FAILED_PRECONDITION
  // when no worker connected or recently seen offers the required labels (naming the closest).
  absl::StatusOr<ExecuteTicket> Execute(const RemoteAction& action);
  // A stream follows the remote task (WaitExecution; Execute's own stream is counted by Execute), or
  // stopped following it. A task nobody follows is cancelled after `remote_abandoned_grace`.
  void FollowRemoteTask(const std::string& job_id, int32_t index, bool following);
  absl::StatusOr<assay::v1::Job> Cancel(const std::string& id);
  // Calls `on_change` after every change of the job is written (the job's state, its tasks, new log
  // chunks), and about once a second while it is unfinished, so durations shown stay current.
  // `on_change` runs on whichever thread made the change and must not block (it schedules a read);
  // its argument says the job has ended (the change it hears of is the last).
  // NotFound when the job is not in memory (finished long ago: read it once, it will not change).
  absl::StatusOr<uint64_t> AddWatcher(const std::string& id, std::function<void(bool ended)> on_change);
  void RemoveWatcher(const std::string& id, uint64_t watcher);

  struct LogCursor {
    std::map<int32_t, uint32_t> next_seq;  // per task index
    bool removed_note_sent = false;        // the note that log retention removed them
  };
  struct LogRead {
    std::vector<assay::v1::LogChunk> chunks;
    bool more = false;  // stopped at max_chunks: read again
    bool over = false;  // the job is final and every chunk of it has been read
  };
  // The job's log chunks after `cursor`, for tasks whose id is `task_prefix` or starts with it and a
  // '/', at most `max_chunks` of them (read outside the lock). Advances the cursor.
  absl::StatusOr<LogRead> ReadLogs(const std::string& id, const std::string& task_prefix, LogCursor* cursor,
                                   size_t max_chunks);

  // --- the worker link
  absl::Status WorkerConnected(const assay::v1::WorkerHello& hello, std::shared_ptr<WorkerSession> session);
  void WorkerDisconnected(const std::shared_ptr<WorkerSession>& session);
  void OnHeartbeat(const std::string& worker, const assay::v1::Heartbeat& heartbeat);
  void OnLog(const std::string& worker, const assay::v1::TaskLog& log);
  // The worker is stopping (SIGTERM): it gets no new tasks; what it runs may still finish.
  void OnStopping(const std::string& worker, const assay::v1::Stopping& stopping);
  // Blobs sent inline with the result are stored (verified) first, without the lock, so everything
  // the result refers to is in the CAS; a blob refused makes the result an error.
  absl::Status OnResult(const std::string& worker, assay::v1::TaskResult result);
  // Expires leases that were not renewed. Called periodically.
  void Tick();

  std::vector<assay::v1::Worker> ListWorkers();
  // Cordons, drains or reactivates a worker the coordinator knows (connected or seen); the state is
  // written before it takes effect. NOT_FOUND names the known workers.
  absl::StatusOr<assay::v1::Worker> SetWorkerState(const std::string& worker, assay::v1::WorkerAdminState state);

  // Figures for monitoring, read now.
  struct Stats {
    int64_t jobs_active = 0;                                   // not yet finished
    int64_t tasks_pending = 0, tasks_queued = 0, tasks_running = 0;  // of unfinished jobs
    std::map<std::string, int64_t> tasks_queued_by_requirements;  // the queued ones by RequirementsKey
    int64_t workers_connected = 0, slots = 0, slots_busy = 0;
    std::map<std::string, int64_t> jobs_finished;              // by JobState name, since start
    std::map<std::pair<std::string, bool>, int64_t> tasks_finished;  // by (TaskState name, cached)
    LatencyHistogram::Snapshot heartbeat_seconds;  // handling a worker's heartbeat, lock wait included
    int64_t state_writes = 0, state_writes_synced = 0;  // group commits of jobs' changes, since start
    // Jobs' changes not yet written; they wait in memory while the disk refuses them, and past
    // Options::max_kept_bytes live output is no longer taken.
    int64_t state_bytes_waiting = 0;
  };
  Stats GetStats();
  const Options& options() const { return options_; }

 private:
  // How far a running attempt's log holds its stdout and stderr (bytes received live, or stood for
  // by a note with a gap), and whether it ends mid-line. Bytes the live link lost are noted where
  // they were lost, and at the result the bytes its stdout/stderr hold beyond them, so a finished
  // task's log is served whole (complete_log.h) whatever reached the coordinator live.
  struct LiveOutput {
    int64_t bytes[2] = {0, 0};  // stdout, stderr
    bool mid_line = false;
    bool untracked = false;  // a worker that sends no offsets: nothing is noted
  };
  struct JobEntry {
    uint64_t number = 0;
    assay::v1::Job job;                      // with tasks
    absl::flat_hash_map<std::string, int32_t> task_index;
    std::vector<uint32_t> next_seq;          // next log sequence number per task
    bool cancel_requested = false;
    bool fail_fast_done = false;  // fail_fast has cancelled the rest
    uint64_t last_ticket = 0;  // the group commit that holds this job's newest change
    std::vector<std::vector<int32_t>> dependents;  // by task index: the tasks that need it (built on first use)
    // Queued tasks whose labels no worker offered when they were queued (their message names the
    // labels); a worker that connects with them clears it.
    std::set<int32_t> awaiting_worker;
    // The job state notification targets were last told of (Notifier::OnJobStateLocked).
    assay::v1::JobState told_state = assay::v1::JOB_QUEUED;
    // Bumped at every change of a task (PersistLocked); task_versions[index] is the task's last
    // change, so a watcher is sent only what it has not seen (GetJobChanges). 0 is "nothing seen".
    uint64_t version = 1;
    std::vector<uint64_t> task_versions;
    int64_t last_added_ms = 0;  // an open job: when its last task was added (it closes once idle)
    // By task index, for its running attempt: how far its log holds its stdout and stderr.
    absl::flat_hash_map<int32_t, LiveOutput> live_output;
  };
  using PrepareWork = ActionBuilder::Work;
  using Prepared = ActionBuilder::Prepared;
  // A job Intake accepted, written and put in memory; its first tasks are made ready.
  absl::StatusOr<uint64_t> CreateJob(const assay::v1::SubmitRequest& request, Intake::Accepted accepted,
                                     std::vector<std::string>* warnings) ABSL_LOCKS_EXCLUDED(mu_);
  // Why some of the job's tasks may wait (labels no worker has), as warnings for the submitter.
  std::vector<std::string> UnschedulableWarningsLocked(const JobEntry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<JobEntry*> FindLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `read` of the job under the lock once its last change is written; from the store (with or
  // without its tasks) when it is no longer in memory.
  absl::StatusOr<assay::v1::Job> ReadJob(const std::string& id, bool with_tasks,
                                         const std::function<assay::v1::Job(JobEntry&)>& read) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every unfinished task of the job as CANCELLED with `reason`, killing running ones.
  void CancelTasksLocked(JobEntry* entry, const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelTaskLocked(JobEntry* entry, assay::v1::Task* task, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  JobEntry* ActiveLocked(uint64_t number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves PENDING tasks whose needs are settled, and finishes the job when every task is final.
  void AdvanceLocked(JobEntry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks a task to be prepared once the lock is released (see Decide).
  void MakeReadyLocked(JobEntry* entry, assay::v1::Task* task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues the task, or finishes it from the cache or with the error; nothing if it was cancelled
  // meanwhile.
  void ApplyPreparedLocked(const PrepareWork& work, Prepared prepared) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DispatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Renews the leases a heartbeat names (takes the lock).
  void RenewLeases(const std::string& worker, const assay::v1::Heartbeat& heartbeat) ABSL_LOCKS_EXCLUDED(mu_);
  void TakeLogLocked(const assay::v1::TaskLog& log) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A running attempt's output chunk into its log, after a note for the bytes before it that never
  // came (LiveOutput); a chunk whose bytes the log holds already is left out.
  void TakeOutputLocked(JobEntry* entry, const assay::v1::Task& task, const assay::v1::TaskLog& log)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // At a run's result: a note for the bytes of its stdout and stderr (their sizes) the log lacks.
  void NoteMissingOutputLocked(JobEntry* entry, const assay::v1::Task& task, int64_t stdout_bytes,
                               int64_t stderr_bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AppendMissingNoteLocked(JobEntry* entry, const assay::v1::Task& task, LiveOutput* live,
                               const assay::v1::LogGap& gap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StoreInlineBlobs(const std::string& worker, assay::v1::TaskResult* result) ABSL_LOCKS_EXCLUDED(mu_);
  // What taking a result leaves to do once the lock is released.
  struct ResultEffects {
    absl::Status complete;     // set before the section: whether the CAS holds every output
    bool wanted_cache = false;  // the result was cacheable (recorded when `complete`)
    std::optional<std::pair<Digest, reapi::ActionResult>> recorded;  // and recorded: for the bucket too
    std::string cache_instance;                                       // under this instance name
    std::string pipeline, branch, job_id, task_id;                    // whose step caches these are
    std::vector<assay::v1::SavedStepCache> caches;                    // step caches to record
  };
  // Takes a worker's result; what is left to write is returned in `effects`.
  absl::Status ApplyResultLocked(const std::string& worker, const assay::v1::TaskResult& result,
                                 ResultEffects* effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes them (no lock held).
  void ApplyResultEffects(const ResultEffects& effects) ABSL_LOCKS_EXCLUDED(mu_);
  // A prefetched task its worker handed back unstarted: queued again for the next free slot.
  void TakeBackLocked(const std::string& worker, JobEntry* entry, assay::v1::Task* task, const std::string& lease_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A run that ended: retried, or the task finished with its verdict.
  void TakeRunLocked(JobEntry* entry, assay::v1::Task* task, const assay::v1::TaskResult& result,
                     ResultEffects* effects) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void FinishTaskLocked(JobEntry* entry, assay::v1::Task* task, assay::v1::TaskState state, std::string message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tick's parts: tasks no worker could run within the grace period fail; unrenewed leases expire.
  void FailUnschedulableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLeasesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A running task lost its worker: queue it again, or fail it after too many tries.
  void RequeueLostLocked(JobEntry* entry, assay::v1::Task* task, const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a task that ran back on the scheduler's queue.
  void QueueAgainLocked(JobEntry* entry, assay::v1::Task* task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks a task (and the job's summary) for the next group commit (watchers hear of it once written).
  // `synced`: the commit is fsynced (results, and whatever a client or worker was told). A task's
  // progress that the farm redoes after a crash (prepared and queued, handed to a worker) need not
  // be: it reaches the disk with the next synced commit, and RocksDB's log keeps commits in order, so
  // a power loss can lose such a change only with every change after it.
  void PersistLocked(JobEntry* entry, const assay::v1::Task& task, bool job_changed, bool synced = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks a job's summary for the next group commit, fsynced.
  void MarkJobChangedLocked(uint64_t number) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts every change marked in this locked section into one batch and hands it to the group commit
  // (which writes it after the lock is released). Returns its ticket (0: nothing to write).
  uint64_t FlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends a message to a worker once this section's changes are on disk, in the order decided.
  // A CancelTask for the task's current attempt (and `lease_id`, when known); `if_not_started`: only
  // if its worker holds it unstarted (a prefetched task asked back).
  static assay::v1::CoordinatorMessage CancelMessage(const assay::v1::Job& job, const assay::v1::Task& task,
                                                     const std::string& lease_id, const std::string& reason,
                                                     bool if_not_started = false);
  void SendLocked(const std::shared_ptr<WorkerSession>& session, assay::v1::CoordinatorMessage message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends a welcome or an assignment as soon as the lock is released, before the section's changes
  // are on disk (and before messages sent with SendLocked): a worker may start a task whose lease a
  // crash then takes back, and that is safe (a worker cancels its tasks when its link drops; the
  // restarted coordinator queues the task again and fences the old lease; a cancel names the lease
  // and attempt it is for, so one that arrives late cannot stop a newer attempt), while nobody else
  // hears of anything before it is written. This keeps the disk's flush out of the gap between a
  // worker's tasks.
  void SendEarlyLocked(const std::shared_ptr<WorkerSession>& session, assay::v1::CoordinatorMessage message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // One decision under mu_ (a locked section). Decide(body) takes mu_, runs `body`, then ends the
  // section (EndSection, job_manager_sections.cc): its changes go to the group commit, the lock is
  // let go, welcomes and assignments are sent, the caller waits until the changes (and whatever the
  // section read, see NeedWritten) are on disk, so nobody hears of a state that a crash could take
  // back; then the tasks that became ready are prepared without the lock (PrepareReady, a loop).
  // No disk or CAS I/O ever happens under mu_. Each body is annotated
  // ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_), so clang's -Wthread-safety checks it as running under mu_.
  // kNoWait: the section answers nobody (a log chunk), so it hands its changes to the group commit
  // without waiting for them; whoever reads them next waits (NeedWritten). It still waits once more
  // than kMaxUnwaitedBytes are queued, so memory stays bounded.
  enum class Mode { kWait, kNoWait };
  static constexpr size_t kMaxUnwaitedBytes = 1 << 20;
  class Section {
   public:
    explicit Section(Mode mode) : mode_(mode) {}
    // What this section returns includes `entry`'s state: do not return before it is written.
    void NeedWritten(const JobEntry& entry) { needed_ = std::max(needed_, entry.last_ticket); }
    Mode mode() const { return mode_; }
    uint64_t needed() const { return needed_; }

   private:
    const Mode mode_;
    uint64_t needed_ = 0;
  };
  template <typename Body>
  auto Decide(Body&& body, Mode mode = Mode::kWait) ABSL_LOCKS_EXCLUDED(mu_) {
    Section section(mode);
    mu_.Lock();
    if constexpr (std::is_void_v<std::invoke_result_t<Body&, Section&>>) {
      body(section);
      EndSection(section);
    } else {
      auto result = body(section);
      EndSection(section);
      return result;
    }
  }
  // What a section hands on when it lets go of mu_.
  struct Released {
    uint64_t ticket = 0;  // the group commit holding its changes (0: none)
    std::vector<PrepareWork> ready;  // tasks to prepare
    std::vector<std::pair<std::shared_ptr<WorkerSession>, assay::v1::CoordinatorMessage>> early;
  };
  // Ends the section `Decide` began: releases mu_, sends, waits, and prepares what became ready.
  void EndSection(const Section& section) ABSL_UNLOCK_FUNCTION(mu_);
  // Hands the section's changes to the group commit and lets go of mu_.
  Released Release(uint64_t needed) ABSL_UNLOCK_FUNCTION(mu_);
  // Sends the section's early messages and waits for its changes as `mode` says (no lock held).
  void AfterRelease(Released* released, Mode mode) ABSL_LOCKS_EXCLUDED(mu_);
  // The prepare/apply loop: builds the ready tasks' actions without the lock, a few at a time, and
  // applies each batch in a section of its own; tasks those batches make ready are prepared next.
  void PrepareReady(std::vector<PrepareWork> work) ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<assay::v1::Job> CancelLocked(Section* section, JobEntry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SystemLogLocked(JobEntry* entry, const assay::v1::Task& task, const std::string& line)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker's lines that rode with a log message or a result (TaskLog.preface), logged before it.
  void AppendPrefaceLocked(JobEntry* entry, const assay::v1::Task& task, const std::string& preface)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Output sizes, the run time, and size and time warnings of a finished run onto the task (and its log).
  void ApplySizesLocked(JobEntry* entry, assay::v1::Task* task, const ResultDecision& decision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AppendLogLocked(JobEntry* entry, const assay::v1::Task& task, assay::v1::LogChunk chunk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RetireFinishedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Remote execution's parts (job_manager_execute.cc): the task for an action, appended to `entry`;
  // a remote task that is final leaves the in-flight table; idle open jobs end (from Tick).
  ExecuteTicket AddRemoteTaskLocked(JobEntry* entry, const RemoteAction& action) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::unique_ptr<JobEntry> NewRemoteJobLocked(uint64_t number, const RemoteAction& action)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetInFlightLocked(const JobEntry& entry, const assay::v1::Task& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecoverRemoteLocked(JobEntry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CloseIdleJobsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FollowLocked(TaskKey key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelAbandonedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  JobStore* const store_;
  BlobStore* const blobs_;
  BlobPinner* const pinner_;
  ActionCache* const action_cache_;
  const Clock* const clock_;
  const Options options_;
  const ActionBuilder builder_;  // used only with mu_ released
  const Intake intake_;          // used only with mu_ released

  absl::Mutex mu_;
  Dispatcher dispatcher_ ABSL_GUARDED_BY(mu_);  // workers, queue, leases, prepared actions and pins
  std::map<uint64_t, std::unique_ptr<JobEntry>> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> finished_ ABSL_GUARDED_BY(mu_);
  // SubmitRequest.request_id -> job number, for jobs in memory: a retried Submit gets the same job.
  absl::flat_hash_map<std::string, uint64_t> submissions_ ABSL_GUARDED_BY(mu_);
  std::vector<PrepareWork> to_prepare_ ABSL_GUARDED_BY(mu_);
  // This section's welcomes and assignments (SendEarlyLocked), sent when it releases the lock.
  std::vector<std::pair<std::shared_ptr<WorkerSession>, assay::v1::CoordinatorMessage>> early_
      ABSL_GUARDED_BY(mu_);
  std::set<TaskKey> preparing_ ABSL_GUARDED_BY(mu_);          // handed to Prepare, not yet applied
  std::map<uint64_t, std::set<int32_t>> dirty_tasks_ ABSL_GUARDED_BY(mu_);
  std::set<uint64_t> dirty_jobs_ ABSL_GUARDED_BY(mu_);
  bool dirty_synced_ ABSL_GUARDED_BY(mu_) = false;  // a dirty task's or job's change must be fsynced
  std::set<uint64_t> touched_jobs_ ABSL_GUARDED_BY(mu_);   // changed in this section (tasks, summary, logs)
  Watchers watchers_ ABSL_GUARDED_BY(mu_);
  RunHistory history_ ABSL_GUARDED_BY(mu_);  // the steps' last runs: a job's longest work first
  // The task's last run plus the longest chain of last runs of the tasks waiting for it (0: unknown).
  int64_t ExpectedMsLocked(JobEntry* entry, const assay::v1::Task& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  GroupCommit::Change pending_ ABSL_GUARDED_BY(mu_);      // this section's writes and messages
  GroupCommit commit_;
  std::map<std::string, int64_t> jobs_finished_ ABSL_GUARDED_BY(mu_);
  LatencyHistogram heartbeat_latency_;
  std::map<std::pair<std::string, bool>, int64_t> tasks_finished_ ABSL_GUARDED_BY(mu_);
  // Remote actions queued or running, by instance name and action digest, for joining (not those
  // with do_not_cache); and each open job by its RequestMetadata.tool_invocation_id.
  absl::flat_hash_map<std::string, TaskKey> in_flight_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint64_t> invocations_ ABSL_GUARDED_BY(mu_);
  // How many streams follow each unfinished remote task; since when none has (to cancel it).
  absl::flat_hash_map<TaskKey, int> followers_ ABSL_GUARDED_BY(mu_);
  std::map<TaskKey, int64_t> abandoned_since_ ABSL_GUARDED_BY(mu_);
};

}  // namespace assay
