// The S3 client's pieces that need no server: s3:// locations and credentials, how answers become
// statuses, the XML it reads and writes, and the canonical URLs libcurl signs as they are.
#include "common/s3/s3_location.h"

#include <curl/curl.h>
#include <gtest/gtest.h>

#include "common/base/file_util.h"
#include <stdlib.h>

#include "absl/strings/match.h"
#include "common/s3/s3_status.h"
#include "common/s3/s3_transport.h"
#include "common/s3/s3_xml.h"

namespace assay {
namespace {

TEST(S3LocationTest, ParsesBucketPrefixEndpointAndRegion) {
  absl::StatusOr<S3Location> location =
      ParseS3Location("s3://assay-cache/farm/cas/?endpoint=http://127.0.0.1:7480/&region=eu-west-3");
  ASSERT_TRUE(location.ok()) << location.status();
  EXPECT_EQ(location->bucket, "assay-cache");
  EXPECT_EQ(location->prefix, "farm/cas");
  EXPECT_EQ(location->endpoint, "http://127.0.0.1:7480");
  EXPECT_EQ(location->region, "eu-west-3");
  EXPECT_EQ(location->Host(), "127.0.0.1:7480");
  EXPECT_EQ(location->Key("ab/cd"), "farm/cas/ab/cd");
  EXPECT_EQ(location->NameOf("farm/cas/ab/cd"), "ab/cd");
  EXPECT_EQ(location->NameOf("farm/cas2/ab"), "") << "beside the prefix, not beneath it";
  EXPECT_EQ(location->NameOf("farm/cas/"), "");
  absl::StatusOr<S3Location> again = ParseS3Location(location->ToString());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->ToString(), location->ToString());
}

TEST(S3LocationTest, DefaultsToAwsInUsEast1AndTakesPercentEncodedValues) {
  absl::StatusOr<S3Location> plain = ParseS3Location("s3://bucket.with.dots");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->prefix, "");
  EXPECT_EQ(plain->region, "us-east-1");
  EXPECT_EQ(plain->endpoint, "https://s3.us-east-1.amazonaws.com");
  EXPECT_EQ(plain->Key("x"), "x");
  absl::StatusOr<S3Location> regional = ParseS3Location("s3://b12?region=ap-south-1");
  ASSERT_TRUE(regional.ok()) << regional.status();
  EXPECT_EQ(regional->endpoint, "https://s3.ap-south-1.amazonaws.com");
  absl::StatusOr<S3Location> encoded = ParseS3Location("s3://b12/p?endpoint=https%3A%2F%2Fminio.internal%3A9000");
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_EQ(encoded->endpoint, "https://minio.internal:9000");
}

TEST(S3LocationTest, ErrorsNameTheBadPart) {
  const std::pair<const char*, const char*> cases[] = {
      {"http://bucket/x", "does not start with s3://"},
      {"s3:///prefix", "bucket is missing"},
      {"s3://Bucket/x", "'Bucket'"},
      {"s3://ab/x", "3 to 63"},
      {"s3://-bucket/x", "start and end"},
      {"s3://bu..cket", "\"..\""},
      {"s3://bucket/a//b", "empty segment"},
      {"s3://bucket/a/../b", "'..' segment"},
      {"s3://bucket/x?endpoint=ftp://host", "'ftp://host' must start with http:// or https://"},
      {"s3://bucket/x?endpoint=http://host/path", "no path"},
      {"s3://bucket/x?endpoint=http://", "has no host"},
      {"s3://bucket/x?region=EU", "region 'EU'"},
      {"s3://bucket/x?regoin=eu-west-1", "unknown parameter 'regoin'"},
      {"s3://bucket/x?region=a&region=b", "'region' is given twice"},
      {"s3://bucket/x?endpoint", "'endpoint' is not KEY=VALUE"},
      {"s3://bucket/x?endpoint=http%3", "'%' without two hex digits"},
  };
  for (const auto& [text, expected] : cases) {
    absl::StatusOr<S3Location> location = ParseS3Location(text);
    ASSERT_FALSE(location.ok()) << text << " parsed";
    EXPECT_EQ(location.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_TRUE(absl::StrContains(location.status().message(), expected)) << text << ": " << location.status();
    EXPECT_TRUE(absl::StrContains(location.status().message(), "s3://BUCKET/PREFIX")) << location.status();
  }
}

class S3CredentialsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    ::unsetenv("AWS_ACCESS_KEY_ID");
    ::unsetenv("AWS_SECRET_ACCESS_KEY");
    ::unsetenv("AWS_SESSION_TOKEN");
  }
};

