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

  // `executor` runs the steps (null: the process executor).
  explicit WorkerAgent(Options options, std::unique_ptr<Executor> executor = nullptr);
  ~WorkerAgent();

  // Connects and serves until Stop(); reconnects with backoff when the link drops.
  void Run();
  void Stop();

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

  // The longest wait between two tries to reach the coordinator.
  static constexpr absl::Duration kMaxReconnectPause = absl::Milliseconds(500);

  // One connected session; returns when the stream ends, and whether the coordinator welcomed it.
  // `failures`: sessions that failed in a row before this one.
  bool Session(int failures);
  void RunTask(Link* link, assay::v1::Assignment assignment, std::shared_ptr<CancelToken> cancel);
  assay::v1::TaskResult Execute(Link* link, const assay::v1::Assignment& assignment, const CancelToken& cancel);

  Options options_;
  std::vector<std::string> labels_;
  grpc::ChannelArguments channel_args_;
  std::shared_ptr<grpc::Channel> channel_;  // for the CAS
  std::unique_ptr<CasClient> cas_;
  std::unique_ptr<Database> cache_db_;
  BlobStoreStack cache_;  // this host's CAS cache (empty when it could not be opened)
  std::unique_ptr<Executor> executor_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Labels every worker offers: os, arch, executor, host.
std::vector<std::string> DetectLabels(const std::string& executor);

}  // namespace assay
