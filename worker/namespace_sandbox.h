// The sandbox the worker makes itself for a step, from the kernel's namespaces (user, mount, pid,
// network, IPC, UTS and cgroup): the host's /usr and a few /etc files read-only, private /proc,
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
  explicit NamespaceSandbox(const std::filesystem::path& workdir);
  NamespaceSandbox(const NamespaceSandbox&) = delete;
  NamespaceSandbox& operator=(const NamespaceSandbox&) = delete;

  // Starts the sandbox's pid 1, which starts `step` in it. `stack_top`: the top of a stack of
  // kStackBytes for it in the caller's memory (ignored by sanitizer builds, whose pid 1 is a forked
  // copy). Async-signal-safe; returns its pid (on the caller's side of the namespaces) or -1.
  // Exit code 125 with a message on stderr when the sandbox could not be made.
  pid_t Start(void* stack_top, const StepSpawn& step);
  static constexpr size_t kStackBytes = 64 * 1024;

 private:
  struct Bind {
    std::string source;  // absolute, on the host
    std::string target;  // relative to the sandbox's root
    bool writable = false;
    bool optional = false;  // absent on the host: left out
    bool device = false;    // a device node: opened as one (every other tree is nodev)
  };
  static int FirstProcess(void* sandbox);
  [[noreturn]] void Enter() const;
  bool MountAll() const;

  std::vector<Bind> binds_;
  std::string root_;  // where the sandbox's root is mounted (the work directory: it exists, it is ours)
  std::string workdir_;
  std::string uid_map_, gid_map_;
  StepSpawn step_ = {};  // set by Start, read by the first process
};

}  // namespace assay
