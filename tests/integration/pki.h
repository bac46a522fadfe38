// A throwaway PKI for TLS tests, made with the openssl command: a CA, a server certificate for
// 127.0.0.1/localhost and a client certificate it signed, and a second CA ("other") with a client
// certificate of its own, which the first CA's servers must not accept.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace assay::testing {

class TestPki {
 public:
  // Creates everything under `dir`; fails the current test if openssl fails. The server certificate
  // is for 127.0.0.1, localhost and `server_ips`.
  explicit TestPki(std::filesystem::path dir, const std::vector<std::string>& server_ips = {});
  // ca.pem, server.pem/.key, client.pem/.key, other-ca.pem, other-client.pem/.key
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  void Openssl(std::vector<std::string> args);
  void Issue(const std::string& ca, const std::string& name, const std::string& ext);
  std::filesystem::path dir_;
};

}  // namespace assay::testing
