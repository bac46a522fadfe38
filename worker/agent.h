// The worker agent: dials the coordinator, keeps one WorkerLink stream, runs what it is assigned
// (as many tasks at once as it has slots), streams their output, uploads their outputs, reports.
// It is built from its parts by the worker's composition root (worker_server.h); tests hand it fakes.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/synchronization/mutex.h"
#include "assay/v1/worker_link.grpc.pb.h"
#include "common/base/retrier.h"
#include "common/base/spare_directories.h"
#include "common/cas/disk_space.h"
#include "common/remote/cas_client.h"
#include "common/rocksdb/blob_store_stack.h"
#include "common/rocksdb/database.h"
#include "common/tree/tree_validator.h"
#include "worker/executor.h"
#include "worker/input_fetcher.h"
#include "worker/output_uploader.h"
#include "worker/step_caches.h"
#include "worker/slot_gate.h"
#include "worker/task_table.h"
#include "worker/work_disk.h"

namespace assay {

class LinkStream;
class Heartbeats;

// What a worker runs with, built by WorkerServer (worker_server.h) and handed to the agent, so a
// test can hand it fakes: an executor that runs nothing, an in-memory cache.
struct WorkerParts {
  // Runs every step: the host's executor inside its decorators (container or host, limits, console
  // harness); its name is the host executor's.
  std::unique_ptr<Executor> executor;
  std::vector<std::string> executor_labels;  // offered beside the detected ones ("container", "docker=...")
  std::unique_ptr<CasClient> cas;     // the coordinator's CAS
  std::unique_ptr<Database> cache_db;  // this host's cache database (may be null)
  BlobStoreStack cache;                // the cache's blob-store stack over it (may be empty)
  BlobStore* local_cache = nullptr;    // another local cache instead (tests); not owned
  // Input files as hard links, for steps in the sandbox (input_links.h); null: always copies.
  std::unique_ptr<InputLinks> input_links;
  // Emptied folders of finished tasks, for the next tasks' folders (spare_directories.h), for steps
  // in the sandbox; null: folders are made and removed.
  std::unique_ptr<SpareDirectories> spare_dirs;
};

class WorkerAgent {
 public:
  struct Options {
    std::string coordinator = "127.0.0.1:7171";
    std::string worker_id;              // default: hostname-<random> (WithDefaults)
    std::vector<std::string> labels;    // added to the detected ones
    int slots = 1;
    // Tasks taken beyond the slots, started as slots free (slot_gate.h); 0: none.
    int prefetch = 1;
    std::string work_dir = "assay-work";
    std::string instance_name;
    std::string cache_dir;              // local CAS cache; default <work_dir>/cache (WithDefaults)
    int64_t cache_bytes = 10LL << 30;   // its budget
    std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
    TreeLimits tree_limits;             // input trees beyond these are refused
    RetryPolicy retry;                  // of every call to the coordinator
    // Free space kept on the work directory's disk (a task is not started below it, and one that
    // failed with the disk full is handed to another worker) and on the cache's (its writes are
    // refused below it; eviction runs below twice it).
    MinFreeDisk min_free_disk{0, 5, kDefaultMinFreeDisk};
    // Live output queued for the link beyond this is dropped (the finished log is whole all the same).
    size_t live_log_queue_bytes = 8 << 20;  // LinkStream::kMaxQueuedLogBytes
    // A step's output is sent in batches: a chunk waits this long for more to join it (outbound_queue.h).
    absl::Duration live_log_batch = absl::Milliseconds(250);

    // These options with the defaults that depend on others filled in: the worker id and the cache
    // folder. The one place they are computed; the same options come back unchanged.
    Options WithDefaults() const;
  };

  // `options` are taken WithDefaults().
  WorkerAgent(Options options, WorkerParts parts);
  ~WorkerAgent();

  // Connects and serves until Stop(); reconnects with backoff when the link drops.
  void Run();
  // Ends at once: running tasks are cancelled and, as the link closes, handed back to the coordinator.
  void Stop();
  // A graceful stop (SIGTERM): tells the coordinator to send no new tasks, waits up to `grace` for
  // the running ones to finish, then Stop()s. Returns how many tasks were still running (handed back).
  int Drain(absl::Duration grace);

  // Figures for the worker's metrics.
  struct Figures {
    int slots = 0;
    int running = 0;
    bool connected = false;
    int64_t tasks_finished = 0;      // results sent
    int64_t executor_failures = 0;   // tasks that could not be run to an exit (an error in their result)
    int64_t input_files = 0;         // input files materialized
    int64_t local_cache_hits = 0;    // of those, taken from this host's cache
    int64_t input_files_linked = 0;  // of those, hard links to this host's copies (input_links.h)
    int64_t input_files_kept = 0;    // of those, already in place in a kept folder (kept_folders.h)
    InputLinks::Released input_copies;  // this host's copies of input files checked after their tasks
    int64_t bytes_fetched = 0;       // input bytes fetched from the coordinator
    StepCaches::Figures caches;      // step caches restored and saved
  };
  Figures figures();

