// Steps in container images, through the Docker CLI (`docker run`): the task's work directory is
// mounted at /work, the network is off unless the step asks for it, limits become the engine's
// flags, and every container is named and labelled with its worker, job and task so that a worker
// restarted after a crash removes what it left behind. Output streams live through the CLI; on
// timeout, cancel or worker shutdown the CLI's process group is killed and the container removed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/cgroups.h"
#include "worker/executor.h"

namespace assay {

struct ContainerRun {
  std::string image;           // a reference or an image id
  bool network = false;
  std::string user;
  std::string name;            // unique on the engine
  std::vector<std::pair<std::string, std::string>> labels;
  ResourceLimits limits;
};

class ContainerExecutor final : public Executor {
 public:
  static constexpr const char* kWorkDir = "/work";  // where a step's work directory is in its container
  static constexpr const char* kWorkerLabel = "assay.worker";

  // `engine`: "docker"; `host`: the engine's address ("" for its default, or DOCKER_HOST). Checks that
  // the engine answers and removes the containers an earlier run of `worker_id` left.
  static absl::StatusOr<std::unique_ptr<ContainerExecutor>> Create(const std::string& engine, const std::string& host,
                                                                   const std::string& worker_id);
  std::string name() const override { return engine_; }
  std::string version() const { return version_; }
  // Runs request.argv in request.container (which must be set).
  absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output,
                                 const CancelToken& cancel) override;
  // The `docker run ...` command line for a request (for tests and logs).
  std::vector<std::string> RunCommand(const ExecRequest& request) const;

 private:
  ContainerExecutor() = default;
  std::vector<std::string> Engine(std::vector<std::string> args) const;  // the CLI with its host
  // Runs an engine command to completion (bounded); its stdout, or an error with its stderr.
  // Whether the engine says its memory limit killed the container that gave `result`.
  bool OomKilled(const ContainerRun& container, const ExecResult& result) const;
  absl::StatusOr<std::string> Call(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(30)) const;

  std::string engine_, host_, version_, worker_id_;
  ProcessExecutor process_;
};

}  // namespace assay
