// REAPI Execute's edge: what a client (Bazel) asks to run, checked against the store before it
// becomes a task. The Action and Command must be in the CAS and parse; every blob of the input tree
// must be there (else FAILED_PRECONDITION with a google.rpc.PreconditionFailure whose violations are
// MISSING `blobs/{hash}/{size}`, which makes Bazel upload them again and retry); the timeout must be
// within the server's maximum. Reads the CAS, touches no JobManager state: no lock held.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "build/bazel/remote/execution/v2/remote_execution.pb.h"
#include "common/cas/blob_store.h"
#include "common/digest/digest.h"

namespace assay {

// An Execute, checked.
struct RemoteAction {
  std::string instance_name;
  Digest action_digest;
  reapi::Action action;
  reapi::Command command;
  // The platform's properties (Action.platform, else Command.platform: Bazel 4.2 puts them there) as
  // worker labels, "name=value": a worker must offer every one of them, exactly.
  std::vector<std::string> required_labels;
  bool skip_cache_lookup = false;
  int32_t priority = 0;               // ExecutionPolicy.priority: lower runs first (REAPI)
  std::string invocation_id;          // RequestMetadata.tool_invocation_id: one per Bazel command
  std::string tool;                   // "bazel 4.2.3"
  std::string mnemonic, target;       // RequestMetadata's action_mnemonic and target_id, when sent
};

// The type URL of the PreconditionFailure a missing-blobs status carries as its payload.
inline constexpr const char* kPreconditionFailureType = "type.googleapis.com/google.rpc.PreconditionFailure";

// FAILED_PRECONDITION naming the missing blobs, with the PreconditionFailure payload (MISSING
// violations, subject `blobs/{hash}/{size}`) that the gRPC edge turns into the status details;
// `then` says what the client does about it.
absl::Status MissingBlobsError(const std::vector<Digest>& missing, absl::string_view what,
                               absl::string_view then = "upload them and Execute again");

class ExecuteIntake {
 public:
  ExecuteIntake(BlobStore* blobs, absl::Duration max_timeout) : blobs_(blobs), max_timeout_(max_timeout) {}

  absl::StatusOr<RemoteAction> Accept(const reapi::ExecuteRequest& request,
                                      const reapi::RequestMetadata& metadata) const;
  // The blobs of the action's input tree (and its Command) not in the CAS now; a missing directory
  // hides what is below it, so it is named alone.
  absl::StatusOr<std::vector<Digest>> MissingInputs(const reapi::Action& action) const;
  // The same for the action stored under `action_digest` (the action itself, if it is gone).
  absl::StatusOr<std::vector<Digest>> MissingInputsOf(const Digest& action_digest) const;
  absl::Duration max_timeout() const { return max_timeout_; }

 private:
  BlobStore* const blobs_;
  const absl::Duration max_timeout_;
};

}  // namespace assay
