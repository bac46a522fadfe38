#include "worker/namespace_sandbox.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "worker/sandbox_view.h"

namespace assay {

namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ASSAY_SANDBOX_FORKS 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ASSAY_SANDBOX_FORKS 1
#endif

constexpr int kNamespaces = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                            CLONE_NEWUTS | CLONE_NEWCGROUP;

// Everything below runs in the sandbox's pid 1: async-signal-safe calls only, no allocation. (It
// shares the worker thread's thread-local storage, errno included: a message's reason is read
// right after the call that failed.)

void Say(const char* text) {
  if (text != nullptr) (void)!::write(2, text, std::strlen(text));
}

// "assay sandbox: <what>[ <detail>]: <why>" on stderr, for a call that failed with `error` (errno).
void SayFailed(const char* what, const char* detail, int error) {
  const char* why = ::strerrordesc_np(error);
  Say("assay sandbox: ");
  Say(what);
  if (detail != nullptr) {
    Say(" ");
    Say(detail);
  }
  Say(": ");
  Say(why != nullptr ? why : "unknown error");
  Say("\n");
}

[[noreturn]] void Fail(const char* what, const char* path) {
  SayFailed(what, path, errno);
  _exit(125);
}

void WriteTo(const char* path, std::string_view text) {
  const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || ::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) Fail("writing", path);
  ::close(fd);
}

// Makes the folders of relative `path` (all of them, or all but the last), under the current one.
void MakeFolders(const std::string& path, bool last_too) {
  char buffer[PATH_MAX];
  if (path.size() >= sizeof(buffer)) {
    errno = ENAMETOOLONG;
    Fail("making", path.c_str());
  }
  std::memcpy(buffer, path.c_str(), path.size() + 1);
  for (size_t i = 1; i <= path.size(); ++i) {
    if (buffer[i] != '/' && !(last_too && buffer[i] == '\0')) continue;
    const char kept = buffer[i];
    buffer[i] = '\0';
    if (::mkdir(buffer, 0755) != 0 && errno != EEXIST) Fail("making", buffer);
    buffer[i] = kept;
  }
}

// A copy of the host's tree at `source` (its mounts beneath included), nosuid, nodev unless a
// `device`, and read-only unless `writable`: -1 when `optional` and absent.
int CopyOfTree(const char* source, bool writable, bool optional, bool device) {
  const int tree = ::open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) {
    if (optional && errno == ENOENT) return -1;
    Fail("copying", source);
  }
  struct mount_attr attr = {};
  attr.attr_set = MOUNT_ATTR_NOSUID | (device ? 0 : MOUNT_ATTR_NODEV) | (writable ? 0 : MOUNT_ATTR_RDONLY);
  if (::mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) != 0) Fail("restricting", source);
  return tree;
}

void MountFs(const char* type, const char* target, unsigned long flags, const char* options) {
  if (::mount(type, target, type, flags, options) != 0) Fail("mounting", target);
}

void Link(const char* to, const char* name) {
  if (::symlink(to, name) != 0) Fail("linking", name);
}

// Whatever this process starts gets no capability: none in the bounding set (a program run as
// root gains none), none ambient, none gained through exec. This process keeps its own, in the
// sandbox's user namespace: it shares the worker's memory, and a process of the same user may read
// and write another's memory (/proc/PID/mem, ptrace) only when it holds every capability the other
// holds. So the step, with none, cannot reach pid 1 and through it the worker.
void NoCapabilitiesForChildren() {
  for (unsigned long cap = 0; cap < 64; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) Fail("dropping", "capabilities");
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) Fail("dropping", "ambient capabilities");
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct caps[2] = {};
  if (::syscall(SYS_capget, &header, caps) != 0) Fail("reading", "capabilities");
  caps[0].inheritable = caps[1].inheritable = 0;
  if (::syscall(SYS_capset, &header, caps) != 0) Fail("dropping", "inheritable capabilities");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) Fail("setting", "no_new_privs");
}

}  // namespace

