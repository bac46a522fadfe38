// Network namespaces for the worker's sandboxes, made once and each lent to one sandbox at a time.
//
// A new network namespace is the dearest part of a new sandbox: on this kind of host ~0.5 ms of
// the starting process's CPU to make (its loopback device, its sysctl tables, its protocols) and as
// much again in a kernel thread to take apart later, serialized with every other namespace's
// (docs/benchmarks.md, session 36). Nix found the same for its build sandbox and syzkaller reuses
// namespaces for it. So the sandbox of a step joins an empty one from here instead, which it has to
// itself while it runs: two steps running at once never share one (a worker with N slots makes up
// to N), and the next step to get it finds nothing of the last one:
// - its loopback stays down, and no step can bring it up or change anything else in it: a step has
//   no capability (namespace_sandbox.h), /proc/sys is read-only, and only the sandbox's pid 1,
//   which runs only the worker's code, holds capabilities there;
// - what a step can make in it without capabilities (sockets: unix ones, the abstract names
//   included, netlink ones; nothing can connect over a loopback that is down) lives only as long as
//   a process holds it, and a namespace is lent again only once the sandbox's pid 1 is reaped, when
//   the kernel has killed every process of the sandbox's pid namespace.
// Each network namespace belongs to a user namespace of its own, made with it (the worker's user
// and group mapped to themselves), through which the sandbox may join it; the sandbox still makes
// a new user namespace of its own inside that one, so what the kernel keeps per user namespace
// (keyrings) is not shared either.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/tree/safe_fs.h"

namespace assay {

class SandboxNetworks {
 public:
  // A network namespace and the user namespace that owns it, as descriptors.
  struct Namespaces {
    ScopedFd user;
    ScopedFd net;
  };
  // One lent to a sandbox; back to the pool when destroyed (after the sandbox's pid 1 is reaped).
  class Lease {
   public:
    Lease(SandboxNetworks* pool, std::unique_ptr<Namespaces> namespaces)
        : pool_(pool), namespaces_(std::move(namespaces)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (namespaces_ != nullptr) pool_->Return(std::move(namespaces_));
    }
    int user_fd() const { return namespaces_->user.get(); }
    int net_fd() const { return namespaces_->net.get(); }

   private:
    SandboxNetworks* pool_;
    std::unique_ptr<Namespaces> namespaces_;
  };

  // A free one, or a new one when none is free (an error says why one could not be made: the
  // caller's sandbox then makes its own, as before).
  absl::StatusOr<Lease> Acquire() ABSL_LOCKS_EXCLUDED(mu_);
  // How many were made (at most as many as sandboxes ran at once).
  int made() const ABSL_LOCKS_EXCLUDED(mu_);

  // Makes a user namespace with a network namespace in it, through a short-lived child process.
  static absl::StatusOr<std::unique_ptr<Namespaces>> Make();

 private:
  void Return(std::unique_ptr<Namespaces> namespaces) ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Namespaces>> free_ ABSL_GUARDED_BY(mu_);
  int made_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace assay
