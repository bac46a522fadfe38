// Start-up and shutdown shared by the long-running processes (assay-coordinator, assay-worker).
#pragma once

#include "absl/time/time.h"

namespace assay {

// Debian's abseil is built with mutex deadlock detection on, which makes every lock (gRPC's
// included) update a global lock graph. Turned off here; lock order is checked by TSan in the suite.
void InitDaemon();

// Returns once SIGINT or SIGTERM has arrived (handlers are installed by the call), with its number.
int WaitForStopSignal();
// True if another SIGINT or SIGTERM arrives within `timeout` (after WaitForStopSignal).
bool AnotherStopSignal(absl::Duration timeout);

}  // namespace assay
