#include "common/security/auth.h"

#include <openssl/crypto.h>

#include <array>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/file_util.h"

namespace assay {
namespace {

constexpr std::array<absl::string_view, kScopeCount> kScopeNames = {"submit",  "read",       "admin",
                                                                    "worker",  "cache-read", "cache-write",
                                                                    "execute"};

const absl::flat_hash_map<std::string, ScopeSet>& MethodTable() {
  static const auto* table = [] {
    const std::string reapi = "/build.bazel.remote.execution.v2.";
    const ScopeSet read_cache{Scope::kCacheRead}, write_cache{Scope::kCacheWrite};
    return new absl::flat_hash_map<std::string, ScopeSet>{
        {"/assay.v1.Jobs/Submit", {Scope::kSubmit}},
        {"/assay.v1.Jobs/CancelJob", {Scope::kSubmit}},
        {"/assay.v1.Jobs/GetJob", {Scope::kRead}},
        {"/assay.v1.Jobs/ListJobs", {Scope::kRead}},
        {"/assay.v1.Jobs/WatchJob", {Scope::kRead}},
        {"/assay.v1.Jobs/StreamLogs", {Scope::kRead}},
        {"/assay.v1.Jobs/ListStepCaches", {Scope::kRead}},
        {"/assay.v1.Jobs/ListNotifications", {Scope::kRead}},
        {"/assay.v1.Jobs/DeleteStepCaches", {Scope::kSubmit}},
        {"/assay.v1.Admin/ListWorkers", {Scope::kRead, Scope::kAdmin}},
        {"/assay.v1.Admin/GetCacheStats", {Scope::kRead, Scope::kAdmin}},
        {"/assay.v1.Admin/SetWorkerState", {Scope::kAdmin}},
        {"/assay.v1.WorkerLink/Connect", {Scope::kWorker}},
        {reapi + "Capabilities/GetCapabilities", ScopeSet::All()},
        {reapi + "Execution/Execute", {Scope::kExecute}},
        {reapi + "Execution/WaitExecution", {Scope::kExecute}},
        {reapi + "ContentAddressableStorage/FindMissingBlobs", {Scope::kCacheRead, Scope::kCacheWrite}},
        {reapi + "ContentAddressableStorage/BatchUpdateBlobs", write_cache},
        {reapi + "ContentAddressableStorage/BatchReadBlobs", read_cache},
        {reapi + "ContentAddressableStorage/GetTree", read_cache},
        {reapi + "ActionCache/GetActionResult", read_cache},
        {reapi + "ActionCache/UpdateActionResult", write_cache},
        {"/google.bytestream.ByteStream/Read", read_cache},
        {"/google.bytestream.ByteStream/Write", write_cache},
        {"/google.bytestream.ByteStream/QueryWriteStatus", write_cache},
        // Requests to the bucket signed for one blob each: reading and writing blobs, as ByteStream.
        {"/assay.v1.BlobAccess/GetDownloadRequests", read_cache},
        {"/assay.v1.BlobAccess/GetUploadRequests", write_cache},
        {"/assay.v1.BlobAccess/CommitUploads", write_cache},
        {"/assay.v1.Dashboard/GetDashboard", ScopeSet::All()},
    };
  }();
  return *table;
}

// gRPC's health service answers without a token (probes and load balancers carry none); it tells
// only whether the server serves.
bool IsOpenMethod(absl::string_view method) {
  return method == "/grpc.health.v1.Health/Check" || method == "/grpc.health.v1.Health/Watch";
}

// Services of gRPC itself that any valid token may call (they describe the API, nothing of the farm).
std::optional<ScopeSet> InfrastructureScopes(absl::string_view method) {
  if (method == "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo") return ScopeSet::All();
  return std::nullopt;
}

// Checks every call's bearer token and the scopes its method needs. Non-blocking: it runs on
// gRPC's own threads and touches nothing but its immutable table of grants.
class TokenAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit TokenAuthProcessor(std::vector<TokenGrant> grants) : grants_(std::move(grants)) {}
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext*, OutputMetadata* consumed,
                       OutputMetadata*) override {
    auto path_it = auth_metadata.find(":path");
    const absl::string_view method =
        path_it == auth_metadata.end() ? "" : absl::string_view(path_it->second.data(), path_it->second.size());
    if (IsOpenMethod(method)) return grpc::Status::OK;
    auto it = auth_metadata.find("authorization");
    std::optional<absl::string_view> value;
    if (it != auth_metadata.end()) value = absl::string_view(it->second.data(), it->second.size());
    absl::StatusOr<ScopeSet> granted = CheckBearerToken(grants_, value, method);
    if (!granted.ok()) {
      return grpc::Status(static_cast<grpc::StatusCode>(granted.status().code()),
                          std::string(granted.status().message()));
    }
    consumed->emplace("authorization", std::string(*value));
    return grpc::Status::OK;
  }

 private:
  const std::vector<TokenGrant> grants_;
};

}  // namespace

absl::string_view ScopeName(Scope scope) { return kScopeNames[static_cast<size_t>(scope)]; }

