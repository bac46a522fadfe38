// Requests the coordinator signs for a worker to send (s3_signer.h, signed_transfer.h), sent to a
// real S3 server (Ceph's radosgw on loopback): a presigned GET reads an object, from an offset too;
// a PUT signed for a body's hash writes that body and is refused for any other; an expired or
// altered request is refused.
#include "common/s3/signed_transfer.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include "common/base/file_util.h"
#include "common/s3/s3_client.h"
#include "common/s3/s3_transport.h"
#include "common/tree/safe_fs.h"
#include "tests/integration/s3_test_base.h"

namespace assay {
namespace {

using testing::RandomBytes;
using testing::TestS3Server;

class SignedTransferTest : public testing::S3ServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(start_->ok()) << *start_;
    auto location = ParseS3Location(server_->Location(TestBucket("st-"), "farm"));
    ASSERT_TRUE(location.ok()) << location.status();
    location_ = *location;
    client_ = std::make_unique<S3Client>(location_, credentials_);
    ASSERT_TRUE(client_->CreateBucket().ok());
  }

  // A file holding `bytes`, open for reading.
  ScopedFd FileOf(const std::string& bytes) {
    const auto path = dir_.path() / ("f" + std::to_string(files_++));
    EXPECT_TRUE(WriteFile(path, bytes).ok());
    return ScopedFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  }

  absl::StatusOr<std::string> Get(const SignedS3Request& request, int64_t offset) {
    std::string out;
    absl::Status s = SignedGet(request, offset, [&](absl::string_view d) {
      out.append(d.data(), d.size());
      return absl::OkStatus();
    }, absl::Now() + absl::Seconds(30));
    if (!s.ok()) return s;
    return out;
  }

  S3Credentials credentials_{TestS3Server::kAccessKey, TestS3Server::kSecretKey};
  S3Location location_;
  std::unique_ptr<S3Client> client_;
  ScopedTempDir dir_;
  int files_ = 0;
};

TEST_F(SignedTransferTest, APresignedGetReadsTheObjectWholeOrFromAnOffset) {
  const std::string bytes = RandomBytes(3 << 20, 1);
  ASSERT_TRUE(client_->PutObject("cas/a", bytes).ok());
  const SignedS3Request get = PresignGet(location_, credentials_, location_.Key("cas/a"), absl::Now(), absl::Minutes(5));
  auto whole = Get(get, 0);
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(*whole, bytes);
  auto tail = Get(get, 1000000);
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(*tail, bytes.substr(1000000));
}

TEST_F(SignedTransferTest, AnExpiredOrAlteredGetIsRefused) {
  ASSERT_TRUE(client_->PutObject("cas/a", "secret").ok());
  const SignedS3Request expired = PresignGet(location_, credentials_, location_.Key("cas/a"),
                                             absl::Now() - absl::Hours(1), absl::Seconds(60));
  EXPECT_EQ(Get(expired, 0).status().code(), absl::StatusCode::kPermissionDenied);
  SignedS3Request other = PresignGet(location_, credentials_, location_.Key("cas/a"), absl::Now(), absl::Minutes(5));
  other.url.replace(other.url.find("cas/a"), 5, "cas/b");  // the signature names cas/a
  EXPECT_EQ(Get(other, 0).status().code(), absl::StatusCode::kPermissionDenied);
  SignedS3Request forged = PresignGet(location_, S3Credentials{TestS3Server::kAccessKey, "not-the-secret"},
                                      location_.Key("cas/a"), absl::Now(), absl::Minutes(5));
  EXPECT_EQ(Get(forged, 0).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SignedTransferTest, ASignedPutWritesTheBodyItWasSignedForAndNoOther) {
  const std::string bytes = RandomBytes(2 << 20, 2);
  const SignedS3Request put = SignPut(location_, credentials_, location_.Key("cas/p"), Sha256Hex(bytes), absl::Now());
  const std::string other = RandomBytes(2 << 20, 3);
  ScopedFd wrong = FileOf(other);
  absl::Status refused = SignedPut(put, wrong.get(), static_cast<int64_t>(other.size()), absl::Now() + absl::Seconds(30));
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(client_->HeadObject("cas/p").status().code(), absl::StatusCode::kNotFound) << refused;

  ScopedFd right = FileOf(bytes);
  absl::Status put_status = SignedPut(put, right.get(), static_cast<int64_t>(bytes.size()), absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(put_status.ok()) << put_status;
  auto stored = client_->GetObject("cas/p");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(*stored, bytes);
}

}  // namespace
}  // namespace assay
