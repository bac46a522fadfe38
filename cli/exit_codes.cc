#include "cli/exit_codes.h"

namespace assay::cli {

ExitCode ExitCodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kOk;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return kUnavailable;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return kUnauthenticated;
    // Not the user's input: the server (or its store) could not do what was asked.
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kUnimplemented:
      return kServerFailed;
    default:  // InvalidArgument, NotFound, FailedPrecondition, OutOfRange, AlreadyExists, Aborted, Cancelled
      return kBadInput;
  }
}

const char* ExitCodeHint(ExitCode code) {
  switch (code) {
    case kUnavailable:
      return "(is the coordinator running? set --coordinator or ASSAY_COORDINATOR; if it serves TLS, "
             "--tls-ca or ASSAY_TLS_CA)";
    case kUnauthenticated:
      return "(the coordinator wants a token: --token-file or ASSAY_TOKEN_FILE)";
    case kServerFailed:
      return "(the farm failed on its side, not because of this command's input: see the message and the "
             "coordinator's log)";
    default:
      return "";
  }
}

}  // namespace assay::cli
