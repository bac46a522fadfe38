// Transport-security policy: which addresses count as loopback, token files, and the combinations
// of flags the coordinator and clients refuse before opening any socket.
#include "common/security/security.h"

#include <set>

#include "assay/v1/admin.grpc.pb.h"
#include "assay/v1/blob_access.grpc.pb.h"
#include "assay/v1/dashboard.grpc.pb.h"
#include "assay/v1/jobs.grpc.pb.h"
#include "assay/v1/worker_link.grpc.pb.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/security/auth.h"
#include "google/bytestream/bytestream.grpc.pb.h"

#include <gtest/gtest.h>

#include "common/base/file_util.h"

namespace assay {
namespace {

TEST(SecurityTest, LoopbackAddresses) {
  for (const char* a : {"127.0.0.1:7171", "127.0.0.1:0", "127.1.2.3:80", "localhost:7171", "LOCALHOST:1", "[::1]:7171",
                        "unix:/run/assay.sock", "unix-abstract:assay"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a : {"0.0.0.0:7171", ":7171", "[::]:7171", "10.0.0.5:7171", "192.168.1.2:1", "coord.example:7171",
                        "[2001:db8::1]:7171", "128.0.0.1:7171", "", "[::1"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

class TokenFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& content) {
    std::string path = (dir_.path() / "tokens").string();
    EXPECT_TRUE(WriteFile(path, content).ok());
    return path;
  }
  ScopedTempDir dir_{"assay-security"};
};

TEST_F(TokenFileTest, ReadsTokensAndTheirScopesSkippingCommentsAndBlankLines) {
  auto tokens = Write("# ci tokens\n\n  0123456789abcdef0123 submit,read  \nfedcba9876543210fedc\tcache-read\n");
  auto read = ReadTokenFile(tokens);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].token, "0123456789abcdef0123");
  EXPECT_EQ((*read)[0].scopes, (ScopeSet{Scope::kSubmit, Scope::kRead}));
  EXPECT_EQ((*read)[1].token, "fedcba9876543210fedc");
  EXPECT_EQ((*read)[1].scopes, ScopeSet{Scope::kCacheRead});
  // A client takes the first token of such a file, or of a file holding only a token.
  EXPECT_EQ(ReadClientToken(tokens).value(), "0123456789abcdef0123");
  EXPECT_EQ(ReadClientToken(Write("fedcba9876543210fedc\n")).value(), "fedcba9876543210fedc");
}

TEST_F(TokenFileTest, BadLinesNameFileAndLine) {
  struct Case {
    std::string content, expected;
  };
  for (const Case& c : std::vector<Case>{
           {"# comment\nshort read\n", "tokens:2: token is shorter than 16"},
           {"0123456789abcdef0123 read,deploy\n", "tokens:1: unknown scope 'deploy' (scopes: submit, read, admin, "
                                                     "worker, cache-read, cache-write, execute)"},
           {"\n0123456789abcdef0123\n", "tokens:2: token has no scopes"},
           {"0123456789abcdef0123 read, submit\n", "tokens:1: unexpected 'submit'"},
           {"0123456789abcdef0123 read\n0123456789abcdef0123 admin\n", "tokens:2: this token is listed twice"},
           {"0123456789abcdef0123 read,\n", "tokens:1: unknown scope ''"},
           {"# nothing here\n", "has no token"},
       }) {
    auto read = ReadTokenFile(Write(c.content));
    ASSERT_FALSE(read.ok()) << c.content;
    EXPECT_NE(read.status().message().find(c.expected), std::string::npos) << read.status();
  }
  auto missing = ReadTokenFile((dir_.path() / "absent").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read token file"), std::string::npos) << missing.status();
}

TEST_F(TokenFileTest, ServerRefusesUnsafeCombinations) {
  const std::string tokens = Write("0123456789abcdef0123 read\n");
  // Exposed without TLS and authentication.
  auto exposed = MakeServerCredentials({}, "0.0.0.0:7171");
  ASSERT_FALSE(exposed.ok());
  EXPECT_EQ(exposed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(exposed.status().message().find("refusing to serve 0.0.0.0:7171"), std::string::npos) << exposed.status();
  // Tokens over plaintext: only on loopback.
  ServerSecurity plaintext_tokens;
  plaintext_tokens.token_file = tokens;
  EXPECT_TRUE(MakeServerCredentials(plaintext_tokens, "127.0.0.1:7171").ok());
  EXPECT_TRUE(MakeServerCredentials(plaintext_tokens, "[::1]:7171").ok());
  auto s = MakeServerCredentials(plaintext_tokens, "0.0.0.0:7171");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--token-file needs --tls-cert and --tls-key to serve 0.0.0.0:7171"),
            std::string::npos)
      << s.status();
  // A token file with an unknown scope stops the start.
  ServerSecurity bad_scope;
  bad_scope.token_file = Write("0123456789abcdef0123 reed\n");
  auto refused = MakeServerCredentials(bad_scope, "127.0.0.1:7171");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("tokens:1: unknown scope 'reed'"), std::string::npos) << refused.status();
  // Half a key pair.
  ServerSecurity half;
  half.cert_file = tokens;
  EXPECT_FALSE(MakeServerCredentials(half, "127.0.0.1:7171").ok());
  // A certificate file that is not PEM names the file.
  ServerSecurity not_pem;
  not_pem.cert_file = tokens;
  not_pem.key_file = tokens;
  auto bad = MakeServerCredentials(not_pem, "127.0.0.1:7171");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(tokens + " is not PEM"), std::string::npos) << bad.status();
  // Plaintext on loopback is the default; the operator may expose plaintext explicitly.
  EXPECT_TRUE(MakeServerCredentials({}, "127.0.0.1:0").ok());
  ServerSecurity allowed;
  allowed.allow_insecure_remote = true;
  EXPECT_TRUE(MakeServerCredentials(allowed, "0.0.0.0:7171").ok());
}

TEST_F(TokenFileTest, ClientSendsATokenInPlaintextOnlyToLoopback) {
  ClientSecurity client;
  client.token_file = Write("0123456789abcdef0123 read\n");
  EXPECT_TRUE(MakeChannelCredentials(client, "127.0.0.1:7171").ok());
  EXPECT_TRUE(MakeChannelCredentials(client, "localhost:7171").ok());
  auto c = MakeChannelCredentials(client, "build-farm.invalid:7171");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--token-file needs --tls-ca to reach build-farm.invalid:7171"),
            std::string::npos)
      << c.status();
  EXPECT_TRUE(MakeChannelCredentials({}, "build-farm.invalid:7171").ok());
}

