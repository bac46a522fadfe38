#include "common/base/daemon.h"

#include <algorithm>
#include <atomic>
#include <csignal>

#include <spdlog/spdlog.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace assay {
namespace {
std::atomic<int> g_signals{0};   // how many arrived
std::atomic<int> g_last_signal{0};
std::atomic<bool> g_restart{false};
absl::Mutex g_restart_mu;
std::string g_restart_reason ABSL_GUARDED_BY(g_restart_mu);
void OnSignal(int signal) {
  g_last_signal = signal;
  ++g_signals;
}
}  // namespace

void InitDaemon() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

// A signal handler may only touch lock-free atomics: these are polled, 10 times a second.
int WaitForStopSignal() {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (g_signals.load() == 0) {
    if (g_restart.exchange(false)) return 0;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return g_last_signal.load();
}

bool StopSignalWithin(absl::Duration timeout) {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const absl::Time deadline = absl::Now() + timeout;
  while (g_signals.load() == 0) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(std::min(absl::Milliseconds(100), deadline - absl::Now()));
  }
  return true;
}

void RequestRestart(const std::string& reason) {
  {
    absl::MutexLock lock(&g_restart_mu);
    g_restart_reason = reason;
  }
  if (!g_restart.exchange(true)) spdlog::warn("restart in place requested: {}", reason);
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
    absl::SleepFor(std::min(absl::Milliseconds(100), deadline - absl::Now()));
  }
  return true;
}

}  // namespace assay