std::optional<Scope> ParseScope(absl::string_view name) {
  for (size_t i = 0; i < kScopeNames.size(); ++i) {
    if (kScopeNames[i] == name) return static_cast<Scope>(i);
  }
  return std::nullopt;
}

std::string ScopeSet::ToString() const {
  if (*this == All()) return "any";
  std::vector<absl::string_view> names;
  for (int i = 0; i < kScopeCount; ++i) {
    if (Has(static_cast<Scope>(i))) names.push_back(ScopeName(static_cast<Scope>(i)));
  }
  return names.empty() ? "none" : absl::StrJoin(names, " or ");
}

std::optional<ScopeSet> MethodScopes(absl::string_view method) {
  auto it = MethodTable().find(method);
  if (it == MethodTable().end()) return InfrastructureScopes(method);
  return it->second;
}

std::vector<std::string> KnownMethods() {
  std::vector<std::string> out;
  for (const auto& [method, scopes] : MethodTable()) out.push_back(method);
  return out;
}

absl::StatusOr<std::vector<TokenGrant>> ReadTokenFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("cannot read token file ", path, ": ", text.status().message()));
  std::vector<TokenGrant> grants;
  absl::flat_hash_set<std::string> seen;
  const std::string known = absl::StrJoin(kScopeNames, ", ");
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    const std::string where = absl::StrCat(path, ":", line_number, ": ");
    std::vector<absl::string_view> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    absl::string_view token = fields[0];
    if (token.size() < kMinTokenLength) {
      return absl::InvalidArgumentError(absl::StrCat(where, "token is shorter than ", kMinTokenLength,
                                                     " characters (generate one with: openssl rand -hex 32)"));
    }
    if (std::any_of(token.begin(), token.end(), [](char c) { return c < 0x21 || c > 0x7e; })) {
      return absl::InvalidArgumentError(absl::StrCat(where, "token has non-ASCII characters"));
    }
    if (fields.size() < 2) {
      return absl::InvalidArgumentError(absl::StrCat(where, "token has no scopes; list them after it, separated by ",
                                                     "commas (scopes: ", known, ")"));
    }
    if (fields.size() > 2) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, "unexpected '", fields[2], "': scopes are separated by commas, without spaces"));
    }
    TokenGrant grant{std::string(token), {}};
    for (absl::string_view name : absl::StrSplit(fields[1], ',')) {
      std::optional<Scope> scope = ParseScope(name);
      if (!scope.has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(where, "unknown scope '", name, "' (scopes: ", known, ")"));
      }
      grant.scopes.Add(*scope);
    }
    if (!seen.insert(grant.token).second) {
      return absl::InvalidArgumentError(absl::StrCat(where, "this token is listed twice"));
    }
    grants.push_back(std::move(grant));
  }
  if (grants.empty()) return absl::InvalidArgumentError(absl::StrCat("token file ", path, " has no token"));
  return grants;
}

absl::StatusOr<std::string> ReadClientToken(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("cannot read token file ", path, ": ", text.status().message()));
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    absl::string_view token = line.substr(0, line.find_first_of(" \t"));
    if (token.size() < kMinTokenLength || std::any_of(token.begin(), token.end(), [](char c) { return c < 0x21 || c > 0x7e; })) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": not a token (at least ", kMinTokenLength,
                                                     " printable ASCII characters)"));
    }
    return std::string(token);
  }
  return absl::InvalidArgumentError(absl::StrCat("token file ", path, " has no token"));
}

absl::StatusOr<ScopeSet> CheckBearerToken(const std::vector<TokenGrant>& grants,
                                          std::optional<absl::string_view> authorization, absl::string_view method) {
  if (!authorization.has_value()) {
    return absl::UnauthenticatedError(
        "this coordinator requires a token (assay: --token-file or ASSAY_TOKEN_FILE; Bazel: "
        "--remote_header=authorization=Bearer TOKEN)");
  }
  constexpr absl::string_view kBearer = "Bearer ";
  const TokenGrant* grant = nullptr;
  if (absl::StartsWith(*authorization, kBearer)) {
    const absl::string_view presented = authorization->substr(kBearer.size());
    // Constant time per candidate; every candidate is compared.
    for (const TokenGrant& g : grants) {
      bool same = presented.size() == g.token.size() &&
                  CRYPTO_memcmp(presented.data(), g.token.data(), g.token.size()) == 0;
      if (same) grant = &g;
    }
  }
  if (grant == nullptr) return absl::UnauthenticatedError("the token presented is not accepted");
  std::optional<ScopeSet> needed = MethodScopes(method);
  if (!needed.has_value()) {
    return absl::PermissionDeniedError(absl::StrCat("no scope allows calling ", method.empty() ? "this method" : method));
  }
  if (!grant->scopes.Intersects(*needed)) {
    return absl::PermissionDeniedError(absl::StrCat("the token lacks the scope ", needed->ToString(), " that ",
                                                    method.substr(1), " needs (it has: ", grant->scopes.ToString(),
                                                    ")"));
  }
  return grant->scopes;
}

std::shared_ptr<grpc::AuthMetadataProcessor> MakeTokenAuthProcessor(std::vector<TokenGrant> grants) {
  return std::make_shared<TokenAuthProcessor>(std::move(grants));
}

}  // namespace assay
