// The worker agent: dials the coordinator, keeps one WorkerLink stream, runs what it is assigned
// (as many tasks at once as it has slots), streams their output, uploads their outputs, reports.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include "absl/synchronization/mutex.h"
#include "assay/v1/worker_link.grpc.pb.h"
#include "common/cas_client.h"
#include "common/blob_store_stack.h"
#include "common/database.h"
#include "common/evicting_blob_store.h"
#include "worker/executor.h"

namespace assay {

class Executor;

// What a worker runs with, built in one place (MakeWorkerParts) and handed to the agent, so a test
// can hand it fakes: an executor that runs nothing, an in-memory cache.
struct WorkerParts {
  std::unique_ptr<Executor> executor;
  std::unique_ptr<CasClient> cas;     // the coordinator's CAS
  std::unique_ptr<Database> cache_db;  // this host's cache database (may be null)
  BlobStoreStack cache;                // the cache's blob-store stack over it (may be empty)
  BlobStore* local_cache = nullptr;    // another local cache instead (tests); not owned
};

class WorkerAgent {
 public:
  struct Options {
    std::string coordinator = "127.0.0.1:7171";
    std::string worker_id;              // default: hostname-<random>
    std::vector<std::string> labels;    // added to the detected ones
    int slots = 1;
    std::string work_dir = "assay-work";
    std::string instance_name;
    std::string cache_dir;              // local CAS cache; default <work_dir>/cache
    int64_t cache_bytes = 10LL << 30;   // its budget
    std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: plaintext
    TreeLimits tree_limits;             // input trees beyond these are refused
    RetryPolicy retry;                  // of every call to the coordinator
  };

  // Builds its parts from `options` (MakeWorkerParts); `executor` runs the steps (null: the process
  // executor).
  explicit WorkerAgent(Options options, std::unique_ptr<Executor> executor = nullptr);
  WorkerAgent(Options options, WorkerParts parts);
  ~WorkerAgent();

  // Connects and serves until Stop(); reconnects with backoff when the link drops.
  void Run();
  void Stop();

  // Blobs of a result up to this size travel inline with it, up to kInlineResultBytes in all.
  static constexpr int64_t kInlineBlobBytes = 64 << 10;
  static constexpr int64_t kInlineResultBytes = 1 << 20;
  // The longest wait between two tries to reach the coordinator.
  static constexpr absl::Duration kMaxReconnectPause = absl::Milliseconds(500);

  const std::string& worker_id() const { return options_.worker_id; }
  std::string executor_name() const { return executor_->name(); }
  std::vector<std::string> labels() const { return labels_; }

 private:
  struct Running {
    assay::v1::LeaseRef lease;
    std::shared_ptr<CancelToken> cancel;
    std::thread thread;
    bool done = false;
  };
  class Link;

  // One connected session; returns when the stream ends, and whether the coordinator welcomed it.
  // `failures`: sessions that failed in a row before this one.
  bool Session(int failures);
  void RunTask(Link* link, assay::v1::Assignment assignment, std::shared_ptr<CancelToken> cancel);
  assay::v1::TaskResult Execute(Link* link, const assay::v1::Assignment& assignment, const CancelToken& cancel);

  Options options_;
  std::vector<std::string> labels_;
  grpc::ChannelArguments channel_args_;  // of each session's link channel
  std::unique_ptr<CasClient> cas_;
  std::unique_ptr<Database> cache_db_;
  BlobStoreStack cache_;  // this host's CAS cache (empty when it could not be opened)
  BlobStore* local_cache_;
  std::unique_ptr<Executor> executor_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// The parts of a worker built from its options (the composition root of assay-worker).
WorkerParts MakeWorkerParts(WorkerAgent::Options* options, std::unique_ptr<Executor> executor);
// Channel settings of every connection to the coordinator (keepalive, a short reconnect backoff).
grpc::ChannelArguments WorkerChannelArgs();

// Labels every worker offers: os, arch, executor, host.
std::vector<std::string> DetectLabels(const std::string& executor);
// "qemu-system-arm=7.2.11" for every qemu-system-* on PATH: a qemu step goes only to a worker that
// has its emulator.
std::vector<std::string> DetectEmulators();

}  // namespace assay
