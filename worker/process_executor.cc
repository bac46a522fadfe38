#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/base/fd_copies.h"
#include "worker/executor.h"
#include "worker/namespace_sandbox.h"

namespace assay {

namespace {

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Reaps members of process group `pgid` (orphans come back to us: we are a child subreaper) until
// none is left or `wait` passes. Records the status of `main` when it is reaped.
// Returns true when the group is empty.
bool ReapGroup(pid_t pgid, pid_t main, int* main_status, bool* main_reaped, absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(-pgid, &status, WNOHANG);
    if (r == main) {
      *main_status = status;
      *main_reaped = true;
    }
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return true;  // ECHILD: nothing of the group is left
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

// Ends every process of the group: SIGTERM, then SIGKILL after `grace` if any is left.
void KillGroup(pid_t pgid, absl::Duration grace, int* main_status, bool* main_reaped) {
  if (::kill(-pgid, SIGTERM) == 0 && !ReapGroup(pgid, pgid, main_status, main_reaped, grace)) {
    ::kill(-pgid, SIGKILL);
    ReapGroup(pgid, pgid, main_status, main_reaped, absl::Seconds(5));
  }
}

// What the supervisor needs, all prepared before it starts: it makes only async-signal-safe calls.
struct Supervision {
  pid_t parent;
  int dev_null, out, err;
  int ready;  // written to once the supervisor holds no descriptor of the worker's but 0, 1 and 2
  const std::vector<const char*>* cgroup_files;
  const posix_spawn_file_actions_t* actions;
  const posix_spawnattr_t* attr;
  char* const* argv;
  char* const* envp;
  NamespaceSandbox* sandbox;  // the step runs in it, when set
  void* sandbox_stack;        // the top of its first process's stack
  // Descriptors it keeps besides 0, 1, 2 and `ready` when it drops the worker's (-1: none): a
  // sandbox's lent namespaces, which its pid 1's parent joins, then closes.
  int also_keep[2] = {-1, -1};
};

// The step's supervisor and process-group leader. It stays alive while the step runs so that, if
// the worker dies (even kill -9), the kernel tells it (PDEATHSIG) and it kills the whole group: no
// step outlives its worker. It starts with every signal blocked.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ASSAY_SUPERVISOR_FORKS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ASSAY_SUPERVISOR_FORKS 1
#endif
int Supervise(void* arg) {
  const Supervision& s = *static_cast<const Supervision*>(arg);
  // Without a copy of the worker's signal handlers (it may share the worker's memory): the group's
  // SIGTERM on timeout or cancel is for the step; the supervisor reports how the step ended.
  struct sigaction ignore = {}, fallback = {};
  ignore.sa_handler = SIG_IGN;
  fallback.sa_handler = SIG_DFL;
  for (int sig = 1; sig < 32; ++sig) {  // the standard signals (glibc keeps some real-time ones)
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    ::sigaction(sig, sig == SIGTERM || sig == SIGINT || sig == SIGHUP || sig == SIGQUIT ? &ignore : &fallback, nullptr);
  }
  ::setpgid(0, 0);
  sigset_t signals;
  ::sigemptyset(&signals);
  ::sigaddset(&signals, SIGCHLD);
  ::sigaddset(&signals, SIGUSR1);
  ::sigprocmask(SIG_SETMASK, &signals, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGUSR1);
  if (::getppid() != s.parent) ::kill(0, SIGKILL);  // the worker died before prctl took effect
  ::dup2(s.dev_null, 0);
  ::dup2(s.out, 1);
  ::dup2(s.err, 2);
  // Drops the copies of every other descriptor the worker had open (another step's pipes, a
  // script being written): a copied writable file could not be exec'd by its step (ETXTBSY).
  int keep[3] = {s.ready, s.also_keep[0], s.also_keep[1]};
  for (int i = 1; i < 3; ++i) {  // sorted, with no allocation
    for (int j = i; j > 0 && keep[j] < keep[j - 1]; --j) std::swap(keep[j], keep[j - 1]);
  }
  int from = 3;
  for (int fd : keep) {
    if (fd < from) continue;
    if (fd > from) ::close_range(static_cast<unsigned>(from), static_cast<unsigned>(fd) - 1, 0);
    from = fd + 1;
  }
  ::close_range(static_cast<unsigned>(from), ~0U, 0);
  if (::write(s.ready, "r", 1) != 1) _exit(125);
  ::close(s.ready);
  // Into the task's control groups before anything of the step starts: all it forks stays there.
  for (const char* procs : *s.cgroup_files) {
    const int fd = ::open(procs, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(125);
    ::close(fd);
  }
  pid_t step = -1;
  // A program that cannot be started (or a missing work dir) is exit code 127, as in a shell. A bare
  // name (a qemu step's emulator) is looked up on the worker's PATH.
  if (s.sandbox != nullptr) {
    step = s.sandbox->Start(s.sandbox_stack, StepSpawn{s.actions, s.attr, s.argv, s.envp});
    if (step < 0) _exit(125);
  } else if (::posix_spawnp(&step, s.argv[0], s.actions, s.attr, s.argv, s.envp) != 0) {
    _exit(127);
  }
  for (;;) {
    siginfo_t info;
    int sig = ::sigwaitinfo(&signals, &info);
    if (sig == SIGUSR1) {
      ::kill(0, SIGKILL);  // the worker is gone: the whole group goes with it
      _exit(137);
    }
    if (sig != SIGCHLD) continue;
    int status = 0;
    if (::waitpid(step, &status, WNOHANG) == step) {
      _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    }
  }
}

// Starts the supervisor. A fork would copy the worker's page tables (the worker is large: gRPC,
// RocksDB) only to throw them away, on every step; the supervisor runs instead on a stack of its
// own in the worker's memory (clone with CLONE_VM, no CLONE_THREAD: a process of its own, as with
// vfork, but not suspending the worker), touching only what `Supervision` points to, which lives
// until the supervisor is reaped. Sanitizer builds fork: their runtimes cannot follow such a child.
// Below the supervisor's stack is the one of a sandbox's first process (namespace_sandbox.h).
class SupervisorStack {
 public:
  static constexpr size_t kSize = 256 * 1024 + NamespaceSandbox::kStackBytes;
  SupervisorStack() {
#ifndef ASSAY_SUPERVISOR_FORKS
    base_ = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
#endif
  }
  ~SupervisorStack() {
    if (base_ != MAP_FAILED) ::munmap(base_, kSize);
  }
  void* sandbox_top() const {
    return base_ == MAP_FAILED ? nullptr : static_cast<char*>(base_) + NamespaceSandbox::kStackBytes;
  }
  SupervisorStack(const SupervisorStack&) = delete;
  SupervisorStack& operator=(const SupervisorStack&) = delete;

  pid_t Start(Supervision* supervision) {
    // Every signal blocked from the first instruction of the child; the worker's thread gets its
    // mask back at once.
    sigset_t all, old;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = -1;
    if (base_ != MAP_FAILED) {
      pid = ::clone(Supervise, static_cast<char*>(base_) + kSize, CLONE_VM | SIGCHLD, supervision);
    } else {
      pid = ::fork();
      if (pid == 0) _exit(Supervise(supervision));
    }
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    return pid;
  }

 private:
  void* base_ = MAP_FAILED;
};

// The worker's children that are step supervisors, each reaped by the thread that runs its step.
// Any other child that ends is an orphan of a step that left its process group (Podman's conmon
// double-forks into a session of its own): re-parented to the worker (a subreaper), it would stay a
// zombie for the worker's lifetime. Steps end by reaping those (ReapStrays).
class Supervisors {
 public:
  static Supervisors& Get() {
    static Supervisors* const supervisors = new Supervisors();  // never destroyed: steps may outlive main
    return *supervisors;
  }
  // Starts one; it is known before a stray reaper could see it end. Returns once the supervisor has
  // dropped its copies of the worker's descriptors (fd_copies.h): no `CloseFd` runs meanwhile.
  pid_t Start(SupervisorStack* stack, Supervision* supervision) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    absl::WriterMutexLock no_closes(&FdCopiesLock());
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return -1;
    if (ready[1] < 3) {  // (the worker runs with 0, 1 or 2 closed) the supervisor's dup2s would replace it
      const int high = ::fcntl(ready[1], F_DUPFD_CLOEXEC, 3);
      ::close(ready[1]);
      ready[1] = high;
      if (high < 0) {
        ::close(ready[0]);
        return -1;
      }
    }
    supervision->ready = ready[1];
    const pid_t pid = stack->Start(supervision);
    ::close(ready[1]);
    if (pid > 0) {
      pids_.insert(pid);
      char byte;
      while (::read(ready[0], &byte, 1) < 0 && errno == EINTR) {
      }  // a byte, or the end when the supervisor exited early
    }
    ::close(ready[0]);
    return pid;
  }
  void Reaped(pid_t pid) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    pids_.erase(pid);
  }
  // Reaps ended children that are not supervisors, stopping at a supervisor that ended (its
  // thread reaps it; the rest wait for the next step's end).
  void ReapStrays() ABSL_LOCKS_EXCLUDED(mu_) {
    if (!reap_strays_.load()) return;
    absl::MutexLock lock(&mu_);
    for (;;) {
      siginfo_t info = {};
      if (::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid <= 0) return;
      if (pids_.contains(info.si_pid)) return;
      ::waitpid(info.si_pid, nullptr, WNOHANG);
    }
  }
  void set_reap_strays() { reap_strays_ = true; }

 private:
  std::atomic<bool> reap_strays_{false};
  absl::Mutex mu_;
  absl::flat_hash_set<pid_t> pids_ ABSL_GUARDED_BY(mu_);
};

// Everything the supervisor reads to start the step, prepared before it starts (it makes only
// async-signal-safe calls): the command line, the environment, and how posix_spawn starts the step
// (no second copy of the worker's page tables), with the signal mask cleared and default handling
// for the signals the worker changed. Lives until the supervisor is reaped.
class SpawnPlan {
 public:
  explicit SpawnPlan(const ExecRequest& request)
      : workdir_(request.cwd.empty() ? request.workdir.string() : (request.workdir / request.cwd).string()) {
    for (const auto& a : request.argv) argv_.push_back(const_cast<char*>(a.c_str()));
    argv_.push_back(nullptr);
    for (const auto& [k, v] : request.env) env_strings_.push_back(absl::StrCat(k, "=", v));
    for (auto& e : env_strings_) envp_.push_back(e.data());
    envp_.push_back(nullptr);
    for (const std::string& f : request.join_cgroups) cgroup_files_.push_back(f.c_str());
    ::posix_spawnattr_init(&attr_);
    ::posix_spawn_file_actions_init(&actions_);
    sigset_t no_signals, default_signals;
    ::sigemptyset(&no_signals);
    ::sigemptyset(&default_signals);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGUSR1}) ::sigaddset(&default_signals, sig);
    ::posix_spawnattr_setsigmask(&attr_, &no_signals);
    ::posix_spawnattr_setsigdefault(&attr_, &default_signals);
    ::posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    ::posix_spawn_file_actions_addchdir_np(&actions_, workdir_.c_str());
  }
  ~SpawnPlan() {
    ::posix_spawnattr_destroy(&attr_);
    ::posix_spawn_file_actions_destroy(&actions_);
  }
  SpawnPlan(const SpawnPlan&) = delete;
  SpawnPlan& operator=(const SpawnPlan&) = delete;