NamespaceSandbox::NamespaceSandbox(const std::filesystem::path& workdir, const SandboxNetworks::Lease* network)
    : root_(std::filesystem::absolute(workdir).lexically_normal().string()),
      workdir_(std::filesystem::path(root_).relative_path().string()),
      user_fd_(network != nullptr ? network->user_fd() : -1),
      net_fd_(network != nullptr ? network->net_fd() : -1) {
  // The host's paths a step sees, read-only (sandbox_view.h; the kernel's settings over the /proc
  // mounted before the binds: MountAll).
  auto bind = [this](const sandbox_view::HostPath& host) {
    binds_.push_back({host.path, host.path + 1, false, host.optional});
  };
  for (const auto& host : sandbox_view::kTools) bind(host);
  for (const auto& host : sandbox_view::kEtcFiles) bind(host);
  for (const auto& host : sandbox_view::kKernelSettings) bind(host);
  for (const char* device : {"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}) {
    binds_.push_back({device, device + 1, true, false, true});
  }
  binds_.push_back({root_, workdir_, true, false});
  // The same user and group inside as outside (root stays root, without capabilities).
  uid_map_ = absl::StrCat(::geteuid(), " ", ::geteuid(), " 1\n");
  gid_map_ = absl::StrCat(::getegid(), " ", ::getegid(), " 1\n");
}

pid_t NamespaceSandbox::Start(void* stack_top, const StepSpawn& step) {
  step_ = step;
  if (net_fd_ >= 0) return StartJoining(stack_top);
#ifdef ASSAY_SANDBOX_FORKS
  (void)stack_top;
  const long pid = ::syscall(SYS_clone, kNamespaces | SIGCHLD, nullptr, nullptr, nullptr, 0L);
  if (pid == 0) _exit(FirstProcess(this));
#else
  const pid_t pid = ::clone(FirstProcess, stack_top, CLONE_VM | kNamespaces | SIGCHLD, this);
#endif
  if (pid < 0) SayFailed("starting a process in new namespaces", nullptr, errno);
  return static_cast<pid_t>(pid);
}

int NamespaceSandbox::FirstProcess(void* sandbox) { static_cast<const NamespaceSandbox*>(sandbox)->Enter(); }

// With a lent network namespace, pid 1 is started by a process of its own between the supervisor
// and it: a process joins a user namespace only while it is single-threaded and a pid namespace is
// entered only by the children of the process that made it.
pid_t NamespaceSandbox::StartJoining(void* stack_top) {
  int pid_pipe[2];
  if (::pipe2(pid_pipe, O_CLOEXEC) != 0) return -1;
  pid_pipe_ = pid_pipe[1];
  first_stack_top_ = stack_top;
#ifdef ASSAY_SANDBOX_FORKS
  const long joiner = ::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, 0L);
  if (joiner == 0) _exit(Join(this));
#else
  const pid_t joiner = ::clone(Join, static_cast<char*>(stack_top) - kFirstProcessBytes, CLONE_VM | SIGCHLD, this);
#endif
  const int clone_error = errno;
  ::close(pid_pipe[1]);
  pid_t first = -1;
  ssize_t got = -1;
  while (joiner > 0 && (got = ::read(pid_pipe[0], &first, sizeof(first))) < 0 && errno == EINTR) {
  }
  ::close(pid_pipe[0]);
  if (joiner > 0) {
    while (::waitpid(static_cast<pid_t>(joiner), nullptr, 0) < 0 && errno == EINTR) {
    }
  } else {
    SayFailed("starting a process to join namespaces", nullptr, clone_error);
  }
  return got == static_cast<ssize_t>(sizeof(first)) ? first : -1;
}

int NamespaceSandbox::Join(void* arg) {
  const auto* sandbox = static_cast<const NamespaceSandbox*>(arg);
  if (::setns(sandbox->user_fd_, CLONE_NEWUSER) != 0) Fail("joining", "the user namespace of its network");
  if (::setns(sandbox->net_fd_, CLONE_NEWNET) != 0) Fail("joining", "its network namespace");
  ::close(sandbox->user_fd_);  // (this process's copies: pid 1 and the step get none)
  ::close(sandbox->net_fd_);
  // A user namespace of its own inside that one, and every other namespace new.
  if (::unshare(kNamespaces & ~CLONE_NEWNET) != 0) Fail("making", "its namespaces");
#ifdef ASSAY_SANDBOX_FORKS
  const long first = ::syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, 0L);
  if (first == 0) _exit(FirstProcess(arg));
