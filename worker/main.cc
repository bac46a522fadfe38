// assay-worker: parses flags into WorkerServer::Options and hands them to the WorkerServer.
#include <csignal>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/base/daemon.h"
#include "common/security/security_flags.h"
#include "common/tree/tree_limit_flags.h"

#include "worker/executor.h"
#include "worker/worker_server.h"

namespace {

// How a step's output goes to the coordinator while it runs.
void AddLiveLogFlags(CLI::App& app, assay::WorkerAgent::Options* options, int* live_log_batch_ms) {
  // Hidden: a small queue makes the link drop live output at once (tests of complete logs).
  app.add_option("--live-log-queue-bytes", options->live_log_queue_bytes,
                 "live output queued for the coordinator beyond this many bytes is dropped from the live view")
      ->group("");
  app.add_option("--live-log-batch-ms", *live_log_batch_ms,
                 "a step's output waits up to this long for more to be sent with it (fewer messages to the "
                 "coordinator for steps that print a line at a time); 0 sends every chunk at once")
      ->capture_default_str()
      ->check(CLI::Range(0, 10'000));
}

// The daemon's signals and logs; every child of the worker process is a step's supervisor or an
// orphan a step left behind (the worker is their subreaper), so the orphans are reaped as steps end.
void InitWorkerProcess() {
  assay::InitDaemon();
  assay::ProcessExecutor::ReapOrphansAfterSteps();
}

// How steps run: the executor, the sandbox's maker, inputs, containers.
void AddStepFlags(CLI::App& app, assay::WorkerServer::Options* options) {
  assay::WorkerServer::Options& server = *options;
  app.add_flag("!--copy-inputs", server.link_inputs,
               "write every input file for every step, never a hard link to this host's checked copy (the default "
               "links them for steps in the sandbox)");
  app.add_option("--executor", server.executor,
                 "how steps run: sandbox, process, or auto (the sandbox where one can be made)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "sandbox", "process"}));
  app.add_option("--sandbox", server.sandbox,
                 "what makes the sandbox: namespaces (the worker itself, from the kernel's namespaces), bubblewrap, "
                 "or auto (namespaces, else bubblewrap)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "namespaces", "bubblewrap"}));
  app.add_option("--container-engine", server.container_engine,
                 "run steps that name an image with this engine: docker or podman (default: none; such steps go "
                 "to other workers)")
      ->check(CLI::IsMember({"docker", "podman"}));
  app.add_option("--container-host", server.container_host,
                 "the engine's address, e.g. unix:///run/docker.sock or unix:///run/podman/podman.sock (default: "
                 "its own, or DOCKER_HOST / CONTAINER_HOST)");
}

}  // namespace

int main(int argc, char** argv) {
  InitWorkerProcess();
  assay::WorkerServer::Options server;
  assay::WorkerAgent::Options& options = server.agent;
  std::string log_level = "info";
  CLI::App app{"assay-worker: runs build and test steps for an Assay coordinator"};
  app.add_option("--coordinator", options.coordinator, "coordinator address:port")->capture_default_str();
  app.add_option("--id", options.worker_id, "worker id (default: hostname-random)");
  app.add_option("--label", options.labels, "extra label, key=value or name (repeatable)");
  app.add_option("--slots", options.slots, "tasks run at once")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--prefetch", options.prefetch,
                 "tasks taken beyond the slots, started the moment a slot frees (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--work-dir", options.work_dir, "folder for task work directories")->capture_default_str();
  app.add_option("--instance", options.instance_name, "REAPI instance name");
  app.add_option("--cache-dir", options.cache_dir, "local CAS cache (default: <work-dir>/cache)");
  assay::AddTreeLimitFlags(app, &options.tree_limits);
  app.add_option("--cache-bytes", options.cache_bytes, "budget of the local cache")->capture_default_str();
  int drain_grace_seconds = static_cast<int>(absl::ToInt64Seconds(server.drain_grace));
  app.add_option("--drain-grace-seconds", drain_grace_seconds,
                 "on SIGTERM: how long running tasks may take to finish before they are handed back")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  app.add_option("--metrics-listen", server.metrics_listen,
                 "serve Prometheus metrics on host:port (e.g. 127.0.0.1:9191; port 0 picks one)");
  app.add_option("--metrics-port-file", server.metrics_port_file, "write the metrics port to this file");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  assay::ClientSecurity security;
  assay::AddClientSecurityFlags(app, &security);
  AddStepFlags(app, &server);
  // --- disk space (issue 22)
  std::string min_free_disk = options.min_free_disk.text;
  app.add_option("--min-free-disk", min_free_disk,
                 "free space kept on the work and cache disks: a size (2GiB) or a percentage (5%); below it no "
                 "task starts (they go to other workers) and the cache takes no writes; 0: none")
      ->capture_default_str();
  int live_log_batch_ms = static_cast<int>(absl::ToInt64Milliseconds(options.live_log_batch));
  AddLiveLogFlags(app, &options, &live_log_batch_ms);
  CLI11_PARSE(app, argc, argv);
  options.live_log_batch = absl::Milliseconds(live_log_batch_ms);
  spdlog::set_level(spdlog::level::from_str(log_level));
  auto min_free = assay::ParseMinFreeDisk(min_free_disk);
  if (!min_free.ok()) {
    spdlog::error("{}", std::string(min_free.status().message()));
    return 2;
  }
  options.min_free_disk = *min_free;
  auto credentials = assay::MakeChannelCredentials(security, options.coordinator);
  if (!credentials.ok()) {
    spdlog::error("{}", std::string(credentials.status().message()));
    return 2;
  }
  options.credentials = *credentials;
  server.drain_grace = absl::Seconds(drain_grace_seconds);
  std::signal(SIGPIPE, SIG_IGN);

  for (;;) {
    assay::ClearRestartRequest();  // asked again by the stopped server's threads as they wound down
    assay::WorkerServer worker;
    if (absl::Status s = worker.Start(server); !s.ok()) {
      spdlog::error("{}", std::string(s.message()));
      return 2;
    }
    if (!worker.ServeUntilStopSignal()) return 0;
  }
}