  Supervision For(int dev_null, int out, int err, NamespaceSandbox* sandbox) const {
    Supervision s{::getpid(), dev_null, out, err, -1, &cgroup_files_, &actions_, &attr_, argv_.data(),
                  envp_.data(), sandbox, nullptr};
    if (sandbox != nullptr) {
      s.also_keep[0] = sandbox->user_fd();
      s.also_keep[1] = sandbox->net_fd();
    }
    return s;
  }

 private:
  std::vector<char*> argv_;
  std::vector<std::string> env_strings_;
  std::vector<char*> envp_;
  std::string workdir_;
  std::vector<const char*> cgroup_files_;
  posix_spawnattr_t attr_;
  posix_spawn_file_actions_t actions_;
};

// The read ends of the step's stdout and stderr pipes.
struct OutputPipes {
  int fds[2] = {-1, -1};
  bool open[2] = {true, true};
  static constexpr size_t kBufferBytes = 64 * 1024;
  // Read into, never zeroed first (a step's start paid for clearing 64 KiB it had not printed).
  std::unique_ptr<char[]> buffer = std::make_unique_for_overwrite<char[]>(kBufferBytes);

  // Reads what is there on pipe `i`; marks it closed at its end. Returns what was read.
  absl::string_view Read(int i, const OutputFn& output) {
    ssize_t n = ::read(fds[i], buffer.get(), kBufferBytes);
    if (n > 0) {
      const absl::string_view got(buffer.get(), static_cast<size_t>(n));
      output(i == 0 ? OutputStream::kStdout : OutputStream::kStderr, got);
      return got;
    }
    if (n == 0 || (errno != EINTR && errno != EAGAIN)) open[i] = false;
    return {};
  }
  // Once the group is gone: takes what is left and closes both. Non-blocking: a process that
  // escaped the group may still hold a pipe; take what is there.
  void DrainAndClose(const OutputFn& output) {
    for (int i = 0; i < 2; ++i) {
      int flags = ::fcntl(fds[i], F_GETFL);
      ::fcntl(fds[i], F_SETFL, flags | O_NONBLOCK);
      while (open[i]) {
        ssize_t n = ::read(fds[i], buffer.get(), kBufferBytes);
        if (n <= 0) break;
        output(i == 0 ? OutputStream::kStdout : OutputStream::kStderr, absl::string_view(buffer.get(), static_cast<size_t>(n)));
      }
      ::close(fds[i]);
    }
  }
};

