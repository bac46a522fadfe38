#include "worker/worker_server.h"

#include <grpcpp/create_channel.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>

#include "absl/strings/str_cat.h"
#include "common/base/clock.h"
#include "common/base/daemon.h"
#include "common/base/file_util.h"
#include "common/base/spare_directories.h"
#include "common/cas/evicting_blob_store.h"
#include "worker/cgroups.h"
#include "worker/container_executor.h"
#include "worker/container_or_host_executor.h"
#include "worker/harness_executor.h"
#include "worker/limits_executor.h"
#include "worker/metrics.h"

namespace assay {
namespace {
// Spare directories kept for tasks' folders (spare_directories.h): some tasks' worth.
constexpr size_t kSpareDirs = 256;
}  // namespace

WorkerServer::~WorkerServer() { Stop(); }

absl::Status WorkerServer::Start(const Options& options) {
  options_ = options;
  options_.agent = options.agent.WithDefaults();  // before anything reads the worker id or the cache folder
  WorkerParts parts;
  auto executor = MakeExecutor(options_, &parts.executor_labels);
  if (!executor.ok()) return executor.status();
  parts.executor = std::move(*executor);
  AddStorage(options_.agent, &parts);
  if (parts.executor->name() == "sandbox" && options_.link_inputs) {  // input_links.h: where a step can change nothing behind the check
    auto links = InputLinks::Open(std::filesystem::path(options_.agent.work_dir) / "input-links",
                                  options_.agent.cache_bytes / 8);
    if (links.ok()) {
      parts.input_links = std::move(*links);
    } else {
      spdlog::warn("inputs are copied, never linked: {}", std::string(links.status().message()));
    }
  }
  if (parts.executor->name() == "sandbox") {  // spare_directories.h: where nothing outlives a step
    auto spares = SpareDirectories::Open(std::filesystem::path(options_.agent.work_dir) / "spare-dirs", kSpareDirs);
    if (spares.ok()) {
      parts.spare_dirs = std::move(*spares);
    } else {
      spdlog::warn("tasks' folders are made afresh: {}", std::string(spares.status().message()));
    }
  }
  agent_ = std::make_unique<WorkerAgent>(options_.agent, std::move(parts));
  spdlog::info("worker {}: steps run in the {} executor; step limits enforced: {}", agent_->worker_id(),
               agent_->executor_name(), limits_enforced_);
  if (absl::Status s = ServeMetrics(options_); !s.ok()) return s;
  runner_ = std::thread([this] { agent_->Run(); });
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Executor>> WorkerServer::MakeExecutor(const Options& options,
                                                                     std::vector<std::string>* labels) {
  std::unique_ptr<Executor> host;
  if (options.executor != "process") {
    auto sandbox = SandboxExecutor::Create(options.sandbox);
    if (sandbox.ok()) {
      spdlog::info("steps' sandboxes are made by {}", (*sandbox)->kind() == SandboxExecutor::Kind::kNamespaces
                                                          ? "the worker (the kernel's namespaces)"
                                                          : "bubblewrap");
      host = std::move(*sandbox);
    } else if (options.executor == "sandbox") {
      return absl::FailedPreconditionError(absl::StrCat("--executor sandbox: ", sandbox.status().message()));
    } else {
      spdlog::warn("steps run as plain processes: {}", std::string(sandbox.status().message()));
    }
  }
  if (host == nullptr) host = std::make_unique<ProcessExecutor>();
  std::unique_ptr<ContainerExecutor> containers;
  const std::string& worker_id = options.agent.worker_id;
  if (!options.container_engine.empty()) {
    auto engine = ContainerExecutor::Create(options.container_engine, options.container_host, worker_id);
    if (!engine.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("--container-engine ", options.container_engine, ": ", engine.status().message()));
    }
    containers = std::move(*engine);
    spdlog::info("worker {}: steps with an image run in {} {}; their limits are held {}", worker_id,
                 options.container_engine, containers->version(),
                 containers->shares_cgroups() ? "in the worker's own cgroups (the engine's cgroupfs driver, on this host)"
                                              : "by the engine (its flags)");
    labels->push_back("container");
    labels->push_back(absl::StrCat(containers->name(), "=", containers->version()));
  }
  const ContainerExecutor* engine = containers.get();
  auto routed = std::make_unique<ContainerOrHostExecutor>(std::move(host), std::move(containers));
  auto limited = std::make_unique<LimitsExecutor>(std::move(routed), Cgroups::Detect(), engine);
  limits_enforced_ = limited->Describe();
  return std::make_unique<HarnessExecutor>(std::move(limited));
}

void WorkerServer::AddStorage(const WorkerAgent::Options& options, WorkerParts* parts) {
  auto channel = grpc::CreateCustomChannel(
      options.coordinator, options.credentials ? options.credentials : grpc::InsecureChannelCredentials(),
      WorkerChannelArgs());
  parts->cas = std::make_unique<CasClient>(channel, options.instance_name, options.retry);
  parts->cas->set_tree_limits(options.tree_limits);
  // The local cache opens only the CAS's column families: nothing of a coordinator's.
  auto db = Database::Open(options.cache_dir, Database::CasOnly());
  // A cache: its writes are not synced (a lost blob is fetched again).
  DiskReserve::Options reserve;
  reserve.store = "worker cache";
  reserve.min_free = options.min_free_disk;
  auto stack = db.ok() ? MakeBlobStoreStack(db->get(), RealClock::Get(),
                                            EvictingBlobStore::Options{options.cache_bytes, 0.95, 0.8},
                                            /*durable=*/false, &reserve)
                       : db.status();
  if (stack.ok()) {
    parts->cache_db = std::move(*db);
    parts->cache = std::move(*stack);
  } else {
    spdlog::warn("no local cache ({}); every input is fetched", stack.status().ToString());
  }
}

absl::Status WorkerServer::ServeMetrics(const Options& options) {
  if (options.metrics_listen.empty()) return absl::OkStatus();
  auto served = ServeWorkerMetrics(options.metrics_listen, agent_.get());
  if (!served.ok()) return served.status();
  metrics_ = std::move(*served);
  spdlog::info("metrics at http://{}:{}/metrics", options.metrics_listen.substr(0, options.metrics_listen.rfind(':')),
               metrics_->port());
  if (options.metrics_port_file.empty()) return absl::OkStatus();
  return WriteFile(options.metrics_port_file, absl::StrCat(metrics_->port(), "\n"));
}

bool WorkerServer::ServeUntilStopSignal() {
  const int signal = WaitForStopSignal();
  const std::string& id = agent_->worker_id();
  if (signal == SIGTERM) {
    std::atomic<bool> drained{false};
    std::thread drainer([&]() {
      agent_->Drain(options_.drain_grace);
      drained = true;
    });
    while (!drained.load()) {
      if (AnotherStopSignal(absl::Milliseconds(200))) {
        spdlog::warn("worker {}: second signal; handing back running tasks now", id);
        agent_->Stop();
        break;
      }
    }
    drainer.join();
  } else if (signal == 0) {
    spdlog::warn("worker {} restarting in place, running tasks are handed back: {}", id, RestartReason());
  } else {
    spdlog::info("worker {} stopping; running tasks are handed back", id);
  }
  Stop();
  spdlog::info("worker {} stopped", id);
  return signal == 0;
}

void WorkerServer::Stop() {
  if (agent_ != nullptr) agent_->Stop();
  if (runner_.joinable()) runner_.join();
  metrics_.reset();
}

}  // namespace assay
