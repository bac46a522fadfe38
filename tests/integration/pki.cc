#include "tests/integration/pki.h"

#include <gtest/gtest.h>

#include "common/base/file_util.h"
#include "tests/integration/process.h"

namespace assay::testing {
namespace fs = std::filesystem;

TestPki::TestPki(fs::path dir, const std::vector<std::string>& server_ips) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
  std::string names = "subjectAltName=IP:127.0.0.1,DNS:localhost";
  for (const std::string& ip : server_ips) names += ",IP:" + ip;
  EXPECT_TRUE(WriteFile(dir_ / "server.ext", names + "\n").ok());
  EXPECT_TRUE(WriteFile(dir_ / "client.ext", "extendedKeyUsage=clientAuth\n").ok());
  Openssl({"ecparam", "-name", "prime256v1", "-out", Path("params.pem")});
  for (const std::string ca : {"ca", "other-ca"}) {
    Openssl({"req", "-x509", "-newkey", "ec:" + Path("params.pem"), "-nodes", "-keyout", Path(ca + ".key"), "-out",
             Path(ca + ".pem"), "-days", "2", "-subj", "/CN=assay test " + ca});
  }
  Issue("ca", "server", "server.ext");
  Issue("ca", "client", "client.ext");
  Issue("other-ca", "other-client", "client.ext");
  EXPECT_TRUE(fs::exists(dir_ / "server.pem") && fs::exists(dir_ / "other-client.pem")) << "openssl failed";
}

void TestPki::Issue(const std::string& ca, const std::string& name, const std::string& ext) {
  Openssl({"req", "-newkey", "ec:" + Path("params.pem"), "-nodes", "-keyout", Path(name + ".key"), "-out",
           Path(name + ".csr"), "-subj", "/CN=" + name});
  Openssl({"x509", "-req", "-in", Path(name + ".csr"), "-CA", Path(ca + ".pem"), "-CAkey", Path(ca + ".key"),
           "-CAcreateserial", "-out", Path(name + ".pem"), "-days", "2", "-extfile", Path(ext)});
}

void TestPki::Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "/usr/bin/openssl");
  RunResult r = RunCommand(args, absl::Seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace assay::testing
