// The sandbox the worker makes itself for a step, from the kernel's namespaces (user, mount, pid,
// network, IPC, UTS and cgroup; the network one lent from a pool, sandbox_networks.h): the host's /usr and a few /etc files read-only, private /proc,
// /dev and /tmp, the kernel's settings read-only, the step's work directory writable at its own
// path, no network but its own loopback, no capabilities. The same sandbox bubblewrap made
// (sandbox_executor.cc), without bubblewrap's program and its processes: a step starts ~7 ms sooner
// on a host where starting a program costs ~4 (docs/benchmarks.md).
//
// The sandbox's first process is its pid 1: it mounts the sandbox, starts the step with no
// capability, reaps whatever is orphaned inside, and ends with the step's exit code; when it ends
// the kernel kills everything left in the sandbox. It runs on its own stack in the worker's memory
// (no copy of the worker's page tables), so it makes only async-signal-safe calls: all it reads is
// prepared by `NamespaceSandbox`'s constructor, in the worker. It keeps its own capabilities (in
// the sandbox's user namespace only): they are what keeps the step from its memory, which is the
// worker's (/proc/1/mem, ptrace; namespace_sandbox_test).
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "worker/sandbox_networks.h"

namespace assay {

// How the sandbox's pid 1 starts the step (what the supervisor would pass to posix_spawnp).
struct StepSpawn {
  const posix_spawn_file_actions_t* actions;
  const posix_spawnattr_t* attr;
  char* const* argv;
  char* const* envp;
};

class NamespaceSandbox {
 public:
  // Where a step in `workdir` is sandboxed (read by the sandbox's pid 1, which must not allocate).
  // `network`: an empty network namespace lent to this sandbox alone (sandbox_networks.h), joined
  // instead of making one; it must stay lent until the sandbox's pid 1 is reaped. Null: a new one.
  explicit NamespaceSandbox(const std::filesystem::path& workdir, const SandboxNetworks::Lease* network = nullptr);
  NamespaceSandbox(const NamespaceSandbox&) = delete;
  NamespaceSandbox& operator=(const NamespaceSandbox&) = delete;

  // Starts the sandbox's pid 1, which starts `step` in it. `stack_top`: the top of a stack of
  // kStackBytes for it in the caller's memory (ignored by sanitizer builds, whose pid 1 is a forked
  // copy). Async-signal-safe; returns its pid (on the caller's side of the namespaces) or -1.
  // Exit code 125 with a message on stderr when the sandbox could not be made.
  pid_t Start(void* stack_top, const StepSpawn& step);
  // The pid 1's stack (the top kFirstProcessBytes) and, below it, the one of the process that joins
  // a lent network namespace and makes the rest before it starts pid 1 (Join).
  static constexpr size_t kFirstProcessBytes = 64 * 1024;
  // The lent namespaces' descriptors (-1: none), which the process that starts it must keep open.
  int user_fd() const { return user_fd_; }
  int net_fd() const { return net_fd_; }
  static constexpr size_t kStackBytes = kFirstProcessBytes + 32 * 1024;

 private:
  struct Bind {
    std::string source;  // absolute, on the host
    std::string target;  // relative to the sandbox's root
    bool writable = false;
    bool optional = false;  // absent on the host: left out
    bool device = false;    // a device node: opened as one (every other tree is nodev)
  };
  static int FirstProcess(void* sandbox);
  // Joins the lent namespaces, makes the others, starts pid 1 as a sibling (its parent the
  // supervisor), writes its pid to `pid_pipe_` and ends.
  static int Join(void* sandbox);
  pid_t StartJoining(void* stack_top);
  [[noreturn]] void Enter() const;
  bool MountAll() const;

  std::vector<Bind> binds_;
  std::string root_;  // where the sandbox's root is mounted (the work directory: it exists, it is ours)
  std::string workdir_;
  std::string uid_map_, gid_map_;
  StepSpawn step_ = {};  // set by Start, read by the first process
  int user_fd_ = -1;     // of the lent network namespace's owner (-1: none lent)
  int net_fd_ = -1;
  int pid_pipe_ = -1;    // Join's pipe to Start, while it runs
  void* first_stack_top_ = nullptr;
};

}  // namespace assay
