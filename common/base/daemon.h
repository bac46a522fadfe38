// Start-up and shutdown shared by the long-running processes (assay-coordinator, assay-worker).
#pragma once

#include <string>

#include "absl/time/time.h"

namespace assay {

// Debian's abseil is built with mutex deadlock detection on, which makes every lock (gRPC's
// included) update a global lock graph. Turned off here; lock order is checked by TSan in the suite.
void InitDaemon();

// Returns once SIGINT or SIGTERM has arrived (handlers are installed by the call), with its number;
// or 0 once a part of the process asked for a restart in place (RequestRestart).
int WaitForStopSignal();
// Asks the process to stop its server and start it again on the same data and address (main's loop
// does it; see coordinator/main.cc): for a state only a fresh start clears. Thread-safe, any thread.
void RequestRestart(const std::string& reason);
// The reason of the last restart asked for (empty: none).
std::string RestartReason();
// Forgets a restart asked for by the server that has just stopped (call before starting the next).
void ClearRestartRequest();
// True if SIGINT or SIGTERM arrives within `timeout` (or has arrived); installs the handlers.
bool StopSignalWithin(absl::Duration timeout);
// True if another SIGINT or SIGTERM arrives within `timeout` (after WaitForStopSignal).
bool AnotherStopSignal(absl::Duration timeout);

}  // namespace assay