TEST_F(S3CredentialsTest, TemporaryCredentialsBringTheirSessionTokenFromTheEnvironmentOrAFile) {
  ::setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLE", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  EXPECT_EQ(S3CredentialsFromEnvironment()->session_token, "");
  ::setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLE", 1);
  EXPECT_EQ(S3CredentialsFromEnvironment()->session_token, "FwoGZXIvYXdzEXAMPLE");
  ScopedTempDir dir;
  const auto file = dir.path() / "credentials";
  ASSERT_TRUE(WriteFile(file, "[default]\naws_access_key_id = ASIA2\naws_secret_access_key = s2\n"
                              "aws_session_token = IQoJb3JpZ2luEXAMPLE\n").ok());
  auto from_file = S3CredentialsFromFile(file.string());
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->session_token, "IQoJb3JpZ2luEXAMPLE");
  EXPECT_FALSE(absl::StrContains(from_file->Describe(), "IQoJ")) << from_file->Describe();
}

TEST_F(S3CredentialsTest, ComeFromTheEnvironmentAndNeverShowTheSecret) {
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
  absl::StatusOr<S3Credentials> credentials = S3CredentialsFromEnvironment();
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_EQ(credentials->access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(credentials->secret_access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
  EXPECT_TRUE(absl::StrContains(credentials->Describe(), "AKIDEXAMPLE"));
  EXPECT_FALSE(absl::StrContains(credentials->Describe(), "wJalr")) << credentials->Describe();
}

TEST_F(S3CredentialsTest, AMissingOrEmptyVariableIsNamed) {
  ::setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
  absl::StatusOr<S3Credentials> missing = S3CredentialsFromEnvironment();
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(absl::StrContains(missing.status().message(), "AWS_SECRET_ACCESS_KEY is not set")) << missing.status();
  ::setenv("AWS_ACCESS_KEY_ID", "", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
  absl::StatusOr<S3Credentials> empty = S3CredentialsFromEnvironment();
  EXPECT_TRUE(absl::StrContains(empty.status().message(), "AWS_ACCESS_KEY_ID is empty")) << empty.status();
}

std::string ErrorBody(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" + message +
         "</Message><RequestId>tx1</RequestId></Error>";
}

TEST(S3StatusTest, HttpAnswersMapToCodesWithS3sCodeAndMessage) {
  EXPECT_TRUE(StatusFromHttp(200, "", "GET b/k", "h:1").ok());
  EXPECT_TRUE(StatusFromHttp(206, "", "GET b/k", "h:1").ok());
  const absl::Status missing = StatusFromHttp(404, ErrorBody("NoSuchKey", "The specified key does not exist."),
                                              "GET b/k", "s3.example:9000");
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.message(),
            "S3 GET b/k on s3.example:9000: HTTP 404 NoSuchKey: The specified key does not exist.");
  const std::pair<int, absl::StatusCode> by_status[] = {
      {400, absl::StatusCode::kInvalidArgument}, {403, absl::StatusCode::kPermissionDenied},
      {404, absl::StatusCode::kNotFound},        {416, absl::StatusCode::kOutOfRange},
      {429, absl::StatusCode::kResourceExhausted}, {500, absl::StatusCode::kUnavailable},
      {502, absl::StatusCode::kUnavailable},     {503, absl::StatusCode::kUnavailable},
      {501, absl::StatusCode::kUnimplemented},   {409, absl::StatusCode::kFailedPrecondition},
  };
  for (const auto& [http, code] : by_status) {
    const absl::Status status = StatusFromHttp(http, "not xml", "PUT b/k", "h:1");
    EXPECT_EQ(status.code(), code) << http << ": " << status;
    EXPECT_TRUE(absl::StrContains(status.message(), absl::StrCat("on h:1: HTTP ", http))) << status;
  }
  EXPECT_EQ(StatusFromHttp(503, ErrorBody("SlowDown", "Reduce your rate"), "PUT b/k", "h:1").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromHttp(409, ErrorBody("BucketAlreadyOwnedByYou", ""), "PUT b/", "h:1").code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(StatusFromHttp(400, ErrorBody("EntityTooSmall", ""), "POST b/k", "h:1").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusFromHttp(404, ErrorBody("NoSuchUpload", ""), "PUT b/k", "h:1").code(), absl::StatusCode::kNotFound);
}

TEST(S3StatusTest, CredentialErrorsSayWhatToCheck) {
  const absl::Status signature = StatusFromHttp(403, ErrorBody("SignatureDoesNotMatch", ""), "PUT b/k", "h:1");
  EXPECT_EQ(signature.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(signature.message(), "AWS_SECRET_ACCESS_KEY")) << signature;
  const absl::Status key = StatusFromHttp(403, ErrorBody("InvalidAccessKeyId", ""), "PUT b/k", "h:1");
  EXPECT_TRUE(absl::StrContains(key.message(), "InvalidAccessKeyId")) << key;
  EXPECT_TRUE(absl::StrContains(key.message(), "AWS_ACCESS_KEY_ID")) << key;
  const absl::Status head = StatusFromHttp(403, "", "HEAD b/k", "h:1");
  EXPECT_EQ(head.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(absl::StrContains(head.message(), "credentials")) << head;
  EXPECT_EQ(StatusFromHttp(403, ErrorBody("RequestTimeTooSkewed", ""), "GET b/k", "h:1").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(S3StatusTest, TransportFailuresNameTheHostAndCurlsMessage) {
  const absl::Status refused =
      StatusFromCurl(CURLE_COULDNT_CONNECT, "Failed to connect to 10.0.0.5 port 9000: Connection refused", "GET b/k",
                     "10.0.0.5:9000");
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(refused.message(), "S3 GET b/k on 10.0.0.5:9000: Failed to connect to 10.0.0.5 port 9000: Connection refused");
  const absl::Status slow = StatusFromCurl(CURLE_OPERATION_TIMEDOUT, "", "GET b/k", "h:1");
  EXPECT_EQ(slow.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(slow.message(), curl_easy_strerror(CURLE_OPERATION_TIMEDOUT))) << slow;
  EXPECT_EQ(StatusFromCurl(CURLE_RECV_ERROR, "reset", "GET b/k", "h:1").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromCurl(CURLE_URL_MALFORMAT, "", "GET b/k", "h:1").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StatusFromCurl(CURLE_PEER_FAILED_VERIFICATION, "", "GET b/k", "h:1").code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(S3XmlTest, ReadsAListPageWithEscapesAndAContinuationToken) {
  const std::string xml =
      "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
      "<Contents><Key>p/a&amp;b &lt;c&gt; &#233;&#x41;</Key><Size>12</Size><ETag>&quot;e&quot;</ETag></Contents>"
      "<Contents><Key>p/z</Key><LastModified>x</LastModified><Size>0</Size></Contents>"
      "<NextContinuationToken>1/token+=</NextContinuationToken></ListBucketResult>";
  absl::StatusOr<S3ListPage> page = ParseListObjectsV2(xml);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "p/a&b <c> \xC3\xA9" "A");
  EXPECT_EQ(page->objects[0].size, 12);
  EXPECT_EQ(page->objects[1].key, "p/z");
  EXPECT_TRUE(page->truncated);
  EXPECT_EQ(page->next_token, "1/token+=");

  absl::StatusOr<S3ListPage> last = ParseListObjectsV2(
      "<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>");
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_TRUE(last->objects.empty());
  EXPECT_FALSE(last->truncated);
}

TEST(S3XmlTest, RefusesListPagesItCannotTrust) {
  EXPECT_FALSE(ParseListObjectsV2("<html>proxy error</html>").ok());
  EXPECT_FALSE(ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>").ok())
      << "truncated without a token would end the listing early";
  EXPECT_FALSE(ParseListObjectsV2("<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>").ok());
  EXPECT_FALSE(
      ParseListObjectsV2("<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>").ok());
  EXPECT_FALSE(
      ParseListObjectsV2("<ListBucketResult><Contents><KeyCount>1</KeyCount><Size>1</Size></Contents></ListBucketResult>")
          .ok())
      << "<KeyCount> is not <Key>";
}

TEST(S3XmlTest, ReadsErrorsUploadIdsAndDeleteResults) {
  std::optional<S3ErrorBody> error = ParseS3Error(ErrorBody("NoSuchKey", "gone &amp; forgotten"));
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->code, "NoSuchKey");
  EXPECT_EQ(error->message, "gone & forgotten");
  EXPECT_FALSE(ParseS3Error("<html>502 Bad Gateway</html>").has_value());
  EXPECT_FALSE(ParseS3Error("").has_value());

  EXPECT_EQ(ParseUploadId("<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>2~abc</UploadId>"
                          "</InitiateMultipartUploadResult>")
                .value_or(""),
            "2~abc");
  EXPECT_FALSE(ParseUploadId("<InitiateMultipartUploadResult/>").ok());

  absl::StatusOr<std::vector<S3DeleteError>> errors = ParseDeleteResult(
      "<DeleteResult><Error><Key>p/a</Key><Code>AccessDenied</Code><Message>no</Message></Error></DeleteResult>");
  ASSERT_TRUE(errors.ok()) << errors.status();
  ASSERT_EQ(errors->size(), 1u);
  EXPECT_EQ((*errors)[0].key, "p/a");
  EXPECT_EQ((*errors)[0].code, "AccessDenied");
  EXPECT_TRUE(ParseDeleteResult("<DeleteResult/>").value_or(std::vector<S3DeleteError>{{}}).empty());
  EXPECT_FALSE(ParseDeleteResult("<Error><Code>x</Code></Error>").ok());
}

TEST(S3XmlTest, WritesRequestBodiesWithKeysEscaped) {
  EXPECT_EQ(DeleteRequestBody({"a&b", "<c>"}),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Delete><Quiet>true</Quiet>"
            "<Object><Key>a&amp;b</Key></Object><Object><Key>&lt;c&gt;</Key></Object></Delete>");
  EXPECT_EQ(CompleteMultipartBody({{1, "\"e1\""}, {2, "\"e2\""}}),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUpload>"
            "<Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag></Part>"
            "<Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part></CompleteMultipartUpload>");
  EXPECT_EQ(XmlUnescape(XmlEscape("a<b>&\"c'")), "a<b>&\"c'");
  EXPECT_EQ(XmlUnescape("&unknown; & &#xZZ;"), "&unknown; & &#xZZ;") << "what is no entity stays as it is";
}

TEST(S3UrlTest, WritesTheCanonicalFormLibcurlSignsAsItIs) {
  S3Location location = *ParseS3Location("s3://bkt/p?endpoint=http://127.0.0.1:7480");
  S3Request request;
  request.key = location.Key("a b/c+d~é");
  request.query = {{"uploadId", "2~x/y=z"}, {"partNumber", "3"}};
  EXPECT_EQ(S3Url(location, request),
            "http://127.0.0.1:7480/bkt/p/a%20b/c%2Bd~%C3%A9?partNumber=3&uploadId=2~x%2Fy%3Dz");
  S3Request uploads;
  uploads.key = "k";
  uploads.query = {{"uploads", ""}};
  EXPECT_EQ(S3Url(location, uploads), "http://127.0.0.1:7480/bkt/k?uploads=") << "a value-less parameter keeps its '='";
  S3Request list;
  list.query = {{"prefix", "p/"}, {"list-type", "2"}, {"continuation-token", "1/abc"}};
  EXPECT_EQ(S3Url(location, list), "http://127.0.0.1:7480/bkt?continuation-token=1%2Fabc&list-type=2&prefix=p%2F");
  EXPECT_EQ(S3UriEncode("AZaz09-_.~/ *", true), "AZaz09-_.~/%20%2A");
}

TEST(S3UrlTest, HashesBodiesAsS3Wants) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Md5Base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
}

}  // namespace
}  // namespace assay
