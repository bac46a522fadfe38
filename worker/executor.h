// Executors run one command in a prepared directory. Every executor enforces the timeout, honours
// cancellation, streams output as it is written, and kills the whole process tree it started.
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "worker/cgroups.h"
#include "worker/sandbox_networks.h"

namespace assay {

// Set from any thread; the executor notices within its poll interval.
class CancelToken {
 public:
  CancelToken();
  ~CancelToken();
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;
  // Cancels this token, then its followers (each once).
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }
  int fd() const { return fd_; }  // readable once cancelled

  // `follower` is cancelled with this token (at once, when this one already is) until Unfollow
  // returns; after that, this token's Cancel does not touch it. A follower's own followers follow
  // it in turn: tokens form a tree (the lock order is parent, then child). Const: a follower changes
  // nothing this token says (whether it is cancelled), and executors hold the task's token const
  // while they link their own to it (LinkedCancel).
  void Follow(CancelToken* follower) const;
  void Unfollow(CancelToken* follower) const;

 private:
  std::atomic<bool> cancelled_{false};
  int fd_ = -1;
  mutable absl::Mutex mu_;
  mutable std::vector<CancelToken*> followers_ ABSL_GUARDED_BY(mu_);
};

enum class OutputStream { kStdout, kStderr };
struct ContainerRun;  // worker/container_executor.h
class NamespaceSandbox;  // worker/namespace_sandbox.h
class ConsoleHarness;  // common/console_harness.h

struct ExecRequest {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::filesystem::path workdir;  // the step's directory: the one bound or mounted for it
  // Where the command starts, relative to `workdir` ("": `workdir` itself); REAPI's working_directory,
  // checked beforehand to be a directory beneath it reached through no symlink.
  std::string cwd;
  absl::Duration timeout = absl::Minutes(30);
  absl::Duration kill_grace = absl::Seconds(1);  // SIGTERM, then SIGKILL after this
  // cgroup.procs files the step joins before it starts (its resource limits, worker/cgroups.h).
  std::vector<std::string> join_cgroups;
  // Set for a step run in a container image (worker/container_executor.h).
  std::shared_ptr<const ContainerRun> container;
  // Read by the decorators around the executors (limits_executor.h, harness_executor.h):
  std::string name;         // unique on this host: the step's control groups are named after it
  ResourceLimits limits;    // held in control groups of the step's own (LimitsExecutor)
  std::shared_ptr<ConsoleHarness> harness;  // judges a qemu step's console (HarnessExecutor); may be null
};

// A console harness's judgement of a run (HarnessExecutor).
struct ConsoleVerdict {
  bool passed = false;
  std::string message;          // why it failed
  size_t met = 0;               // expectations met
  bool harness_stopped = false;  // the harness ended the run (or fell too far behind)
};

struct ExecResult {
  int exit_code = -1;      // 128 + signal when killed by a signal
  bool timed_out = false;
  bool cancelled = false;
  bool oom_killed = false;  // its memory limit killed it (the kernel's count, or the engine's report)
  std::optional<ConsoleVerdict> console;  // set when the request had a harness
  absl::Time started;
  absl::Time finished;
};

using OutputFn = std::function<void(OutputStream, absl::string_view)>;

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string name() const = 0;
  // An error means the command could not be started (its message is the task's error as reported);
  // a failing command is a result.
  virtual absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output,
                                         const CancelToken& cancel) = 0;
};

// A plain child process in its own process group (hosts with nothing else).
class ProcessExecutor final : public Executor {
 public:
  ProcessExecutor();
  // For a process whose children are all started by ProcessExecutors (the worker): an ended child
  // that is no step's supervisor is an orphan a step left behind (Podman's conmon leaves the step's
  // process group); reaped when a step ends instead of staying a zombie. Off by default: a process
  // with children of its own (a test starting daemons) must reap them itself.
  static void ReapOrphansAfterSteps();
  std::string name() const override { return "process"; }
  absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output,
                                 const CancelToken& cancel) override;
  // The same, with the step inside `sandbox` (worker/namespace_sandbox.h) when it is not null.
  absl::StatusOr<ExecResult> RunIn(NamespaceSandbox* sandbox, const ExecRequest& request, const OutputFn& output,
                                   const CancelToken& cancel);
};

// Each step in a sandbox: host /usr read-only (and the few /etc files tools read), private
// /proc, /dev and /tmp, the kernel's settings read-only, the work directory writable at its own
// path, no network (own loopback only), its own pid namespace so that nothing it starts outlives
// it, and no capabilities (even when the worker runs as root). Killed with its supervisor, like the
// process executor. Made by the worker itself from the kernel's namespaces
// (worker/namespace_sandbox.h), or by bubblewrap on hosts where that cannot be done (a kernel older
// than 5.12) or when asked.
class SandboxExecutor final : public Executor {
 public:
  static constexpr const char* kBwrap = "/usr/bin/bwrap";
  enum class Kind { kNamespaces, kBubblewrap };
  // `which`: "namespaces", "bubblewrap", or "auto" (namespaces where they work, else bubblewrap).
  // Checks that a command starts in the sandbox here; the error says why not.
  static absl::StatusOr<std::unique_ptr<SandboxExecutor>> Create(const std::string& which = "auto");
  std::string name() const override { return "sandbox"; }
  Kind kind() const { return kind_; }
  absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output,
                                 const CancelToken& cancel) override;
  // The bwrap command line that runs `argv` in `workdir` (bound writable), starting in its `cwd`.
  static std::vector<std::string> Wrap(const std::vector<std::string>& argv, const std::filesystem::path& workdir,
                                       const std::string& cwd = "");

 private:
  explicit SandboxExecutor(Kind kind) : kind_(kind) {}
  absl::Status Probe();
  Kind kind_;
  ProcessExecutor process_;
  SandboxNetworks networks_;  // for kNamespaces
};

}  // namespace assay
