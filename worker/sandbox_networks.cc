#include "worker/sandbox_networks.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace assay {

namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ASSAY_NETWORKS_FORK 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ASSAY_NETWORKS_FORK 1
#endif

// The child that holds the new namespaces until the worker has opened them: it waits for the end
// of its gate pipe. It shares the worker's descriptor table (CLONE_FILES: it copies no descriptor
// of the worker's, see fd_copies.h) and makes only async-signal-safe calls.
int HoldUntilOpened(void* gate) {
  char byte;
  while (::read(*static_cast<const int*>(gate), &byte, 1) < 0 && errno == EINTR) {
  }
  _exit(0);
}

absl::Status WriteProcFile(pid_t pid, const char* name, const std::string& text) {
  const std::string path = absl::StrCat("/proc/", pid, "/", name);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("opening ", path, ": ", std::strerror(errno)));
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int error = errno;
  ::close(fd);
  if (!written) return absl::InternalError(absl::StrCat("writing ", path, ": ", std::strerror(error)));
  return absl::OkStatus();
}

absl::StatusOr<ScopedFd> OpenNamespace(pid_t pid, const char* name) {
  const std::string path = absl::StrCat("/proc/", pid, "/ns/", name);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("opening ", path, ": ", std::strerror(errno)));
  return ScopedFd(fd);
}

// Maps the worker's user and group to themselves in the child's new user namespace, then opens its
// user and network namespaces.
absl::StatusOr<std::unique_ptr<SandboxNetworks::Namespaces>> OpenAll(pid_t child) {
  if (absl::Status s = WriteProcFile(child, "uid_map", absl::StrCat(::geteuid(), " ", ::geteuid(), " 1\n")); !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteProcFile(child, "setgroups", "deny"); !s.ok()) return s;
  if (absl::Status s = WriteProcFile(child, "gid_map", absl::StrCat(::getegid(), " ", ::getegid(), " 1\n")); !s.ok()) {
    return s;
  }
  auto made = std::make_unique<SandboxNetworks::Namespaces>();
  auto user = OpenNamespace(child, "user");
  if (!user.ok()) return user.status();
  auto net = OpenNamespace(child, "net");
  if (!net.ok()) return net.status();
  made->user = std::move(*user);
  made->net = std::move(*net);
  return made;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SandboxNetworks::Namespaces>> SandboxNetworks::Make() {
  int gate[2];
  if (::pipe2(gate, O_CLOEXEC) != 0) return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  ScopedFd gate_in(gate[0]), gate_out(gate[1]);
  constexpr int kFlags = CLONE_FILES | CLONE_NEWUSER | CLONE_NEWNET | SIGCHLD;
#ifdef ASSAY_NETWORKS_FORK
  const long child = ::syscall(SYS_clone, kFlags, nullptr, nullptr, nullptr, 0L);
  if (child == 0) HoldUntilOpened(&gate[0]);
#else
  constexpr size_t kStack = 64 * 1024;
  void* stack = ::mmap(nullptr, kStack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
  if (stack == MAP_FAILED) return absl::ResourceExhaustedError("no memory for a stack");
  const long child = ::clone(HoldUntilOpened, static_cast<char*>(stack) + kStack, CLONE_VM | kFlags, &gate[0]);
#endif
  const int clone_error = errno;
  absl::StatusOr<std::unique_ptr<Namespaces>> made =
      child > 0 ? OpenAll(static_cast<pid_t>(child))
                : absl::FailedPreconditionError(
                      absl::StrCat("making a network namespace: ", std::strerror(clone_error)));
  gate_out.Reset();  // the child ends
  if (child > 0) {
    while (::waitpid(static_cast<pid_t>(child), nullptr, 0) < 0 && errno == EINTR) {
    }
  }
#ifndef ASSAY_NETWORKS_FORK
  ::munmap(stack, kStack);
#endif
  return made;
}

absl::StatusOr<SandboxNetworks::Lease> SandboxNetworks::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (!free_.empty()) {
      std::unique_ptr<Namespaces> namespaces = std::move(free_.back());
      free_.pop_back();
      return Lease(this, std::move(namespaces));
    }
  }
  auto made = Make();  // not under the lock: another slot's sandbox may start meanwhile
  if (!made.ok()) return made.status();
  absl::MutexLock lock(&mu_);
  ++made_;
  return Lease(this, std::move(*made));
}

int SandboxNetworks::made() const {
  absl::MutexLock lock(&mu_);
  return made_;
}

void SandboxNetworks::Return(std::unique_ptr<Namespaces> namespaces) {
  absl::MutexLock lock(&mu_);
  free_.push_back(std::move(namespaces));
}

}  // namespace assay
