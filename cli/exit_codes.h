// Exit codes of the `assay` command, and which one a failure gets (README "Exit codes", docs/ci.md).
#pragma once

#include "absl/status/status.h"

namespace assay::cli {

enum ExitCode : int {
  kOk = 0,
  kJobFailed = 1,
  kBadInput = 2,        // the pipeline file, a flag or a path
  kUnavailable = 3,     // the coordinator cannot be reached
  kUnauthenticated = 4, // the coordinator refused the credentials
  kServerFailed = 5,    // the farm failed on its side: a full disk, an unavailable store, an internal error
};

// The exit code for a failed command's status (kOk for OK).
ExitCode ExitCodeFor(const absl::Status& status);

// What to tell the user besides the message ("" if nothing).
const char* ExitCodeHint(ExitCode code);

}  // namespace assay::cli
