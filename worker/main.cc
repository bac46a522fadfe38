// assay-worker: parses flags and runs the WorkerAgent.
#include <atomic>
#include <csignal>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "common/tree_limit_flags.h"
#include "common/daemon.h"
#include "common/security_flags.h"

#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "worker/agent.h"
#include "worker/metrics.h"

int main(int argc, char** argv) {
  assay::InitDaemon();
  assay::WorkerAgent::Options options;
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
  int drain_grace_seconds = 300;
  app.add_option("--drain-grace-seconds", drain_grace_seconds,
                 "on SIGTERM: how long running tasks may take to finish before they are handed back")
      ->capture_default_str()
      ->check(CLI::Range(0, 86400));
  std::string container_engine, container_host;
  app.add_option("--container-engine", container_engine,
                 "run steps that name an image with this engine: docker or podman (default: none; such steps go "
                 "to other workers)")
      ->check(CLI::IsMember({"docker", "podman"}));
  app.add_option("--container-host", container_host,
                 "the engine's address, e.g. unix:///run/docker.sock or unix:///run/podman/podman.sock (default: "
                 "its own, or DOCKER_HOST / CONTAINER_HOST)");
  std::string metrics_listen, metrics_port_file;
  app.add_option("--metrics-listen", metrics_listen,
                 "serve Prometheus metrics on host:port (e.g. 127.0.0.1:9191; port 0 picks one)");
  app.add_option("--metrics-port-file", metrics_port_file, "write the metrics port to this file");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  assay::ClientSecurity security;
  assay::AddClientSecurityFlags(app, &security);
  std::string executor_kind = "auto";
  app.add_option("--executor", executor_kind,
                 "how steps run: sandbox (bubblewrap), process, or auto (sandbox where bubblewrap works)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "sandbox", "process"}));
  // --- disk space (issue 22)
  std::string min_free_disk = options.min_free_disk.text;
  app.add_option("--min-free-disk", min_free_disk,
                 "free space kept on the work and cache disks: a size (2GiB) or a percentage (5%); below it no "
                 "task starts (they go to other workers) and the cache takes no writes; 0: none")
      ->capture_default_str();
  // Hidden: a small queue makes the link drop live output at once (tests of complete logs).
  app.add_option("--live-log-queue-bytes", options.live_log_queue_bytes,
                 "live output queued for the coordinator beyond this many bytes is dropped from the live view")
      ->group("");
  CLI11_PARSE(app, argc, argv);
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
  std::unique_ptr<assay::Executor> executor;
  if (executor_kind != "process") {
    auto sandbox = assay::SandboxExecutor::Create();
    if (sandbox.ok()) {
      executor = std::move(*sandbox);
    } else if (executor_kind == "sandbox") {
      spdlog::error("--executor sandbox: {}", std::string(sandbox.status().message()));
      return 2;
    } else {
      spdlog::warn("steps run as plain processes: {}", std::string(sandbox.status().message()));
    }
  }
  std::signal(SIGPIPE, SIG_IGN);

  assay::WorkerAgent agent(options, std::move(executor));
  if (!container_engine.empty()) {
    auto engine = assay::ContainerExecutor::Create(container_engine, container_host, agent.worker_id());
    if (!engine.ok()) {
      spdlog::error("--container-engine {}: {}", container_engine, std::string(engine.status().message()));
      return 2;
    }
    spdlog::info("worker {}: steps with an image run in {} {}; their limits are held {}", agent.worker_id(),
                 container_engine, (*engine)->version(),
                 (*engine)->shares_cgroups() ? "in the worker's own cgroups (the engine's cgroupfs driver, on this host)"
                                             : "by the engine (its flags)");
    agent.EnableContainers(std::move(*engine));
  }
  spdlog::info("worker {}: steps run in the {} executor; step limits enforced: {}", agent.worker_id(),
               agent.executor_name(), agent.limits_enforced());
  std::unique_ptr<assay::MetricsExposer> metrics;
  if (!metrics_listen.empty()) {
    auto served = assay::ServeWorkerMetrics(metrics_listen, &agent);
    if (!served.ok()) {
      spdlog::error("{}", std::string(served.status().message()));
      return 2;
    }
    metrics = std::move(*served);
    spdlog::info("metrics at http://{}:{}/metrics", metrics_listen.substr(0, metrics_listen.rfind(':')), metrics->port());
    if (!metrics_port_file.empty()) {
      if (absl::Status s = assay::WriteFile(metrics_port_file, absl::StrCat(metrics->port(), "\n")); !s.ok()) {
        spdlog::error("{}", std::string(s.message()));
        return 2;
      }
    }
  }
  std::thread runner([&]() { agent.Run(); });
  // SIGTERM drains (no new tasks; running ones finish, or are handed back after the grace period);
  // SIGINT, or a second signal while draining, hands running tasks back at once.
  const int signal = assay::WaitForStopSignal();
  if (signal == SIGTERM) {
    std::atomic<bool> drained{false};
    std::thread drainer([&]() {
      agent.Drain(absl::Seconds(drain_grace_seconds));
      drained = true;
    });
    while (!drained.load()) {
      if (assay::AnotherStopSignal(absl::Milliseconds(200))) {
        spdlog::warn("worker {}: second signal; handing back running tasks now", agent.worker_id());
        agent.Stop();
        break;
      }
    }
    drainer.join();
  } else {
    spdlog::info("worker {} stopping; running tasks are handed back", agent.worker_id());
  }
  agent.Stop();
  runner.join();
  metrics.reset();
  spdlog::info("worker {} stopped", agent.worker_id());
  return 0;
}
