// The command-line flags of transport security, shared by assay, assay-worker and assay-coordinator.
#pragma once

#include <CLI/CLI.hpp>

#include "common/security/security.h"

namespace assay {

// --tls-ca, --tls-cert, --tls-key, --token-file; with env_prefix also read from
// <env_prefix>TLS_CA, <env_prefix>TLS_CERT, <env_prefix>TLS_KEY, <env_prefix>TOKEN_FILE.
inline void AddClientSecurityFlags(CLI::App& app, ClientSecurity* security, const std::string& env_prefix = "") {
  auto env = [&](CLI::Option* o, const char* name) {
    if (!env_prefix.empty()) o->envname(env_prefix + name);
  };
  env(app.add_option("--tls-ca", security->ca_file, "PEM CA certificates to trust for the coordinator (enables TLS)"),
      "TLS_CA");
  env(app.add_option("--tls-cert", security->cert_file, "client certificate for mutual TLS"), "TLS_CERT");
  env(app.add_option("--tls-key", security->key_file, "client key for mutual TLS"), "TLS_KEY");
  env(app.add_option("--token-file", security->token_file, "file whose first token is sent with every call"),
      "TOKEN_FILE");
}

inline void AddServerSecurityFlags(CLI::App& app, ServerSecurity* security) {
  app.add_option("--tls-cert", security->cert_file, "PEM certificate chain to serve TLS with");
  app.add_option("--tls-key", security->key_file, "PEM private key of --tls-cert");
  app.add_option("--tls-client-ca", security->client_ca_file, "require client certificates signed by this CA");
  app.add_option("--token-file", security->token_file, "accepted tokens, one per line; every call must carry one");
  app.add_flag("--allow-insecure-remote", security->allow_insecure_remote,
               "serve a non-loopback address without TLS and authentication (trusted networks only)");
}

}  // namespace assay