#else
  const pid_t first = ::clone(FirstProcess, sandbox->first_stack_top_, CLONE_VM | CLONE_PARENT | SIGCHLD, arg);
#endif
  if (first < 0) Fail("starting", "its first process");
  const pid_t pid = static_cast<pid_t>(first);
  if (::write(sandbox->pid_pipe_, &pid, sizeof(pid)) != static_cast<ssize_t>(sizeof(pid))) _exit(125);
  _exit(0);
}

// Mounts the sandbox, with its root on `root_` (cwd after), from copies of the host's trees taken
// before anything is mounted over them.
bool NamespaceSandbox::MountAll() const {
  WriteTo("/proc/self/uid_map", uid_map_);
  WriteTo("/proc/self/setgroups", "deny");
  WriteTo("/proc/self/gid_map", gid_map_);
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) Fail("making private", "/");
  int trees[24];
  if (binds_.size() > sizeof(trees) / sizeof(trees[0])) return false;
  for (size_t i = 0; i < binds_.size(); ++i) {
    const Bind& bind = binds_[i];
    trees[i] = CopyOfTree(bind.source.c_str(), bind.writable, bind.optional, bind.device);
  }
  MountFs("tmpfs", root_.c_str(), MS_NOSUID | MS_NODEV, "mode=0755");
  if (::chdir(root_.c_str()) != 0) Fail("entering", root_.c_str());
  MakeFolders("proc", true);
  MountFs("proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  MakeFolders("dev", true);
  MountFs("tmpfs", "dev", MS_NOSUID | MS_NODEV, "mode=0755");
  MakeFolders("dev/pts", true);
  MakeFolders("dev/shm", true);
  MountFs("devpts", "dev/pts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=620");
  Link("pts/ptmx", "dev/ptmx");
  Link("/proc/self/fd", "dev/fd");
  Link("/proc/self/fd/0", "dev/stdin");
  Link("/proc/self/fd/1", "dev/stdout");
  Link("/proc/self/fd/2", "dev/stderr");
  MakeFolders("tmp", true);
  MountFs("tmpfs", "tmp", MS_NOSUID | MS_NODEV, "mode=1777");
  for (size_t i = 0; i < binds_.size(); ++i) {
    if (trees[i] < 0) continue;
    const char* target = binds_[i].target.c_str();
    struct stat st;
    if (::fstat(trees[i], &st) != 0) Fail("reading", binds_[i].source.c_str());
    MakeFolders(binds_[i].target, S_ISDIR(st.st_mode));
    struct stat there;  // a file to mount on, unless one is there (/proc/sysrq-trigger: not to be opened)
    if (!S_ISDIR(st.st_mode) && ::fstatat(AT_FDCWD, target, &there, AT_SYMLINK_NOFOLLOW) != 0) {
      const int fd = ::open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0) Fail("making", target);
      ::close(fd);
    }
    if (::move_mount(trees[i], "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) != 0) Fail("mounting", target);
    ::close(trees[i]);
  }
  Link("usr/lib", "lib");  // (merged /usr)
  Link("usr/lib64", "lib64");
  Link("usr/bin", "bin");
  Link("usr/sbin", "sbin");
  // The sandbox's root becomes the root; the host's goes.
  if (::syscall(SYS_pivot_root, ".", ".") != 0) Fail("entering", root_.c_str());
  if (::umount2(".", MNT_DETACH) != 0) Fail("leaving", "the host's root");
  return true;
}

void NamespaceSandbox::Enter() const {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // the supervisor gone (killed with its group): all of this goes
  if (!MountAll()) Fail("mounting", "(too many binds)");
  if (::chdir("/") != 0) Fail("entering", "/");
  NoCapabilitiesForChildren();
  pid_t step = -1;
  // A program that cannot be started (or a missing work dir) is exit code 127, as in a shell.
  if (::posix_spawnp(&step, step_.argv[0], step_.actions, step_.attr, step_.argv, step_.envp) != 0) _exit(127);
  // The pid 1: reaps what is orphaned inside; ends with the step (the kernel then kills the rest).
  for (;;) {
    int status = 0;
    const pid_t ended = ::wait(&status);
    if (ended == step) _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    if (ended < 0 && errno != EINTR) _exit(125);
  }
}

}  // namespace assay
