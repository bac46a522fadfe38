#include "common/base/daemon.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdint>

#include <spdlog/spdlog.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace assay {
namespace {
std::atomic<int> g_signals{0};   // how many arrived
std::atomic<int> g_last_signal{0};
std::atomic<bool> g_restart{false};
std::atomic<int> g_wake_fd{-1};  // an eventfd: a signal or a restart request makes it readable
absl::Mutex g_restart_mu;
std::string g_restart_reason ABSL_GUARDED_BY(g_restart_mu);

int WakeFd() {
  static const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  return fd;
}

// Async-signal-safe: an atomic load and write(2).
void Wake() {
  const int fd = g_wake_fd.load();
  const uint64_t one = 1;
  if (fd >= 0) (void)!::write(fd, &one, sizeof one);
}

void OnSignal(int signal) {
  g_last_signal = signal;
  ++g_signals;
  Wake();
}

void InstallHandlers() {
  g_wake_fd.store(WakeFd());
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
}

// Sleeps until Wake() or `deadline` (absl::InfiniteFuture(): no time limit), and clears the wake-up.
// A wake-up that came before the call returns at once: the eventfd stays readable until read.
void SleepUntilWoken(absl::Time deadline) {
  const int fd = g_wake_fd.load();
  int timeout_ms = -1;
  if (deadline != absl::InfiniteFuture()) {
    timeout_ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()) + 1));
  }
  pollfd p{fd, POLLIN, 0};
  if (fd < 0) {  // no eventfd (the kernel refused one): poll the flags as before
    absl::SleepFor(std::min(absl::Milliseconds(100), deadline - absl::Now()));
  } else if (::poll(&p, 1, timeout_ms) > 0) {
    uint64_t count = 0;
    (void)!::read(fd, &count, sizeof count);
  }
}
}  // namespace

void InitDaemon() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

// A signal handler may only touch lock-free atomics and write(2): it sets the flags and wakes the
// waiting thread through an eventfd, so an idle process sleeps instead of polling the flags.
int WaitForStopSignal() {
  InstallHandlers();
  while (g_signals.load() == 0) {
    if (g_restart.exchange(false)) return 0;
    SleepUntilWoken(absl::InfiniteFuture());
  }
  return g_last_signal.load();
}

bool StopSignalWithin(absl::Duration timeout) {
  InstallHandlers();
  const absl::Time deadline = absl::Now() + timeout;
  while (g_signals.load() == 0) {
    if (absl::Now() >= deadline) return false;
    SleepUntilWoken(deadline);
  }
  return true;
}

void RequestRestart(const std::string& reason) {
  {
    absl::MutexLock lock(&g_restart_mu);
    g_restart_reason = reason;
  }
  if (!g_restart.exchange(true)) spdlog::warn("restart in place requested: {}", reason);
  Wake();
}

void ClearRestartRequest() { g_restart.store(false); }

std::string RestartReason() {
  absl::MutexLock lock(&g_restart_mu);
  return g_restart_reason;
}

bool AnotherStopSignal(absl::Duration timeout) {
  const int seen = 1;
  const absl::Time deadline = absl::Now() + timeout;
  while (g_signals.load() <= seen) {
    if (absl::Now() >= deadline) return false;
    SleepUntilWoken(deadline);
  }
  return true;
}

}  // namespace assay
