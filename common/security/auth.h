// Who may call what. A token file gives each token its scopes; every RPC of every service the
// coordinator serves needs one of a fixed set of scopes, looked up by its full method name in one
// table (MethodScopes). The check runs in gRPC's auth processor, before any service code, so a
// method cannot forget it: a method missing from the table is refused for every token.
//
//   submit       Jobs.Submit, Jobs.CancelJob
//   read         Jobs.GetJob, ListJobs, WatchJob, StreamLogs
//   admin        the Admin service (ListWorkers and GetCacheStats also take read)
//   worker       WorkerLink.Connect
//   cache-read   CAS BatchReadBlobs/GetTree, ActionCache.GetActionResult, ByteStream.Read
//   cache-write  CAS BatchUpdateBlobs, ActionCache.UpdateActionResult, ByteStream.Write/QueryWriteStatus
//   execute      Execution.Execute, WaitExecution (remote execution: Bazel's actions run on the workers;
//                its inputs still need cache-write, its results cache-read)
//   FindMissingBlobs takes cache-read or cache-write; Capabilities takes any scope.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/security/auth_metadata_processor.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace assay {

enum class Scope : uint8_t { kSubmit, kRead, kAdmin, kWorker, kCacheRead, kCacheWrite, kExecute };
inline constexpr int kScopeCount = 7;

// A set of scopes as bits.
class ScopeSet {
 public:
  constexpr ScopeSet() = default;
  constexpr ScopeSet(std::initializer_list<Scope> scopes) {
    for (Scope s : scopes) bits_ |= Bit(s);
  }
  static constexpr ScopeSet All() {
    ScopeSet set;
    set.bits_ = (1u << kScopeCount) - 1;
    return set;
  }
  bool Has(Scope s) const { return (bits_ & Bit(s)) != 0; }
  bool Intersects(ScopeSet other) const { return (bits_ & other.bits_) != 0; }
  bool empty() const { return bits_ == 0; }
  void Add(Scope s) { bits_ |= Bit(s); }
  std::string ToString() const;  // "cache-read or cache-write"
  friend bool operator==(ScopeSet, ScopeSet) = default;

 private:
  static constexpr uint32_t Bit(Scope s) { return 1u << static_cast<uint32_t>(s); }
  uint32_t bits_ = 0;
};

absl::string_view ScopeName(Scope scope);
std::optional<Scope> ParseScope(absl::string_view name);

// The scopes that may call `method` ("/package.Service/Method"); nullopt for a method no token may call.
// gRPC's server reflection takes any valid token; its health service (Check, Watch) needs none.
std::optional<ScopeSet> MethodScopes(absl::string_view method);
// Every method of Assay's and REAPI's services in the table, for tests that check each service's
// methods are covered.
std::vector<std::string> KnownMethods();

struct TokenGrant {
  std::string token;
  ScopeSet scopes;
};

// Reads a token file: one token per line, then its scopes separated by commas, e.g.
//   4f1c9a7e2b6d8035c1e9f7a2b4d6e8f0  submit,read,cache-read,cache-write
// Blank lines and '#' comments are ignored; tokens are at least kMinTokenLength printable ASCII
// characters. An unknown scope, a token without scopes or a repeated token is an error naming
// FILE:LINE.
inline constexpr size_t kMinTokenLength = 16;
absl::StatusOr<std::vector<TokenGrant>> ReadTokenFile(const std::string& path);

// The token a client sends: the first field of the first token line of its token file (a file of
// the server's format works, as does a file holding only the token).
absl::StatusOr<std::string> ReadClientToken(const std::string& path);

// Checks "authorization: Bearer <token>" on every call (UNAUTHENTICATED when missing or unknown) and
// that the token's scopes allow the method (PERMISSION_DENIED naming the scope it lacks).
std::shared_ptr<grpc::AuthMetadataProcessor> MakeTokenAuthProcessor(std::vector<TokenGrant> grants);

// The processor's check, for the coordinator's other front door (the HTTP API, web/http_api.h):
// `authorization` is the header's value (nullopt: none sent). The scopes of the token presented, or
// UNAUTHENTICATED / PERMISSION_DENIED with the processor's messages.
absl::StatusOr<ScopeSet> CheckBearerToken(const std::vector<TokenGrant>& grants,
                                          std::optional<absl::string_view> authorization, absl::string_view method);

}  // namespace assay
