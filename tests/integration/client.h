// How tests talk to a coordinator, in one place for the farm, netns and compose tests: the `assay`
// CLI (run here or inside a network namespace, reading its `--output json`) and, where this process
// can reach the coordinator, gRPC stubs on one channel.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "common/security/security.h"
#include "tests/integration/process.h"

namespace assay::testing {

std::string SourceDir();                          // the repository
std::string BinaryPath(const std::string& name);  // assay, assay-coordinator, assay-worker

// Succeeded, failed or cancelled: the job will not change again.
bool IsFinalJob(const assay::v1::Job& job);

// The `assay` CLI pointed at one coordinator.
class CliClient {
 public:
  struct Options {
    std::string address;                     // --coordinator
    std::vector<std::string> security_args;  // --tls-ca ... --token-file ...
    std::vector<std::string> prefix;         // runs the CLI under this, e.g. {"ip", "netns", "exec", NS}
    std::vector<std::string> env;            // "K=V" to run it with
    absl::Duration timeout = absl::Seconds(180);  // of one command
  };
  explicit CliClient(Options options) : options_(std::move(options)) {}

  // Runs `assay --coordinator ADDRESS SECURITY... ARGS...`; `timeout` zero means the default.
  RunResult Run(const std::vector<std::string>& args, absl::Duration timeout = absl::ZeroDuration()) const;
  // `assay status ID --output json`.
  absl::StatusOr<assay::v1::Job> GetJob(const std::string& id) const;
  // Polls GetJob until the job is final (or `timeout` passes: the last answer is returned).
  absl::StatusOr<assay::v1::Job> WaitJob(const std::string& id, absl::Duration timeout = absl::Seconds(120)) const;
  // `assay workers --output json`.
  absl::StatusOr<std::vector<assay::v1::Worker>> Workers() const;
  // How many workers are connected; -1 while the list cannot be read.
  int ConnectedWorkers() const;

 private:
  Options options_;
};

// The coordinator's Jobs and Admin services on one channel with the given security settings.
class GrpcClient {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcClient>> Connect(const std::string& address,
                                                             const ClientSecurity& security);

  absl::StatusOr<assay::v1::Job> GetJob(const std::string& id);
  // Follows the job's WatchJob stream until it is final; opened again should it end early.
  absl::StatusOr<assay::v1::Job> WaitJob(const std::string& id, absl::Duration timeout = absl::Seconds(120));
  // The task's whole log.
  std::string Log(const std::string& job, const std::string& task);
  // The workers the coordinator lists (none when it does not answer within 5 s).
  std::vector<assay::v1::Worker> Workers();
  int ConnectedWorkers();

  assay::v1::Jobs::Stub* jobs() { return jobs_.get(); }
  std::shared_ptr<grpc::Channel> channel() const { return channel_; }

 private:
  explicit GrpcClient(std::shared_ptr<grpc::Channel> channel);
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<assay::v1::Jobs::Stub> jobs_;
  std::unique_ptr<assay::v1::Admin::Stub> admin_;
};

}  // namespace assay::testing
