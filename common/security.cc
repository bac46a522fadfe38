#include "common/security.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include <grpcpp/security/auth_metadata_processor.h>
#include <spdlog/spdlog.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/file_util.h"
#include "common/log_format.h"

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

// Checks "authorization: Bearer <token>" on every call against the accepted tokens, in constant
// time per candidate. Runs inside gRPC before any service sees the call.
class TokenAuthProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit TokenAuthProcessor(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext*, OutputMetadata* consumed,
                       OutputMetadata*) override {
    auto it = auth_metadata.find("authorization");
    if (it == auth_metadata.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "this coordinator requires a token (assay: --token-file or ASSAY_TOKEN_FILE)");
    }
    const absl::string_view value(it->second.data(), it->second.size());
    constexpr absl::string_view kBearer = "Bearer ";
    bool ok = false;
    if (absl::StartsWith(value, kBearer)) {
      const absl::string_view presented = value.substr(kBearer.size());
      for (const std::string& token : tokens_) {
        ok |= presented.size() == token.size() && CRYPTO_memcmp(presented.data(), token.data(), token.size()) == 0;
      }
    }
    if (!ok) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "the token presented is not accepted");
    consumed->emplace("authorization", std::string(value));
    return grpc::Status::OK;
  }

 private:
  std::vector<std::string> tokens_;
};

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

absl::StatusOr<std::vector<std::string>> ReadTokenFile(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("cannot read token file ", path, ": ", text.status().message()));
  std::vector<std::string> tokens;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "#")) continue;
    if (line.size() < kMinTokenLength) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": token is shorter than ", kMinTokenLength,
                                                     " characters (generate one with: openssl rand -hex 32)"));
    }
    if (std::any_of(line.begin(), line.end(), [](char c) { return c < 0x21 || c > 0x7e; })) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", line_number, ": token has spaces or non-ASCII characters"));
    }
    tokens.emplace_back(line);
  }
  if (tokens.empty()) return absl::InvalidArgumentError(absl::StrCat("token file ", path, " has no token"));
  return tokens;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientSecurity& security) {
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  if (security.ca_file.empty()) {
    if (!security.token_file.empty()) {
      return absl::InvalidArgumentError("--token-file needs --tls-ca: a token is never sent over plaintext");
    }
    if (!security.cert_file.empty()) return absl::InvalidArgumentError("--tls-cert needs --tls-ca");
    return grpc::InsecureChannelCredentials();
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
  if (!security.token_file.empty()) {
    auto tokens = ReadTokenFile(security.token_file);
    if (!tokens.ok()) return tokens.status();
    credentials = grpc::CompositeChannelCredentials(credentials, grpc::AccessTokenCredentials(tokens->front()));
  }
  return credentials;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerSecurity& security,
                                                                             absl::string_view listen) {
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  }
  const bool tls = !security.cert_file.empty();
  if (!tls && !security.token_file.empty()) {
    return absl::InvalidArgumentError("--token-file needs --tls-cert and --tls-key: tokens are never accepted over plaintext");
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
  if (!tls) return grpc::InsecureServerCredentials();

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
  if (!security.token_file.empty()) {
    auto tokens = ReadTokenFile(security.token_file);
    if (!tokens.ok()) return tokens.status();
    credentials->SetAuthMetadataProcessor(std::make_shared<TokenAuthProcessor>(std::move(*tokens)));
  }
  return credentials;
}

}  // namespace assay
