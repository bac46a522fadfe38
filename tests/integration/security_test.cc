// TLS and tokens with the real binaries on loopback: a job runs end to end over TLS with a token;
// calls without the token, with a wrong one, or in plaintext are refused with a clear message and
// change nothing; mutual TLS turns away clients without a certificate; and the coordinator refuses
// to expose plaintext beyond loopback before it touches its database.
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/integration/farm.h"
#include "tests/integration/pki.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = std::make_unique<TestPki>(farm_.dir() / "pki");
    ASSERT_TRUE(WriteFile(P("tokens"), "# accepted tokens\n4f1c9a7e2b6d8035c1e9f7a2b4d6e8f0 "
                                       "submit,read,admin,worker,cache-read,cache-write\n")
                    .ok());
    ASSERT_TRUE(WriteFile(P("good-token"), "4f1c9a7e2b6d8035c1e9f7a2b4d6e8f0\n").ok());
    ASSERT_TRUE(WriteFile(P("wrong-token"), "00000000000000000000000000000000\n").ok());
  }

  std::string P(const std::string& name) const { return pki_->Path(name); }

  // TLS trusting the test CA, with this token file when given.
  ClientSecurity Client(const std::string& token_file = "") const {
    ClientSecurity c;
    c.ca_file = P("ca.pem");
    c.token_file = token_file;
    return c;
  }

  // Runs the CLI with exactly these security flags (not the farm's).
  RunResult CliWith(const std::vector<std::string>& security, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinaryPath("assay"), "--coordinator", farm_.address()};
    argv.insert(argv.end(), security.begin(), security.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, absl::Seconds(60));
  }

  int JobCount() {
    assay::v1::ListJobsRequest request;
    request.set_limit(100);
    assay::v1::ListJobsResponse response;
    grpc::ClientContext context;
    grpc::Status status = farm_.jobs()->ListJobs(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.jobs_size();
  }

  Farm farm_;
  std::unique_ptr<TestPki> pki_;
};

TEST_F(SecurityTest, JobRunsOverTlsWithAToken) {
  farm_.StartCoordinator({"--tls-cert", P("server.pem"), "--tls-key", P("server.key"), "--token-file", P("tokens")});
  farm_.UseClientSecurity(Client(P("good-token")));
  farm_.StartWorker("w1");
  auto tree = farm_.WriteTree("hello", {{"assay.yaml", "steps:\n  - id: greet\n    run: echo hello over tls\n"}});
  RunResult r = farm_.Cli({"submit", tree.string(), "--wait", "--logs"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "hello over tls")) << r.out;
  EXPECT_EQ(JobCount(), 1);
}

TEST_F(SecurityTest, MissingWrongOrPlaintextCredentialsAreRefusedAndChangeNothing) {
  farm_.StartCoordinator({"--tls-cert", P("server.pem"), "--tls-key", P("server.key"), "--token-file", P("tokens")});
  farm_.UseClientSecurity(Client(P("good-token")));
  auto tree = farm_.WriteTree("t", {{"assay.yaml", "steps:\n  - id: s\n    run: 'true'\n"}});

  RunResult no_token = CliWith({"--tls-ca", P("ca.pem")}, {"submit", tree.string()});
  EXPECT_EQ(no_token.exit_code, 4) << no_token.err;
  EXPECT_TRUE(absl::StrContains(no_token.err, "requires a token")) << no_token.err;

  RunResult wrong = CliWith({"--tls-ca", P("ca.pem"), "--token-file", P("wrong-token")}, {"submit", tree.string()});
  EXPECT_EQ(wrong.exit_code, 4) << wrong.err;
  EXPECT_TRUE(absl::StrContains(wrong.err, "not accepted")) << wrong.err;

  RunResult plaintext = CliWith({"--retry-timeout", "1"}, {"submit", tree.string()});
  EXPECT_EQ(plaintext.exit_code, 3) << plaintext.err;
  EXPECT_TRUE(absl::StrContains(plaintext.err, "--tls-ca")) << plaintext.err;

  // A token is sent in plaintext to loopback only; this refusal comes before any connection.
  RunResult token_in_clear = RunCommand(
      {BinaryPath("assay"), "--coordinator", "build-farm.invalid:7171", "--token-file", P("good-token"), "jobs"},
      absl::Seconds(60));
  EXPECT_EQ(token_in_clear.exit_code, 2) << token_in_clear.err;
  EXPECT_TRUE(absl::StrContains(token_in_clear.err, "plaintext only to a loopback address")) << token_in_clear.err;

  EXPECT_EQ(JobCount(), 0) << "a refused call must not create a job";

  // A worker with a wrong token is never admitted.
  std::vector<std::string> argv = {BinaryPath("assay-worker"), "--coordinator", farm_.address(), "--id", "intruder",
                                   "--work-dir", (farm_.dir() / "work-intruder").string(), "--tls-ca", P("ca.pem"),
                                   "--token-file", P("wrong-token")};
  const fs::path log = farm_.dir() / "worker-intruder.log";
  Process intruder(argv, log);
  EXPECT_TRUE(WaitFor([&] { return absl::StrContains(ReadFile(log).value_or(""), "not accepted"); }, absl::Seconds(30)))
      << ReadFile(log).value_or("");
  EXPECT_TRUE(farm_.Workers().empty());
  intruder.Kill(SIGTERM);
}

