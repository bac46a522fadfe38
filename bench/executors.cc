// Per-step overhead of each executor against direct execution, for `true` and for compiling one C
// file (arm-none-eabi-gcc), run one after another N times in a fresh work directory each:
//   build/bench/bench_executors [N] [--image IMAGE [--docker-host URL] [--podman]]
// Rows: direct (posix_spawn of /bin/sh -ec), process, process with cgroup limits, sandbox (made
// by the worker from the kernel's namespaces, and by bubblewrap), and, given an image holding the compiler (e.g. the toolchain image of
// deploy/images/build-images.sh), docker (its daemon at URL) and podman (configured as usual, by
// CONTAINERS_CONF and CONTAINERS_STORAGE_CONF), each without and with limits.
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/process_cpu.h"
#include "common/base/file_util.h"
#include "worker/cgroups.h"
#include "worker/container_executor.h"
#include "worker/executor.h"
#include "worker/namespace_sandbox.h"

extern char** environ;

namespace {

using namespace assay;
namespace fs = std::filesystem;

const char kSource[] = "int add(int a, int b) { return a + b; }\nint main(void) { return add(1, 2) - 3; }\n";
const char kCompile[] = "arm-none-eabi-gcc -mcpu=cortex-m3 -mthumb -O2 -c one.c -o one.o";

// A fresh work directory with one.c in it, for each run.
fs::path Workdir(const fs::path& root, int i) {
  fs::path dir = root / absl::StrCat("run-", i);
  fs::create_directories(dir);
  (void)WriteFile(dir / "one.c", kSource);
  return dir;
}

// The mean wall time of `run` over n runs (after one warm-up), in ms; -1 if a run failed.
double Mean(int n, const fs::path& root, const std::function<bool(const fs::path&)>& run) {
  if (!run(Workdir(root, -1))) return -1;
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    if (!run(Workdir(root, i))) return -1;
  }
  return absl::ToDoubleMilliseconds(absl::Now() - start) / n;
}

