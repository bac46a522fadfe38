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
  ResourceLimits limits;        // given to the engine as flags, unless the parent group holds them
  std::string cgroup_parent;    // a group of the worker's that holds the limits ("": none)
};

class ContainerExecutor final : public Executor {
 public:
  static constexpr const char* kWorkDir = "/work";  // where a step's work directory is in its container
  static constexpr const char* kWorkerLabel = "assay.worker";

  // `engine`: "docker" or "podman"; `host`: the engine's address ("" for its default, or the
  // engine's own variables: DOCKER_HOST, CONTAINER_HOST, CONTAINERS_CONF, ...). Checks that the
  // engine answers and removes the containers an earlier run of `worker_id` left.
  static absl::StatusOr<std::unique_ptr<ContainerExecutor>> Create(const std::string& engine, const std::string& host,
                                                                   const std::string& worker_id);
  std::string name() const override { return engine_; }
  std::string version() const { return version_; }
  // Whether the engine runs on this host and makes its containers' groups with the cgroupfs driver,
  // beneath a --cgroup-parent of the worker's: the worker then holds a step's limits in a group of its
  // own and reads OOM kills from the kernel itself, not from the engine's events.
  bool shares_cgroups() const { return shares_cgroups_; }
  // Runs request.argv in request.container (which must be set).
  absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output,
                                 const CancelToken& cancel) override;
  // The `docker run ...` command line for a request (for tests and logs).
  std::vector<std::string> RunCommand(const ExecRequest& request) const;

 private:
  ContainerExecutor() = default;
  std::vector<std::string> Engine(std::vector<std::string> args) const;  // the CLI with its host
  std::vector<std::string> RemoveCommand() const;  // `rm` that kills a running container at once
  // The environment of the engine's CLI: PATH and the variables the engines read.
  static std::vector<std::pair<std::string, std::string>> EngineEnvironment();
  // Runs an engine command to completion (bounded); its stdout, or an error with its stderr.
  // Whether the engine says its memory limit killed the container that gave `result`.
  bool OomKilled(const ContainerRun& container, const ExecResult& result) const;
  absl::StatusOr<std::string> Call(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(30)) const;

  std::string engine_, host_, version_, worker_id_;
  bool shares_cgroups_ = false;
  ProcessExecutor process_;
};

}  // namespace assay
