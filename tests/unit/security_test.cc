// Transport-security policy: which addresses count as loopback, token files, and the combinations
// of flags the coordinator and clients refuse before opening any socket.
#include "common/security.h"

#include <gtest/gtest.h>

#include "common/file_util.h"

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

TEST_F(TokenFileTest, ReadsTokensSkippingCommentsAndBlankLines) {
  auto tokens = Write("# ci tokens\n\n  0123456789abcdef0123  \nfedcba9876543210fedc\n");
  auto read = ReadTokenFile(tokens);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, (std::vector<std::string>{"0123456789abcdef0123", "fedcba9876543210fedc"}));
}

TEST_F(TokenFileTest, ShortOrMalformedTokensNameTheLine) {
  auto short_token = ReadTokenFile(Write("# comment\nshort\n"));
  ASSERT_FALSE(short_token.ok());
  EXPECT_NE(short_token.status().message().find("tokens:2: token is shorter than 16"), std::string::npos)
      << short_token.status();
  auto spaced = ReadTokenFile(Write("0123456789 abcdef0123\n"));
  ASSERT_FALSE(spaced.ok());
  EXPECT_NE(spaced.status().message().find("tokens:1: token has spaces"), std::string::npos) << spaced.status();
  auto empty = ReadTokenFile(Write("# nothing here\n"));
  ASSERT_FALSE(empty.ok());
  EXPECT_NE(empty.status().message().find("has no token"), std::string::npos) << empty.status();
  auto missing = ReadTokenFile((dir_.path() / "absent").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read token file"), std::string::npos) << missing.status();
}

TEST_F(TokenFileTest, ServerRefusesUnsafeCombinations) {
  const std::string tokens = Write("0123456789abcdef0123\n");
  // Exposed without TLS and authentication.
  auto exposed = MakeServerCredentials({}, "0.0.0.0:7171");
  ASSERT_FALSE(exposed.ok());
  EXPECT_EQ(exposed.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(exposed.status().message().find("refusing to serve 0.0.0.0:7171"), std::string::npos) << exposed.status();
  // Tokens over plaintext, even on loopback.
  ServerSecurity plaintext_tokens;
  plaintext_tokens.token_file = tokens;
  auto s = MakeServerCredentials(plaintext_tokens, "127.0.0.1:7171");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("--token-file needs --tls-cert"), std::string::npos) << s.status();
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

TEST_F(TokenFileTest, ClientNeverSendsATokenInPlaintext) {
  ClientSecurity client;
  client.token_file = Write("0123456789abcdef0123\n");
  auto c = MakeChannelCredentials(client);
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("--token-file needs --tls-ca"), std::string::npos) << c.status();
  EXPECT_TRUE(MakeChannelCredentials({}).ok());
}

}  // namespace
}  // namespace assay
