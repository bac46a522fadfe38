// The worker's composition root: from its options it builds the executor (the host's, sandbox or
// process, inside its decorators: container or host, limits, console harness), the CAS client and
// this host's cache, the agent over them, and the metrics endpoint; then runs the agent until it is
// stopped or drained. main.cc parses flags into Options and hands them here.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics/metrics_exposer.h"
#include "worker/agent.h"

namespace assay {

class WorkerServer {
 public:
  struct Options {
    WorkerAgent::Options agent;
    std::string executor = "auto";      // sandbox, process, or auto (sandbox where it works)
    std::string sandbox = "auto";       // what makes the sandbox: namespaces, bubblewrap, or auto (the first that works)
    bool link_inputs = true;            // sandboxed steps' input files as links (input_links.h)
    std::string container_engine;       // docker or podman: runs steps that name an image; empty: none
    std::string container_host;         // the engine's address; empty: its own default
    std::string metrics_listen;         // host:port of the Prometheus endpoint; empty: none
    std::string metrics_port_file;      // when set, its bound port is written here
    absl::Duration drain_grace = absl::Seconds(300);  // on SIGTERM, for running tasks to finish
  };

  WorkerServer() = default;
  ~WorkerServer();  // stops the agent and waits for it
  WorkerServer(const WorkerServer&) = delete;
  WorkerServer& operator=(const WorkerServer&) = delete;

  // Builds the worker and starts its agent on a thread of its own. The error names the option at fault.
  absl::Status Start(const Options& options);
  // Until a stop signal: SIGTERM drains (no new tasks; running ones finish, or are handed back after
  // drain_grace); SIGINT, or a second signal while draining, hands running tasks back at once. Then
  // stops and waits for the agent.
  // True when the process asked for a restart in place (RequestRestart, common/base/daemon.h: the local
  // cache's write-ahead log failed on a full disk): the caller starts a new WorkerServer.
  bool ServeUntilStopSignal();

  WorkerAgent* agent() { return agent_.get(); }

 private:
  // The executor every step runs through, and the labels it offers; logs what it chose.
  absl::StatusOr<std::unique_ptr<Executor>> MakeExecutor(const Options& options, std::vector<std::string>* labels);
  // The CAS client and this host's cache (none, with a warning, when it cannot be opened).
  static void AddStorage(const WorkerAgent::Options& options, WorkerParts* parts);
  absl::Status ServeMetrics(const Options& options);
  void Stop();

  Options options_;
  std::string limits_enforced_;  // for the start-up log
  std::unique_ptr<WorkerAgent> agent_;
  std::unique_ptr<MetricsExposer> metrics_;
  std::thread runner_;
};

}  // namespace assay
