// Transport security for every connection to a coordinator: TLS (optionally mutual) and bearer
// tokens with scopes (auth.h). Policy: plaintext only on loopback; a coordinator reachable from
// other hosts must serve TLS and authenticate its clients (a token or a client certificate) unless
// the operator says --allow-insecure-remote. Tokens travel over TLS, or in plaintext on loopback
// only (where nothing leaves the host; Bazel 4.2.3 can only speak plaintext gRPC).
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
  std::string token_file;  // the first token in this file is sent with every call (TLS, or a loopback target)
};

// Credentials for reaching `target` (host:port).
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(const ClientSecurity& security,
                                                                                absl::string_view target);

// What the coordinator serves with. All empty: plaintext, loopback only.
struct ServerSecurity {
  std::string cert_file;       // PEM certificate chain; with key_file enables TLS
  std::string key_file;
  std::string client_ca_file;  // when set, clients must present a certificate signed by this CA
  std::string token_file;      // accepted tokens and their scopes (auth.h); needs TLS beyond loopback
  bool allow_insecure_remote = false;  // serve a non-loopback address without TLS/authentication
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(const ServerSecurity& security,
                                                                             absl::string_view listen);

// True for addresses only this host can reach: 127.0.0.0/8, ::1, localhost, unix sockets.
bool IsLoopbackAddress(absl::string_view address);


}  // namespace assay
