// The fixture of tests against a real S3 server (s3_server.h): one Ceph cluster per test process
// (ctest runs each test in a process of its own; a whole run of a binary shares one), a bucket of
// its own per test, and random bytes that no two seeds repeat.
#pragma once

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "absl/strings/ascii.h"
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

}  // namespace assay::testing
