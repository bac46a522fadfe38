// Transport security for every connection to a coordinator: TLS (optionally mutual) and bearer
// tokens. Policy: plaintext only on loopback; a coordinator reachable from other hosts must serve
// TLS and authenticate its clients (a token or a client certificate) unless the operator says
// --allow-insecure-remote. Tokens never travel over plaintext.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace assay {

// What a client (worker, CLI) uses to reach a coordinator. All empty: plaintext.
struct ClientSecurity {
  std::string ca_file;     // PEM certificates to trust for the coordinator; enables TLS
  std::string cert_file;   // client certificate chain for mutual TLS (with key_file)
  std::string key_file;
  std::string token_file;  // the first token in this file is sent with every call (needs TLS)
};

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientSecurity& security);

// What the coordinator serves with. All empty: plaintext, loopback only.
struct ServerSecurity {
  std::string cert_file;       // PEM certificate chain; with key_file enables TLS
  std::string key_file;
  std::string client_ca_file;  // when set, clients must present a certificate signed by this CA
  std::string token_file;      // accepted tokens, one per line ('#' starts a comment); needs TLS
  bool allow_insecure_remote = false;  // serve a non-loopback address without TLS/authentication
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerSecurity& security,
                                                                             absl::string_view listen);

// True for addresses only this host can reach: 127.0.0.0/8, ::1, localhost, unix sockets.
bool IsLoopbackAddress(absl::string_view address);

// Reads a token file: one token per line, blank lines and '#' comments ignored, each at least
// kMinTokenLength characters. Errors name the file and line.
inline constexpr size_t kMinTokenLength = 16;
absl::StatusOr<std::vector<std::string>> ReadTokenFile(const std::string& path);

}  // namespace assay
