// assay-worker: parses flags and runs the WorkerAgent.
#include <csignal>
#include <thread>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include "absl/synchronization/mutex.h"
#include "common/security_flags.h"

#include "worker/agent.h"

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  // Debian's abseil is built with mutex deadlock detection on, which makes every lock (gRPC's
  // included) update a global lock graph; lock order here is checked by TSan in the test suite.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  assay::WorkerAgent::Options options;
  std::string log_level = "info";
  CLI::App app{"assay-worker: runs build and test steps for an Assay coordinator"};
  app.add_option("--coordinator", options.coordinator, "coordinator address:port")->capture_default_str();
  app.add_option("--id", options.worker_id, "worker id (default: hostname-random)");
  app.add_option("--label", options.labels, "extra label, key=value or name (repeatable)");
  app.add_option("--slots", options.slots, "tasks run at once")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--work-dir", options.work_dir, "folder for task work directories")->capture_default_str();
  app.add_option("--instance", options.instance_name, "REAPI instance name");
  app.add_option("--cache-dir", options.cache_dir, "local CAS cache (default: <work-dir>/cache)");
  app.add_option("--cache-bytes", options.cache_bytes, "budget of the local cache")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  assay::ClientSecurity security;
  assay::AddClientSecurityFlags(app, &security);
  std::string executor_kind = "auto";
  app.add_option("--executor", executor_kind,
                 "how steps run: sandbox (bubblewrap), process, or auto (sandbox where bubblewrap works)")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "sandbox", "process"}));
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  auto credentials = assay::MakeChannelCredentials(security);
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
  spdlog::info("worker {}: steps run in the {} executor", agent.worker_id(), agent.executor_name());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::thread runner([&]() { agent.Run(); });
  while (!g_stop.load()) absl::SleepFor(absl::Milliseconds(100));
  spdlog::info("worker {} stopping", agent.worker_id());
  agent.Stop();
  runner.join();
  return 0;
}
