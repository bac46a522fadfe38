#include "common/security/security.h"

#include <arpa/inet.h>

#include <grpcpp/security/auth_metadata_processor.h>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/file_util.h"
#include "common/base/log_format.h"
#include "common/security/auth.h"

namespace assay {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  auto text = ReadFile(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", what, " ", path, ": ", text.status().message()));
  if (!absl::StrContains(*text, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not PEM (no -----BEGIN line)"));
  }
  return text;
}

}  // namespace

bool IsLoopbackAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:")) return true;
  std::string host;
  if (absl::StartsWith(address, "[")) {
    size_t close = address.find(']');
    if (close == absl::string_view::npos) return false;
    host = std::string(address.substr(1, close - 1));
  } else if (std::count(address.begin(), address.end(), ':') == 1) {
    host = std::string(address.substr(0, address.find(':')));
  } else {
    host = std::string(address);
  }
  if (absl::AsciiStrToLower(host) == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

namespace {

// Sends "authorization: Bearer TOKEN" with every call, on a channel of any security level (the
// channel credentials decide where that is allowed: TLS, or loopback).
class BearerTokenPlugin final : public grpc::MetadataCredentialsPlugin {
 public:
  explicit BearerTokenPlugin(std::string token) : header_(absl::StrCat("Bearer ", token)) {}
  bool IsBlocking() const override { return false; }
  grpc::Status GetMetadata(grpc::string_ref, grpc::string_ref, const grpc::AuthContext&,
                           std::multimap<grpc::string, grpc::string>* metadata) override {
    metadata->emplace("authorization", header_);
    return grpc::Status::OK;
  }

 private:
  const std::string header_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientSecurity& security,
                                                                                absl::string_view target) {
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  std::string token;
  if (!security.token_file.empty()) {
    auto read = ReadClientToken(security.token_file);
    if (!read.ok()) return read.status();
    token = std::move(*read);
  }
  if (security.ca_file.empty()) {
    if (!security.cert_file.empty()) return absl::InvalidArgumentError("--tls-cert needs --tls-ca");
    if (token.empty()) return grpc::InsecureChannelCredentials();
    if (!IsLoopbackAddress(target)) {
      return absl::InvalidArgumentError(absl::StrCat("--token-file needs --tls-ca to reach ", target,
                                                     ": a token is sent in plaintext only to a loopback address"));
    }
    // Plaintext on loopback: gRPC's local credentials check the peer is this host.
    return grpc::CompositeChannelCredentials(
        grpc::experimental::LocalCredentials(LOCAL_TCP),
        grpc::experimental::MetadataCredentialsFromPlugin(std::make_unique<BearerTokenPlugin>(token), GRPC_SECURITY_NONE));
  }
  grpc::SslCredentialsOptions ssl;
  auto ca = ReadPem(security.ca_file, "CA file");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = std::move(*ca);
  if (!security.cert_file.empty()) {
    auto cert = ReadPem(security.cert_file, "certificate");
    if (!cert.ok()) return cert.status();
    auto key = ReadPem(security.key_file, "key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = std::move(*cert);
    ssl.pem_private_key = std::move(*key);
  }
  std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::SslCredentials(ssl);
  if (!token.empty()) {
    credentials = grpc::CompositeChannelCredentials(credentials, grpc::AccessTokenCredentials(token));
  }
  return credentials;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerSecurity& security,
                                                                             absl::string_view listen) {
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  const bool tls = !security.cert_file.empty();
  if (!tls && !security.token_file.empty() && !IsLoopbackAddress(listen)) {
    return absl::InvalidArgumentError(absl::StrCat("--token-file needs --tls-cert and --tls-key to serve ", listen,
                                                   ": tokens are accepted in plaintext on loopback only"));
  }
  if (!tls && !security.client_ca_file.empty()) return absl::InvalidArgumentError("--tls-client-ca needs --tls-cert and --tls-key");
  const bool authenticated = !security.token_file.empty() || !security.client_ca_file.empty();
  if (!IsLoopbackAddress(listen) && !(tls && authenticated)) {
    if (!security.allow_insecure_remote) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve ", listen, " (reachable from other hosts) without TLS and client authentication: give ",
          "--tls-cert/--tls-key and --token-file (or --tls-client-ca), or --allow-insecure-remote on a trusted network"));
    }
    spdlog::warn("serving {} without TLS and client authentication (--allow-insecure-remote): anyone who can reach "
                 "it can run commands on the workers",
                 listen);
  }
  std::shared_ptr<std::vector<TokenGrant>> grants;
  if (!security.token_file.empty()) {
    auto read = ReadTokenFile(security.token_file);
    if (!read.ok()) return read.status();
    grants = std::make_shared<std::vector<TokenGrant>>(std::move(*read));
  }
  if (!tls) {
    if (!grants) return grpc::InsecureServerCredentials();
    // Plaintext with tokens, loopback only: gRPC's local credentials refuse any peer not on this host
    // and, unlike plain insecure credentials, run the auth processor.
    auto local = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
    local->SetAuthMetadataProcessor(MakeTokenAuthProcessor(std::move(*grants)));
    return local;
  }

  grpc::SslServerCredentialsOptions ssl(security.client_ca_file.empty()
                                            ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                            : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  auto cert = ReadPem(security.cert_file, "certificate");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem(security.key_file, "key");
  if (!key.ok()) return key.status();
  ssl.pem_key_cert_pairs.push_back({std::move(*key), std::move(*cert)});
  if (!security.client_ca_file.empty()) {
    auto ca = ReadPem(security.client_ca_file, "client CA file");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = std::move(*ca);
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(ssl);
  if (grants) credentials->SetAuthMetadataProcessor(MakeTokenAuthProcessor(std::move(*grants)));
  return credentials;
}

}  // namespace assay