// Every method of every service the coordinator serves is in the scope table, and the table names
// no method that does not exist.
TEST(ScopeTableTest, CoversEveryMethodOfEveryService) {
  // Touching a message of each file links its descriptors in.
  const std::set<std::string> services = {
      "assay.v1.Jobs", "assay.v1.Admin", "assay.v1.WorkerLink", "build.bazel.remote.execution.v2.Capabilities",
      "build.bazel.remote.execution.v2.ContentAddressableStorage", "build.bazel.remote.execution.v2.ActionCache",
      "build.bazel.remote.execution.v2.Execution", "google.bytestream.ByteStream", "assay.v1.BlobAccess",
      "assay.v1.Dashboard"};
  std::set<std::string> served;
  for (const google::protobuf::FileDescriptor* file :
       {assay::v1::SubmitRequest::descriptor()->file(), assay::v1::ListWorkersRequest::descriptor()->file(),
        assay::v1::WorkerMessage::descriptor()->file(), build::bazel::remote::execution::v2::Digest::descriptor()->file(),
        google::bytestream::ReadRequest::descriptor()->file(), assay::v1::BlobRequestsRequest::descriptor()->file(),
        assay::v1::GetDashboardRequest::descriptor()->file()}) {
    for (int s = 0; s < file->service_count(); ++s) {
      const auto* service = file->service(s);
      if (!services.contains(service->full_name())) continue;
      for (int i = 0; i < service->method_count(); ++i) {
        served.insert("/" + service->full_name() + "/" + service->method(i)->name());
      }
    }
  }
  EXPECT_EQ(served.size(), 29u);
  std::vector<std::string> known = KnownMethods();
  EXPECT_EQ(std::set<std::string>(known.begin(), known.end()), served);
  for (const std::string& method : served) EXPECT_TRUE(MethodScopes(method).has_value()) << method;
  EXPECT_EQ(MethodScopes("/build.bazel.remote.execution.v2.Execution/Execute"), ScopeSet{Scope::kExecute});
  EXPECT_EQ(MethodScopes("/build.bazel.remote.execution.v2.Execution/WaitExecution"), ScopeSet{Scope::kExecute});
  EXPECT_FALSE(MethodScopes("/build.bazel.remote.execution.v2.Execution/Nonexistent").has_value());
  EXPECT_EQ(MethodScopes("/google.bytestream.ByteStream/Write"), ScopeSet{Scope::kCacheWrite});
  EXPECT_EQ(MethodScopes("/assay.v1.Jobs/Submit"), ScopeSet{Scope::kSubmit});
  EXPECT_EQ(MethodScopes("/assay.v1.Jobs/ListStepCaches"), ScopeSet{Scope::kRead});
  EXPECT_EQ(MethodScopes("/assay.v1.Jobs/ListNotifications"), ScopeSet{Scope::kRead});
  EXPECT_EQ(MethodScopes("/assay.v1.Jobs/DeleteStepCaches"), ScopeSet{Scope::kSubmit});
  EXPECT_EQ(MethodScopes("/assay.v1.Admin/ListWorkers"), (ScopeSet{Scope::kRead, Scope::kAdmin}));
  EXPECT_EQ(MethodScopes("/assay.v1.Dashboard/GetDashboard"), ScopeSet::All());
}

}  // namespace
}  // namespace assay
