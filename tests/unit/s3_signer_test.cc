#include "common/s3/s3_signer.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/s3/s3_transport.h"

namespace assay {
namespace {

// AWS's published examples: AKIDEXAMPLE and the documentation's example secret.
const S3Credentials kSuiteCredentials{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"};
const S3Credentials kS3DocsCredentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"};

absl::Time At(const char* text) {
  absl::Time t;
  std::string error;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, text, &t, &error)) << error;
  return t;
}

// The signature test suite's get-vanilla-query-order-key-case: the query sorted, the payload the
// empty body's hash.
TEST(SigV4Test, MatchesAwsTestSuiteVanillaQueryOrder) {
  SigV4Input input;
  input.method = "GET";
  input.host = "example.amazonaws.com";
  input.path = "/";
  input.query = {{"Param2", "value2"}, {"Param1", "value1"}};
  input.headers = {{"X-Amz-Date", "20150830T123600Z"}};
  input.payload_hash = Sha256Hex("");
  input.time = At("2015-08-30T12:36:00Z");
  input.region = "us-east-1";
  input.service = "service";
  const SigV4Signature s = SignV4(input, kSuiteCredentials);
  EXPECT_EQ(s.signed_headers, "host;x-amz-date");
  EXPECT_EQ(s.scope, "20150830/us-east-1/service/aws4_request");
  EXPECT_EQ(s.signature, "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

// S3's presigned-URL example (GET examplebucket/test.txt for a day), in its virtual-hosted form.
TEST(SigV4Test, MatchesTheS3PresignedUrlExample) {
  SigV4Input input;
  input.method = "GET";
  input.host = "examplebucket.s3.amazonaws.com";
  input.path = "/test.txt";
  input.query = {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
                 {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
                 {"X-Amz-Date", "20130524T000000Z"},
                 {"X-Amz-Expires", "86400"},
                 {"X-Amz-SignedHeaders", "host"}};
  input.payload_hash = "UNSIGNED-PAYLOAD";
  input.time = At("2013-05-24T00:00:00Z");
  input.region = "us-east-1";
  EXPECT_EQ(SignV4(input, kS3DocsCredentials).signature,
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4Test, APresignedGetIsAPathStyleUrlSignedForHostOnly) {
  S3Location location;
  location.bucket = "cache";
  location.endpoint = "http://127.0.0.1:7480";
  location.region = "eu-west-1";
  const SignedS3Request r =
      PresignGet(location, kS3DocsCredentials, "farm/cas/ab cd", At("2026-12-04T10:00:00Z"), absl::Minutes(15));
  EXPECT_EQ(r.method, "GET");
  EXPECT_TRUE(absl::StartsWith(r.url, "http://127.0.0.1:7480/cache/farm/cas/ab%20cd?X-Amz-Algorithm=AWS4-HMAC-SHA256&"))
      << r.url;
  EXPECT_TRUE(absl::StrContains(r.url, "X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20261204%2Feu-west-1%2Fs3%2Faws4_request"));
  EXPECT_TRUE(absl::StrContains(r.url, "&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=")) << r.url;
  EXPECT_TRUE(r.headers.empty());
  EXPECT_FALSE(absl::StrContains(r.url, kS3DocsCredentials.secret_access_key));
}

TEST(SigV4Test, ASignedPutBindsTheBodyHashAndNamesItsSignedHeaders) {
  S3Location location;
  location.bucket = "cache";
  location.endpoint = "https://s3.example.com:443";
  const std::string hash = Sha256Hex("blob");
  const SignedS3Request r = SignPut(location, kS3DocsCredentials, "cas/x", hash, At("2026-12-04T10:00:00Z"));
  EXPECT_EQ(r.url, "https://s3.example.com:443/cache/cas/x");
  ASSERT_EQ(r.headers.size(), 3u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"x-amz-content-sha256", hash}));
  EXPECT_EQ(r.headers[1], (std::pair<std::string, std::string>{"x-amz-date", "20261204T100000Z"}));
  EXPECT_TRUE(absl::StartsWith(r.headers[2].second,
                               "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261204/us-east-1/s3/aws4_request, "
                               "SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature="));
  // Another body hash is another signature.
  EXPECT_NE(SignPut(location, kS3DocsCredentials, "cas/x", Sha256Hex("other"), At("2026-12-04T10:00:00Z")).headers[2],
            r.headers[2]);
}

TEST(SigV4Test, TemporaryCredentialsSignTheirSessionToken) {
  S3Location location;
  location.bucket = "cache";
  location.endpoint = "https://s3.example.com";
  S3Credentials temporary = kS3DocsCredentials;
  temporary.session_token = "token/with+chars=";
  const SignedS3Request get = PresignGet(location, temporary, "k", At("2026-12-04T10:00:00Z"), absl::Minutes(5));
  EXPECT_TRUE(absl::StrContains(get.url, "&X-Amz-Security-Token=token%2Fwith%2Bchars%3D&")) << get.url;
  EXPECT_NE(get.url, PresignGet(location, kS3DocsCredentials, "k", At("2026-12-04T10:00:00Z"), absl::Minutes(5)).url);
  const SignedS3Request put = SignPut(location, temporary, "k", Sha256Hex("b"), At("2026-12-04T10:00:00Z"));
  ASSERT_EQ(put.headers.size(), 4u);
  EXPECT_EQ(put.headers[2], (std::pair<std::string, std::string>{"x-amz-security-token", "token/with+chars="}));
  EXPECT_TRUE(absl::StrContains(put.headers[3].second, "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"))
      << put.headers[3].second;
}

}  // namespace
}  // namespace assay
