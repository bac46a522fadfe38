#include "worker/container_executor.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace assay {

absl::StatusOr<std::unique_ptr<ContainerExecutor>> ContainerExecutor::Create(const std::string& engine,
                                                                             const std::string& host,
                                                                             const std::string& worker_id) {
  if (engine != "docker" && engine != "podman") {
    return absl::InvalidArgumentError(absl::StrCat("unknown container engine '", engine, "' (docker or podman)"));
  }
  std::unique_ptr<ContainerExecutor> executor(new ContainerExecutor());
  executor->engine_ = engine;
  executor->host_ = host;
  executor->worker_id_ = worker_id;
  const bool docker = engine == "docker";
  // Podman without a service is its own server: its version is the client's.
  auto version = executor->Call({"version", "--format", docker || !host.empty() ? "{{.Server.Version}}" : "{{.Client.Version}}"});
  if (!version.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("the ", engine, " engine does not answer: ", version.status().message()));
  }
  executor->version_ = std::string(absl::StripAsciiWhitespace(*version));
  auto driver = executor->Call({"info", "--format", docker ? "{{.CgroupDriver}}" : "{{.Host.CgroupManager}}"});
  const bool local = host.empty() || absl::StartsWith(host, "unix://");
  executor->shares_cgroups_ = local && driver.ok() && absl::StripAsciiWhitespace(*driver) == "cgroupfs";
  // Containers a crashed run of this worker left (their tasks were queued elsewhere long ago).
  auto stale = executor->Call({"ps", "--all", "--quiet", "--filter", absl::StrCat("label=", kWorkerLabel, "=", worker_id)});
  if (!stale.ok()) return stale.status();
  std::vector<std::string> ids = absl::StrSplit(*stale, '\n', absl::SkipWhitespace());
  if (!ids.empty()) {
    std::vector<std::string> rm = executor->RemoveCommand();
    rm.insert(rm.end(), ids.begin(), ids.end());
    if (auto removed = executor->Call(rm); !removed.ok()) return removed.status();
    spdlog::info("worker {}: removed {} container(s) left by an earlier run", worker_id, ids.size());
  }
  return executor;
}

