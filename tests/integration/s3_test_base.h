// The fixture of tests against a real S3 server (s3_server.h): one Ceph cluster per test process
// (ctest runs each test in a process of its own; a whole run of a binary shares one), a bucket of
// its own per test, and random bytes that no two seeds repeat.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/s3/s3_client.h"
#include "tests/integration/s3_server.h"

namespace assay::testing {

class S3ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new TestS3Server();
    start_ = new absl::Status(server_->Start());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    delete start_;
    start_ = nullptr;
  }
  // `prefix` and the running test's name in lowercase: a valid bucket name of its own.
  static std::string TestBucket(const std::string& prefix) {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    return prefix + absl::AsciiStrToLower(name).substr(0, 50);
  }

  static inline TestS3Server* server_ = nullptr;
  static inline absl::Status* start_ = nullptr;
};

inline std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 random(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(random() & 0xFF);
  return out;
}

// For tests that run on both stores (embedded RocksDB and a bucket): the process's one Ceph,
// started by the first test that asks (never stopped before the process ends: its daemons are
// stopped by the server's destructor at exit).
inline absl::StatusOr<TestS3Server*> SharedS3Server() {
  static TestS3Server* server = nullptr;
  static absl::Status* started = nullptr;
  if (server == nullptr) {
    server = new TestS3Server();
    started = new absl::Status(server->Start());
    std::atexit([] { delete server; });
  }
  if (!started->ok()) return *started;
  return server;
}

// The coordinator's flags for a bucket of the running test's own on the shared Ceph (created here),
// the key pair in a file in `dir`.
inline absl::StatusOr<std::vector<std::string>> CasStoreFlags(const std::filesystem::path& dir) {
  auto s3 = SharedS3Server();
  if (!s3.ok()) return s3.status();
  std::string bucket = "t-" + absl::AsciiStrToLower(::testing::UnitTest::GetInstance()->current_test_info()->name());
  bucket = bucket.substr(0, std::min<size_t>(bucket.find('/'), 50));
  S3Client client(ParseS3Location((*s3)->Location(bucket)).value(),
                  S3Credentials{TestS3Server::kAccessKey, TestS3Server::kSecretKey});
  if (absl::Status s = client.CreateBucket(); !s.ok()) return s;
  const auto credentials = dir / "s3-credentials";
  if (absl::Status s = WriteFile(credentials, absl::StrCat("aws_access_key_id = ", TestS3Server::kAccessKey,
                                                           "\naws_secret_access_key = ", TestS3Server::kSecretKey, "\n"));
      !s.ok()) {
    return s;
  }
  return std::vector<std::string>{"--cas-store", (*s3)->Location(bucket, "farm"), "--cas-credentials",
                                  credentials.string()};
}

// Names a store parameter's instantiation by its value ("embedded", "bucket").
inline std::string StoreName(const ::testing::TestParamInfo<std::string>& p) { return p.param; }

}  // namespace assay::testing