bool Direct(const fs::path& dir, const std::string& command) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
  const char* argv[] = {"/bin/sh", "-ec", command.c_str(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/bin/sh", &actions, nullptr, const_cast<char**>(argv), environ);
  posix_spawn_file_actions_destroy(&actions);
  int status = 0;
  return rc == 0 && ::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

bool Through(Executor* executor, const fs::path& dir, const std::string& command,
             const std::function<void(ExecRequest*)>& adjust = nullptr) {
  ExecRequest request;
  request.argv = {"/bin/sh", "-ec", command};
  request.workdir = dir;
  request.env.emplace_back("PATH", std::getenv("PATH") != nullptr ? std::getenv("PATH") : "/usr/bin:/bin");
  if (adjust) adjust(&request);
  CancelToken never;
  auto result = executor->Run(request, [](OutputStream, absl::string_view) {}, never);
  return result.ok() && result->exit_code == 0;
}

// The machine's busy CPU so far (every core, the kernel's threads included), in seconds.
double BusySeconds() { return assay::bench::MachineTicksNow().busy / static_cast<double>(::sysconf(_SC_CLK_TCK)); }

// A `true` step in the worker's own sandbox, joining a lent network namespace (`lent`: the
// executor's pool) or making its own (how every sandbox started before session 36): the machine's
// CPU and the wall time per step, each way in turn in batches so that both see the same machine.
void LentAgainstOwnNetwork(int n, const fs::path& root, SandboxExecutor* lent) {
  ProcessExecutor process;
  double busy[2] = {0, 0}, wall[2] = {0, 0};
  constexpr int kBatches = 8;
  for (int batch = 0; batch < kBatches; ++batch) {
    for (int way = 0; way < 2; ++way) {
      const fs::path dir = Workdir(root, batch * 2 + way);
      const double busy0 = BusySeconds();
      const absl::Time start = absl::Now();
      for (int i = 0; i < n; ++i) {
        if (way == 0) {
          Through(lent, dir, "true");
        } else {
          ExecRequest request;
          request.argv = {"/bin/sh", "-ec", "true"};
          request.workdir = dir;
          NamespaceSandbox own(dir);
          CancelToken never;
          (void)process.RunIn(&own, request, [](OutputStream, absl::string_view) {}, never);
        }
      }
      wall[way] += absl::ToDoubleMilliseconds(absl::Now() - start);
      busy[way] += (BusySeconds() - busy0) * 1e3;
    }
  }
  const double steps = static_cast<double>(n) * kBatches;
  std::printf("\nA `true` step in the namespace sandbox, %d each way in %d alternating batches:\n", n * kBatches, kBatches);
  std::printf("  network namespace lent (the default)  %.2f ms wall, %.2f ms of the machine's CPU\n", wall[0] / steps,
              busy[0] / steps);
  std::printf("  a new one per step (before)           %.2f ms wall, %.2f ms of the machine's CPU  (%.2fx, %.2fx)\n",
              wall[1] / steps, busy[1] / steps, wall[1] / wall[0], busy[1] / std::max(busy[0], 1e-9));
}

}  // namespace

int main(int argc, char** argv) {
  int n = 50;
  std::string docker_host, image;
  bool podman = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--docker-host" && i + 1 < argc) {
      docker_host = argv[++i];
    } else if (arg == "--image" && i + 1 < argc) {
      image = argv[++i];
    } else if (arg == "--podman") {
      podman = true;
    } else if (!absl::SimpleAtoi(arg, &n)) {
      std::fprintf(stderr, "usage: %s [N] [--image IMAGE [--docker-host URL] [--podman]]\n", argv[0]);
      return 2;
    }
  }
  ScopedTempDir root("assay-bench-executors");
  ProcessExecutor process;
  auto sandbox = SandboxExecutor::Create("namespaces");
  auto bubblewrap = SandboxExecutor::Create("bubblewrap");
  const Cgroups cgroups = Cgroups::Detect();
  std::vector<std::unique_ptr<ContainerExecutor>> engines;
  for (const auto& [engine, host, wanted] : {std::tuple{"docker", docker_host, !docker_host.empty()},
                                              std::tuple{"podman", std::string(), podman}}) {
    if (!wanted || image.empty()) continue;
    auto made = ContainerExecutor::Create(engine, host, "bench");
    if (!made.ok()) {
      std::fprintf(stderr, "%s: %s\n", engine, std::string(made.status().message()).c_str());
      return 1;
    }
    engines.push_back(std::move(*made));
  }
  ResourceLimits limits;
  limits.cpus = 1;
  limits.memory_bytes = 256 << 20;
  limits.pids = 256;

  std::printf("%d runs each, one at a time; mean wall time per step\n", n);
  std::printf("%-32s %12s %8s %14s %8s\n", "executor", "true (ms)", "ratio", "compile (ms)", "ratio");
  double direct[2] = {0, 0};
  int row = 0;
  auto report = [&](const char* name, const std::function<bool(const fs::path&, const std::string&)>& run) {
    double ms[2];
    int c = 0;
    for (const std::string& command : {std::string("true"), std::string(kCompile)}) {
      ms[c] = Mean(n, root.path() / absl::StrCat(row, "-", c), [&](const fs::path& dir) { return run(dir, command); });
      ++c;
    }
    if (row++ == 0) std::copy(ms, ms + 2, direct);
    std::printf("%-32s %12.2f %7.1fx %14.2f %7.1fx\n", name, ms[0], ms[0] / direct[0], ms[1], ms[1] / direct[1]);
  };
  report("direct (posix_spawn)", [](const fs::path& dir, const std::string& cmd) { return Direct(dir, cmd); });
  report("process", [&](const fs::path& dir, const std::string& cmd) { return Through(&process, dir, cmd); });
  if (cgroups.Unsupported(limits).empty()) {
    int k = 0;
    report("process + cgroup limits", [&](const fs::path& dir, const std::string& cmd) {
      auto group = cgroups.Create(absl::StrCat("assay-bench-", ::getpid(), "-", k++), limits);
      if (!group.ok()) return false;
      return Through(&process, dir, cmd, [&](ExecRequest* r) { r->join_cgroups = (*group)->procs_files(); });
    });
  }
  if (sandbox.ok()) {
    report("sandbox (namespaces, the default)",
           [&](const fs::path& dir, const std::string& cmd) { return Through(sandbox->get(), dir, cmd); });
  }
  if (bubblewrap.ok()) {
    report("sandbox (bubblewrap)", [&](const fs::path& dir, const std::string& cmd) { return Through(bubblewrap->get(), dir, cmd); });
  }
  for (const auto& engine : engines) {
    for (const bool limited : {false, true}) {
      int k = 0;
      const std::string name = absl::StrCat(engine->name(), " ", engine->version(), limited ? " + limits" : "");
      report(name.c_str(), [&](const fs::path& dir, const std::string& cmd) {
        auto run = std::make_shared<ContainerRun>();
        run->image = image;
        run->name = absl::StrCat("assay-bench-", ::getpid(), "-", limited, "-", k++);
        std::unique_ptr<Cgroups::Task> group;
        if (limited) {  // as the worker does it: in a group of its own, or through the engine's flags
          run->limits = limits;
          if (engine->shares_cgroups() && cgroups.Unsupported(limits).empty()) {
            auto made = cgroups.Create(run->name, limits, /*as_parent=*/true);
            if (!made.ok()) return false;
            group = std::move(*made);
            run->cgroup_parent = group->path();
          }
        }
        return Through(engine.get(), dir, cmd, [&](ExecRequest* r) { r->container = run; });
      });
    }
  }
  if (sandbox.ok()) LentAgainstOwnNetwork(n, root.path() / "networks", sandbox->get());
  return 0;
}