// A step that prints a character at a time (an emulator's console) is read a piece at a time, not
// a character per wake-up: after a read of less than kSmallRead bytes that ends within a line, the
// pipes rest for kRest (the step's exit, a cancel and the deadline are still watched), and what was
// printed meanwhile comes in one read. Whole lines (a build's commands) and output that streams (a
// read of kSmallRead or more) are read as they come: a step printing fast is never held up.
constexpr size_t kSmallRead = 4096;
constexpr absl::Duration kRest = absl::Milliseconds(5);

// Reads the step's output until its supervisor `pid` exits, or the deadline or the cancel comes
// (then its group is killed: result->timed_out or cancelled). Returns the supervisor's wait status.
int WatchStep(pid_t pid, int pidfd, absl::Time deadline, const ExecRequest& request, const OutputFn& output,
              const CancelToken& cancel, OutputPipes* pipes, ExecResult* result) {
  bool exited = false;
  int status = 0;
  absl::Time rest_until = absl::InfinitePast();
  while (!exited) {
    struct pollfd pfds[4];
    int count = 0;
    int index_of[2] = {-1, -1};
    const absl::Time now = absl::Now();
    for (int i = 0; i < 2 && now >= rest_until; ++i) {
      if (pipes->open[i]) {
        index_of[i] = count;
        pfds[count++] = {pipes->fds[i], POLLIN, 0};
      }
    }
    const int pidfd_index = pidfd >= 0 ? count : -1;
    if (pidfd >= 0) pfds[count++] = {pidfd, POLLIN, 0};
    int cancel_index = -1;
    if (cancel.fd() >= 0) {
      cancel_index = count;
      pfds[count++] = {cancel.fd(), POLLIN, 0};
    }
    // Without a pidfd the child's exit is only seen by polling waitpid.
    absl::Duration wait = std::clamp(deadline - now, absl::ZeroDuration(), absl::Milliseconds(pidfd >= 0 ? 1000 : 50));
    if (now < rest_until) wait = std::min(wait, rest_until - now);
    const timespec timeout = absl::ToTimespec(wait);
    int ready = ::ppoll(pfds, static_cast<nfds_t>(count), &timeout, nullptr);
    if (ready < 0 && errno != EINTR) break;
    bool within_a_line = false;
    for (int i = 0; i < 2; ++i) {
      if (index_of[i] >= 0 && (pfds[index_of[i]].revents & (POLLIN | POLLHUP | POLLERR))) {
        const absl::string_view got = pipes->Read(i, output);
        within_a_line = within_a_line || (!got.empty() && got.size() < kSmallRead && got.back() != '\n');
      }
    }
    if (within_a_line) rest_until = absl::Now() + kRest;
    const bool may_have_exited = pidfd_index < 0 || (pfds[pidfd_index].revents & (POLLIN | POLLHUP | POLLERR));
    if (cancel.cancelled() || (cancel_index >= 0 && (pfds[cancel_index].revents & POLLIN))) {
      result->cancelled = true;
      KillGroup(pid, request.kill_grace, &status, &exited);
    } else if (absl::Now() >= deadline) {
      result->timed_out = true;
      KillGroup(pid, request.kill_grace, &status, &exited);
    } else if (may_have_exited && ::waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
    }
    if ((result->cancelled || result->timed_out) && !exited) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      exited = true;
    }
  }
  if (!exited) {  // (poll failed) the supervisor may not outlive this call: it runs in our memory
    ::kill(-pid, SIGKILL);
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  return status;
}

}  // namespace