  // The longest wait between two tries to reach the coordinator.
  static constexpr absl::Duration kMaxReconnectPause = absl::Milliseconds(500);
  // How long a drained worker waits for the coordinator to take its last results and end the link.
  static constexpr absl::Duration kCloseTimeout = absl::Seconds(5);

  const std::string& worker_id() const { return options_.worker_id; }
  std::string executor_name() const { return executor_->name(); }
  std::vector<std::string> labels() const { return labels_; }

 private:
  // --- the link (agent.cc)
  // One connected session; returns when the stream ends, and whether the coordinator welcomed it.
  // `failures`: sessions that failed in a row before this one.
  bool Session(int failures);
  assay::v1::WorkerMessage Hello() const;
  // The session's heartbeats start; the link becomes the one Drain talks to.
  std::unique_ptr<Heartbeats> OnWelcome(LinkStream* link, const assay::v1::Welcome& welcome);
  // Starts the task on a thread of its own (it waits there for a slot).
  void OnAssign(LinkStream* link, const assay::v1::Assignment& assignment);
  void OnCancel(const assay::v1::CancelTask& cancel);
  void LogSessionEnd(const grpc::Status& status, bool welcomed, int failures);

  // --- one task (agent_task.cc)
  void RunTask(LinkStream* link, assay::v1::Assignment assignment, std::shared_ptr<CancelToken> cancel,
               uint64_t ticket);
  // A task that failed while the work directory's disk was full failed because of this host: says
  // so in its host_problem (WorkDisk), for the coordinator to run it elsewhere.
  void NoteHostProblem(assay::v1::TaskResult* result);
  // What a task leaves for RunTask to do once it has sent the result.
  struct AfterTask {
    std::string log_preface;             // the worker's lines about the task not sent yet (they go with the result)
    std::filesystem::path dir;           // the task's folder, to remove
    SpareDirectories* spares = nullptr;  // where its folders come from and go back to (a sandboxed step's)
    InputLinks::Claims links;            // its linked inputs, released once its folder is gone
    bool keep = false;                   // its folder is kept for a later task (kept_folders.h), not removed
    bool linked = false;                 // its inputs are linked (input_links.h), and its outputs become copies
  };
  struct TaskFiles {
    std::string safe;                 // the task's name for files and containers
    std::filesystem::path task_dir;   // its folder: logs, TMPDIR, and work/
    std::filesystem::path exec_dir;   // work/: its inputs, where it runs
  };
  // Makes the task's folder and writes its inputs there: before the task has a slot, so a
  // prefetched task's inputs are ready when it gets one. False (with `out`'s error) on failure.
  bool PrepareTask(const assay::v1::Assignment& assignment, TaskFiles* files, AfterTask* after,
                   assay::v1::TaskResult* out);
  // Runs the prepared task in its slot and uploads its outputs: `out` (with what PrepareTask
  // recorded) completed.
  assay::v1::TaskResult Execute(LinkStream* link, const assay::v1::Assignment& assignment, const CancelToken& cancel,
                                const TaskFiles& files, AfterTask* after, assay::v1::TaskResult out);

  Options options_;
  std::vector<std::string> labels_;
  grpc::ChannelArguments channel_args_;  // of each session's link channel
  std::unique_ptr<CasClient> cas_;
  std::unique_ptr<Database> cache_db_;
  BlobStoreStack cache_;  // this host's CAS cache (empty when it could not be opened)
  BlobStore* local_cache_;
  std::unique_ptr<Executor> executor_;
  std::unique_ptr<InputLinks> input_links_;
  std::unique_ptr<SpareDirectories> spare_dirs_;
  std::unique_ptr<KeptFolders> kept_folders_;  // (after the two above: it uses them until it is gone)
  InputFetcher inputs_;  // a task's inputs onto this host (through local_cache_)
  OutputUploader uploader_;
  StepCaches caches_;  // a step's caches: restored before it, saved after it
  SlotGate gate_;  // tasks wait here for a slot, in the order they came
  WorkDisk work_disk_;
  TaskTable tasks_;  // of the current session

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time drain_deadline_ ABSL_GUARDED_BY(mu_);
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  LinkStream* link_ ABSL_GUARDED_BY(mu_) = nullptr;  // of the session, while welcomed
  bool closing_ ABSL_GUARDED_BY(mu_) = false;        // Drain is closing link_: it stays
  int running_ ABSL_GUARDED_BY(mu_) = 0;       // tasks assigned and not yet reported
  Figures figures_ ABSL_GUARDED_BY(mu_);
};

// Channel settings of every connection to the coordinator (keepalive, a short reconnect backoff).
grpc::ChannelArguments WorkerChannelArgs();

}  // namespace assay
