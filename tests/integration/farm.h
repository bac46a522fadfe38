// A local farm for integration tests: the real assay-coordinator and assay-worker binaries on
// loopback, with their data in a temporary folder.
#pragma once

#include <map>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "common/base/file_util.h"
#include "common/security/security.h"
#include "tests/integration/client.h"
#include "tests/integration/process.h"

namespace assay::testing {

class Farm {
 public:
  Farm();
  ~Farm();

  // Starts (or restarts, on the same data folder and port) the coordinator and waits until it serves.
  void StartCoordinator(const std::vector<std::string>& extra_args = {});
  // Stops the coordinator with `signal` (SIGTERM for a clean stop, SIGKILL for a crash).
  void StopCoordinator(int signal);
  // The --executor of workers started from now on: "process" by default here (tests that look at
  // host pids need it), "sandbox" or "auto" for the isolated runs.
  void set_executor(const std::string& executor) { executor_ = executor; }
  // The coordinator started from now on keeps its default heartbeat and lease (tests shorten them
  // so a lost worker is noticed soon; a benchmark measures what users run).
  void use_default_timings() { test_timings_ = false; }
  // Starts a worker and waits until the coordinator lists it as connected.
  void StartWorker(const std::string& id, const std::vector<std::string>& labels = {}, int slots = 1,
                   const std::vector<std::string>& extra_args = {});
  // SIGINT stops a worker at once (its running tasks are handed back); SIGTERM drains it first.
  void StopWorker(const std::string& id, int signal = SIGINT);
  // Sends a signal and returns at once; WaitWorkerExit then waits for the worker to end and returns
  // its wait status (nullopt if it still runs after `timeout`; it is then left running).
  void SignalWorker(const std::string& id, int signal);
  std::optional<int> WaitWorkerExit(const std::string& id, absl::Duration timeout);

  pid_t coordinator_pid() const { return coordinator_ ? coordinator_->pid() : -1; }
  pid_t worker_pid(const std::string& id) const {
    auto it = workers_.find(id);
    return it == workers_.end() ? -1 : it->second->pid();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The dashboard's port (docs/dashboard.md), unless the test gave its own --http-listen.
  int http_port() const { return http_port_; }
  const std::filesystem::path& dir() const { return dir_.path(); }

  // TLS/token settings the workers, the CLI and the harness's own calls use from now on.
  void UseClientSecurity(const ClientSecurity& security);
  // The same as command-line flags (--tls-ca ... --token-file ...).
  std::vector<std::string> ClientSecurityArgs() const;

  // Variables ("K=V") the CLI runs with from now on (e.g. DOCKER_HOST).
  void set_cli_env(std::vector<std::string> env) { cli_env_ = std::move(env); }
  // Runs the CLI against this farm.
  RunResult Cli(const std::vector<std::string>& args, absl::Duration timeout = absl::Seconds(180));
  // Writes a source tree with the given files (path -> content) and returns its folder.
  std::filesystem::path WriteTree(const std::string& name, const std::map<std::string, std::string>& files);
  // Submits a tree without waiting; returns the job id.
  absl::StatusOr<std::string> Submit(const std::filesystem::path& tree, const std::string& pipeline = "assay.yaml");

  // The CLI as Cli() runs it (this farm's address, security settings and environment).
  CliClient cli() const;
  // gRPC, with the harness's security settings (client.h); valid while the coordinator runs.
  GrpcClient& grpc() { return *grpc_; }
  absl::StatusOr<assay::v1::Job> GetJob(const std::string& id) { return grpc_->GetJob(id); }
  // Waits until the job is in a final state.
  absl::StatusOr<assay::v1::Job> WaitJob(const std::string& id, absl::Duration timeout = absl::Seconds(120)) {
    return grpc_->WaitJob(id, timeout);
  }
  std::string Log(const std::string& job, const std::string& task) { return grpc_->Log(job, task); }
  std::vector<assay::v1::Worker> Workers() { return grpc_->Workers(); }
  int ConnectedWorkers() { return grpc_->ConnectedWorkers(); }
  assay::v1::Jobs::Stub* jobs() { return grpc_->jobs(); }
  // A channel to the coordinator with the harness's security settings, for other services' stubs.
  std::shared_ptr<grpc::Channel> channel() const { return grpc_->channel(); }

 private:
  void Connect();
  ScopedTempDir dir_;
  int port_ = 0;
  int http_port_ = 0;
  std::unique_ptr<Process> coordinator_;
  std::map<std::string, std::unique_ptr<Process>> workers_;
  std::unique_ptr<GrpcClient> grpc_;
  ClientSecurity client_security_;
  std::string executor_ = "process";
  bool test_timings_ = true;
  std::vector<std::string> cli_env_;
};

// Peak resident memory of a live process (VmHWM), in bytes.
int64_t PeakMemoryBytes(pid_t pid);

const assay::v1::Task* FindTask(const assay::v1::Job& job, const std::string& id);

}  // namespace assay::testing