void ProcessExecutor::ReapOrphansAfterSteps() { Supervisors::Get().set_reap_strays(); }

ProcessExecutor::ProcessExecutor() {
  // Orphaned grandchildren are re-parented to this process, so they can be found and reaped.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
}

absl::StatusOr<ExecResult> ProcessExecutor::Run(const ExecRequest& request, const OutputFn& output,
                                                const CancelToken& cancel) {
  return RunIn(nullptr, request, output, cancel);
}

absl::StatusOr<ExecResult> ProcessExecutor::RunIn(NamespaceSandbox* sandbox, const ExecRequest& request,
                                                  const OutputFn& output, const CancelToken& cancel) {
  if (request.argv.empty()) return absl::InvalidArgumentError("empty command");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return absl::InternalError("pipe failed");
  }
  // Everything the child needs is prepared before it starts: only async-signal-safe calls in it.
  const SpawnPlan plan(request);
  int dev_null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  ExecResult result;
  result.started = absl::Now();
  Supervision supervision = plan.For(dev_null, out_pipe[1], err_pipe[1], sandbox);
  // Declared after everything the supervisor reads: destroyed (unmapped) first, once it is reaped.
  SupervisorStack stack;
  supervision.sandbox_stack = stack.sandbox_top();
  const pid_t pid = Supervisors::Get().Start(&stack, &supervision);
  if (pid < 0) return absl::InternalError(absl::StrCat("starting the step's supervisor failed: ", std::strerror(errno)));
  ::setpgid(pid, pid);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (dev_null >= 0) ::close(dev_null);
  int pidfd = PidfdOpen(pid);

  OutputPipes pipes;
  pipes.fds[0] = out_pipe[0];
  pipes.fds[1] = err_pipe[0];
  const int status = WatchStep(pid, pidfd, result.started + request.timeout, request, output, cancel, &pipes, &result);
  Supervisors::Get().Reaped(pid);
  // The main process is gone: end whatever it left running in its group, then drain the pipes.
  if (::kill(-pid, SIGKILL) == 0) {
    bool ignored = true;
    int ignored_status = 0;
    ReapGroup(pid, -1, &ignored_status, &ignored, absl::Seconds(5));
  }
  pipes.DrainAndClose(output);
  if (pidfd >= 0) ::close(pidfd);
  Supervisors::Get().ReapStrays();
  result.finished = absl::Now();
  // The supervisor exits with the step's code (128 + signal when the step was killed); when the
  // group is killed on timeout or cancel, the supervisor's own signal is reported the same way.
  if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.exit_code = 128 + WTERMSIG(status);
  }
  return result;
}

}  // namespace assay