TEST_F(SecurityTest, MutualTlsRequiresAClientCertificate) {
  farm_.StartCoordinator({"--tls-cert", P("server.pem"), "--tls-key", P("server.key"), "--tls-client-ca", P("ca.pem")});
  ClientSecurity client = Client();
  client.cert_file = P("client.pem");
  client.key_file = P("client.key");
  farm_.UseClientSecurity(client);
  RunResult without = CliWith({"--tls-ca", P("ca.pem"), "--retry-timeout", "1"}, {"jobs"});
  EXPECT_EQ(without.exit_code, 3) << without.err;
  RunResult with = farm_.Cli({"jobs"});
  EXPECT_EQ(with.exit_code, 0) << with.err;
  farm_.StartWorker("w1");
  EXPECT_EQ(farm_.Workers().size(), 1u);
}

TEST_F(SecurityTest, CoordinatorRefusesToExposePlaintextBeforeTouchingItsData) {
  const fs::path data = farm_.dir() / "exposed-data";
  for (const auto& extra : std::vector<std::vector<std::string>>{
           {"--listen", "0.0.0.0:0"},
           {"--listen", "0.0.0.0:0", "--tls-cert", P("server.pem"), "--tls-key", P("server.key")},  // no client auth
           {"--listen", "0.0.0.0:0", "--token-file", P("tokens"), "--allow-insecure-remote"},       // token in clear
       }) {
    std::vector<std::string> argv = {BinaryPath("assay-coordinator"), "--data", data.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    RunResult r = RunCommand(argv, absl::Seconds(30));
    EXPECT_NE(r.exit_code, 0) << absl::StrJoin(extra, " ");
    EXPECT_TRUE(absl::StrContains(r.err + r.out, "refusing to serve") ||
                absl::StrContains(r.err + r.out, "accepted in plaintext on loopback only"))
        << r.err << r.out;
    EXPECT_FALSE(fs::exists(data)) << "the database must not be created";
  }
  // A token file with an unknown scope stops the start, naming the file and line.
  ASSERT_TRUE(WriteFile(P("typo-tokens"), "# ci\n4f1c9a7e2b6d8035c1e9f7a2b4d6e8f0 submit,cache-wirte\n").ok());
  RunResult typo = RunCommand({BinaryPath("assay-coordinator"), "--data", data.string(), "--listen", "127.0.0.1:0",
                               "--token-file", P("typo-tokens")},
                              absl::Seconds(30));
  EXPECT_NE(typo.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(typo.err + typo.out, P("typo-tokens") + ":2: unknown scope 'cache-wirte'"))
      << typo.err << typo.out;
  EXPECT_FALSE(fs::exists(data)) << "the database must not be created";
}

}  // namespace
}  // namespace assay::testing