std::vector<std::pair<std::string, std::string>> ContainerExecutor::EngineEnvironment() {
  std::vector<std::pair<std::string, std::string>> env;
  const char* path = std::getenv("PATH");
  env.emplace_back("PATH", path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  // What the engines' own clients read: the worker's admin configures an engine as usual.
  for (const char* name : {"HOME", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY",
                           "CONTAINER_HOST", "CONTAINER_SSHKEY", "CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF",
                           "CONTAINERS_REGISTRIES_CONF", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "TMPDIR"}) {
    if (const char* value = std::getenv(name)) env.emplace_back(name, value);
  }
  return env;
}

std::vector<std::string> ContainerExecutor::RemoveCommand() const {
  // Podman's --force stops a running container with its stop signal first, and waits 10 s for it.
  if (engine_ == "podman") return {"rm", "--force", "--time", "0"};
  return {"rm", "--force"};  // Docker's kills it
}

std::vector<std::string> ContainerExecutor::Engine(std::vector<std::string> args) const {
  std::vector<std::string> argv = {engine_};
  if (!host_.empty()) {
    argv.push_back(engine_ == "podman" ? "--url" : "--host");
    argv.push_back(host_);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

absl::StatusOr<std::string> ContainerExecutor::Call(std::vector<std::string> args, absl::Duration timeout) const {
  const std::string command = args.empty() ? "" : args[0];  // for the error: "docker inspect failed"
  ExecRequest request;
  request.argv = Engine(std::move(args));
  request.workdir = "/";
  request.timeout = timeout;
  request.env = EngineEnvironment();
  std::string out, err;
  CancelToken never;
  auto result = ProcessExecutor().Run(
      request, [&](OutputStream s, absl::string_view data) { (s == OutputStream::kStdout ? out : err).append(data.data(), data.size()); }, never);
  if (!result.ok()) return result.status();
  if (result->exit_code != 0) {
    return absl::InternalError(absl::StrCat(engine_, " ", command, " failed (exit ", result->exit_code,
                                            "): ", absl::StripAsciiWhitespace(err)));
  }
  return out;
}

std::vector<std::string> ContainerExecutor::RunCommand(const ExecRequest& request) const {
  const ContainerRun& c = *request.container;
  std::vector<std::string> args = {"run", "--name", c.name, "--label", absl::StrCat(kWorkerLabel, "=", worker_id_)};
  for (const auto& [k, v] : c.labels) {
    args.push_back("--label");
    args.push_back(absl::StrCat(k, "=", v));
  }
  args.insert(args.end(), {"--network", c.network ? "bridge" : "none", "--volume",
                           absl::StrCat(request.workdir.string(), ":", kWorkDir), "--workdir",
                           request.cwd.empty() ? std::string(kWorkDir) : absl::StrCat(kWorkDir, "/", request.cwd)});
  if (!c.user.empty()) args.insert(args.end(), {"--user", c.user});
  if (!c.cgroup_parent.empty()) {
    args.insert(args.end(), {"--cgroup-parent", c.cgroup_parent});  // the limits are the parent's
    // Podman would put the container's monitor (conmon) in that group too, where a step over its
    // memory gets it killed as well, and `podman run` then waits forever for the exit conmon never
    // writes. It stays in the CLI's (the worker's) group instead.
    if (engine_ == "podman") args.push_back("--cgroups=no-conmon");
  } else {
    if (c.limits.cpus > 0) args.insert(args.end(), {"--cpus", absl::StrCat(c.limits.cpus)});
    if (c.limits.memory_bytes > 0) {
      // Swap included: a step over its memory is killed, not slowed down by swapping.
      const std::string bytes = absl::StrCat(c.limits.memory_bytes);
      args.insert(args.end(), {"--memory", bytes, "--memory-swap", bytes});
    }
    if (c.limits.pids > 0) args.insert(args.end(), {"--pids-limit", absl::StrCat(c.limits.pids)});
  }
  // The step's own variables; PATH is the image's, HOME and TMPDIR are inside the container.
  for (const auto& [k, v] : request.env) {
    if (k == "PATH" || k == "HOME" || k == "TMPDIR") continue;
    args.insert(args.end(), {"--env", absl::StrCat(k, "=", v)});
  }
  args.insert(args.end(), {"--env", absl::StrCat("HOME=", kWorkDir), c.image});
  args.insert(args.end(), request.argv.begin(), request.argv.end());
  return Engine(args);
}

absl::StatusOr<ExecResult> ContainerExecutor::Run(const ExecRequest& request, const OutputFn& output,
                                                  const CancelToken& cancel) {
  if (request.container == nullptr) return absl::InvalidArgumentError("not a container step");
  ExecRequest cli = request;
  cli.argv = RunCommand(request);
  cli.env = EngineEnvironment();
  auto result = process_.Run(cli, output, cancel);
  if (result.ok()) result->oom_killed = OomKilled(*request.container, *result);
  // Whatever happened to the CLI (an exit, a timeout, a cancel, a kill), the container goes now.
  std::vector<std::string> rm = RemoveCommand();
  rm.push_back(request.container->name);
  if (auto removed = Call(rm, absl::Seconds(20)); !removed.ok()) {
    spdlog::warn("container {} not removed: {}", request.container->name, std::string(removed.status().message()));
  }
  return result;
}

bool ContainerExecutor::OomKilled(const ContainerRun& container, const ExecResult& result) const {
  // Nothing to ask without a memory limit, or when a group of the worker's holds it (the worker
  // reads the kernel's own count then): no engine call on those steps' way out.
  if (container.limits.memory_bytes == 0 || !container.cgroup_parent.empty()) return false;
  auto inspect = [&]() {
    auto oom = Call({"inspect", "--format", "{{.State.OOMKilled}}", container.name}, absl::Seconds(10));
    return oom.ok() && absl::StripAsciiWhitespace(*oom) == "true";
  };
  if (inspect()) return true;
  // The engine hears of an OOM kill in an event of its own, which can arrive after the exit that
  // ended `run` (containerd/containerd#8180); the container's state then never says OOMKilled, but
  // the engine still logs an "oom" event for it. A container with a memory limit that died of
  // SIGKILL, not by our hand, is looked up in the events until the engine has had time to log one.
  if (result.exit_code != 128 + SIGKILL || result.timed_out || result.cancelled) return false;
  const std::string since = absl::StrCat(absl::ToUnixSeconds(result.started) - 1);
  const absl::Time deadline = absl::Now() + absl::Seconds(3);
  do {
    const int64_t now = absl::ToUnixNanos(absl::Now());  // the engine takes SECONDS.NANOSECONDS
    auto events = Call({"events", "--since", since, "--until", absl::StrFormat("%d.%09d", now / 1000000000, now % 1000000000),
                        "--filter", absl::StrCat("container=", container.name), "--filter", "event=oom", "--format",
                        "{{.Status}}"},
                       absl::Seconds(10));
    if (events.ok() && absl::StrContains(*events, "oom")) return true;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  return false;
}

}  // namespace assay
