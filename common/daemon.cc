#include "common/daemon.h"

#include <atomic>
#include <csignal>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace assay {
namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

void InitDaemon() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

void WaitForStopSignal() {
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop.load()) absl::SleepFor(absl::Milliseconds(100));
}

}  // namespace assay
