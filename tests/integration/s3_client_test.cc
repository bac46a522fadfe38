// The S3 client against a real S3 server: Ceph's radosgw on loopback (s3_server.h), one cluster per
// test process (ctest runs each test in a process of its own; a whole run of the binary shares one),
// a bucket of its own per test. Plus the client's deadlines and connection cap against a loopback
// listener that accepts and never answers.
#include "common/s3/s3_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/integration/s3_server.h"

namespace assay {
namespace {

using testing::TestS3Server;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 random(seed);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(random() & 0xFF);
  return out;
}

S3ClientOptions QuickOptions(absl::Duration overall, int max_attempts = 0) {
  S3ClientOptions options;
  options.retry.initial_backoff = absl::Milliseconds(50);
  options.retry.max_backoff = absl::Milliseconds(500);
  options.retry.attempt_timeout = absl::Seconds(10);
  options.retry.overall_timeout = overall;
  options.retry.max_attempts = max_attempts;
  return options;
}

class S3ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new TestS3Server();
    start_ = new absl::Status(server_->Start());
    std::cout << "Ceph (monitor, memstore OSD, radosgw) started in " << absl::FormatDuration(server_->start_time())
              << " (" << server_->start_steps() << ")" << std::endl;
  }
  static void TearDownTestSuite() {
    const absl::Time stop = absl::Now();
    delete server_;
    std::cout << "Ceph stopped in " << absl::FormatDuration(absl::Now() - stop) << std::endl;
    delete start_;
  }

  void SetUp() override {
    ASSERT_TRUE(start_->ok()) << *start_;
    // A bucket per test, named after it: CamelCase to lowercase letters and digits.
    std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    bucket_ = "t-" + absl::AsciiStrToLower(name).substr(0, 50);
    client_ = MakeClient(TestS3Server::kAccessKey, TestS3Server::kSecretKey, "cas");
    absl::Status created = client_->CreateBucket();
    ASSERT_TRUE(created.ok()) << created;
  }

  std::unique_ptr<S3Client> MakeClient(const std::string& access, const std::string& secret, const std::string& prefix,
                                       S3ClientOptions options = QuickOptions(absl::Seconds(20))) {
    absl::StatusOr<S3Location> location = ParseS3Location(server_->Location(bucket_, prefix));
    EXPECT_TRUE(location.ok()) << location.status();
    return std::make_unique<S3Client>(*location, S3Credentials{access, secret}, options);
  }

  static TestS3Server* server_;
  static absl::Status* start_;
  std::string bucket_;
  std::unique_ptr<S3Client> client_;
};

TestS3Server* S3ClientTest::server_ = nullptr;
absl::Status* S3ClientTest::start_ = nullptr;

TEST_F(S3ClientTest, PutGetHeadAndRangeReadsReturnExactlyTheStoredBytes) {
  const std::string data = RandomBytes(300'000, 1);
  ASSERT_TRUE(client_->PutObject("ab/blob", data).ok());
  absl::StatusOr<std::string> got = client_->GetObject("ab/blob");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == data) << "read back " << got->size() << " bytes, not the " << data.size() << " written";
  absl::StatusOr<S3ObjectInfo> info = client_->HeadObject("ab/blob");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, 300'000);
  EXPECT_FALSE(info->etag.empty());

  absl::StatusOr<std::string> middle = client_->GetObjectRange("ab/blob", 123'456, 1000);
  ASSERT_TRUE(middle.ok()) << middle.status();
  EXPECT_EQ(*middle, data.substr(123'456, 1000));
  absl::StatusOr<std::string> tail = client_->GetObjectRange("ab/blob", 299'990, 100);  // runs past the end
  ASSERT_TRUE(tail.ok()) << tail.status();
  EXPECT_EQ(*tail, data.substr(299'990));
  EXPECT_EQ(client_->GetObjectRange("ab/blob", 300'000, 10).status().code(), absl::StatusCode::kOutOfRange);

  // The key really is beneath the location's prefix: a client without one sees "cas/ab/blob".
  absl::StatusOr<S3ObjectInfo> full = MakeClient(TestS3Server::kAccessKey, TestS3Server::kSecretKey, "")
                                          ->HeadObject("cas/ab/blob");
  EXPECT_TRUE(full.ok()) << full.status();

  // Keys with characters that need encoding in the path and escaping in XML, and an empty object.
  const std::string odd = "odd/a b+c&d=e%f'g\"h<i>~é";
  ASSERT_TRUE(client_->PutObject(odd, "").ok());
  EXPECT_EQ(client_->GetObject(odd).value_or("missing"), "");
  absl::StatusOr<std::vector<S3Object>> listed = client_->ListAllObjects("odd/");
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ(listed->front().key, odd);
  EXPECT_EQ(listed->front().size, 0);
}

TEST_F(S3ClientTest, AnAbsentObjectIsNotFound) {
  absl::Status again = client_->CreateBucket();
  EXPECT_TRUE(again.ok()) << "creating a bucket this account owns: " << again;
  absl::StatusOr<std::string> got = client_->GetObject("no/such");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound) << got.status();
  EXPECT_TRUE(absl::StrContains(got.status().message(), "NoSuchKey")) << got.status();
  EXPECT_EQ(client_->HeadObject("no/such").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetObjectRange("no/such", 0, 10).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(S3ClientTest, ListingFollowsContinuationTokensPastOnePage) {
  std::set<std::string> written;
  for (int i = 0; i < 23; ++i) {
    const std::string name = absl::StrCat("list/", i);
    ASSERT_TRUE(client_->PutObject(name, std::string(static_cast<size_t>(i), 'x')).ok());
    written.insert(name);
  }
  ASSERT_TRUE(client_->PutObject("other/not-listed", "x").ok());
  // Beside the prefix: "cas2/..." starts with "cas" but is not beneath "cas/".
  ASSERT_TRUE(MakeClient(TestS3Server::kAccessKey, TestS3Server::kSecretKey, "cas2")->PutObject("list/0", "y").ok());

  std::vector<size_t> page_sizes;
  std::set<std::string> listed;
  absl::Status status = client_->ListObjects(
      "list/",
      [&](std::vector<S3Object> page) {
        page_sizes.push_back(page.size());
        for (const S3Object& object : page) {
          EXPECT_EQ(object.size, std::stoi(object.key.substr(5))) << object.key;
          EXPECT_TRUE(listed.insert(object.key).second) << object.key << " listed twice";
        }
        return absl::OkStatus();
      },
      /*page_size=*/7);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(page_sizes, (std::vector<size_t>{7, 7, 7, 2}));
  EXPECT_EQ(listed, written);

  // An error from the callback stops the listing after the first page.
  int pages = 0;
  absl::Status stopped = client_->ListObjects(
      "list/", [&](std::vector<S3Object>) { return ++pages == 1 ? absl::CancelledError("enough") : absl::OkStatus(); },
      7);
  EXPECT_EQ(stopped.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(pages, 1);
}

TEST_F(S3ClientTest, DeleteObjectsRemovesMoreThanOneBatch) {
  // 1003 objects: two multi-object delete requests (1000 + 3), written by eight threads.
  std::vector<std::string> names;
  for (int i = 0; i < 1003; ++i) names.push_back(absl::StrCat("del/", i));
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 8; ++t) {
    writers.emplace_back([&, t] {
      for (size_t i = static_cast<size_t>(t); i < names.size(); i += 8) {
        if (!client_->PutObject(names[i], "d").ok()) ++failures;
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(client_->PutObject("keep/me", "k").ok());
  ASSERT_EQ(client_->ListAllObjects("del/").value_or(std::vector<S3Object>{}).size(), 1003u);

  std::vector<std::string> doomed = names;
  doomed.push_back("del/never-written");  // absent: counts as deleted
  absl::StatusOr<std::vector<S3KeyStatus>> refused = client_->DeleteObjects(doomed);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_TRUE(refused->empty()) << refused->front().name << ": " << refused->front().status;
  absl::StatusOr<std::vector<S3Object>> left = client_->ListAllObjects("");
  ASSERT_TRUE(left.ok()) << left.status();
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ(left->front().key, "keep/me");
}

TEST_F(S3ClientTest, MultipartUploadReadsBackAcrossPartBoundaries) {
  constexpr int64_t kPart = 5 << 20;  // the smallest part radosgw (and AWS) takes but the last
  const std::string data = RandomBytes(2 * kPart + 12345, 2);
  ASSERT_TRUE(client_->PutObjectMultipart("big/blob", data, kPart).ok());
  EXPECT_EQ(client_->HeadObject("big/blob").value_or(S3ObjectInfo{}).size, static_cast<int64_t>(data.size()));
  absl::StatusOr<std::string> whole = client_->GetObject("big/blob");
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_TRUE(*whole == data) << "the whole object differs from what was uploaded";
  for (int64_t boundary : {kPart, 2 * kPart}) {
    absl::StatusOr<std::string> across = client_->GetObjectRange("big/blob", boundary - 1000, 3000);
    ASSERT_TRUE(across.ok()) << across.status();
    EXPECT_TRUE(*across == data.substr(static_cast<size_t>(boundary - 1000), 3000)) << "across " << boundary;
  }

  // Parts below the minimum: completing fails, the upload is aborted, and no object appears.
  absl::Status small = client_->PutObjectMultipart("big/small-parts", data.substr(0, 3 << 20), 1 << 20);
  EXPECT_EQ(small.code(), absl::StatusCode::kInvalidArgument) << small;
  EXPECT_TRUE(absl::StrContains(small.message(), "EntityTooSmall")) << small;
  EXPECT_EQ(client_->HeadObject("big/small-parts").status().code(), absl::StatusCode::kNotFound);

  // An aborted upload takes no more parts and leaves no object. (radosgw answers completing an
  // aborted upload with a retryable 500, "completion is already in progress", so that is not asked.)
  absl::StatusOr<std::string> upload = client_->CreateMultipartUpload("big/aborted");
  ASSERT_TRUE(upload.ok()) << upload.status();
  ASSERT_TRUE(client_->UploadPart("big/aborted", *upload, 1, "part").ok());
  ASSERT_TRUE(client_->AbortMultipartUpload("big/aborted", *upload).ok());
  absl::StatusOr<std::string> late = client_->UploadPart("big/aborted", *upload, 2, "late part");
  EXPECT_EQ(late.status().code(), absl::StatusCode::kNotFound) << late.status();
  EXPECT_TRUE(absl::StrContains(late.status().message(), "NoSuchUpload")) << late.status();
  EXPECT_EQ(client_->HeadObject("big/aborted").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(S3ClientTest, WrongCredentialsArePermissionDeniedNamingTheProblem) {
  ASSERT_TRUE(client_->PutObject("secret/x", "x").ok());
  const std::string wrong_secret = "not-the-secret-0123456789";
  absl::Status bad_secret = MakeClient(TestS3Server::kAccessKey, wrong_secret, "cas")->PutObject("secret/y", "y");
  EXPECT_EQ(bad_secret.code(), absl::StatusCode::kPermissionDenied) << bad_secret;
  EXPECT_TRUE(absl::StrContains(bad_secret.message(), "SignatureDoesNotMatch")) << bad_secret;
  EXPECT_TRUE(absl::StrContains(bad_secret.message(), "AWS_SECRET_ACCESS_KEY")) << bad_secret;
  EXPECT_FALSE(absl::StrContains(bad_secret.message(), wrong_secret)) << "the secret is in the message";

  absl::StatusOr<std::string> bad_key = MakeClient("NOSUCHACCESSKEY", TestS3Server::kSecretKey, "cas")->GetObject("secret/x");
  EXPECT_EQ(bad_key.status().code(), absl::StatusCode::kPermissionDenied) << bad_key.status();
  EXPECT_TRUE(absl::StrContains(bad_key.status().message(), "InvalidAccessKeyId")) << bad_key.status();
  EXPECT_TRUE(absl::StrContains(bad_key.status().message(), "AWS_ACCESS_KEY_ID")) << bad_key.status();

  // HEAD answers carry no body: the hint still points at the credentials.
  absl::StatusOr<S3ObjectInfo> head = MakeClient(TestS3Server::kAccessKey, wrong_secret, "cas")->HeadObject("secret/x");
  EXPECT_EQ(head.status().code(), absl::StatusCode::kPermissionDenied) << head.status();
  EXPECT_TRUE(absl::StrContains(head.status().message(), "credentials")) << head.status();
  EXPECT_EQ(client_->GetObject("secret/y").status().code(), absl::StatusCode::kNotFound) << "a refused PUT wrote";
}

TEST_F(S3ClientTest, AStoppedGatewayIsUnavailableAndTheClientRecoversWhenItReturns) {
  ASSERT_TRUE(client_->PutObject("outage/x", "before").ok());
  server_->StopGateway();
  auto quick = MakeClient(TestS3Server::kAccessKey, TestS3Server::kSecretKey, "cas", QuickOptions(absl::Seconds(1)));
  absl::StatusOr<std::string> down = quick->GetObject("outage/x");
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  const std::string host = server_->endpoint().substr(std::string("http://").size());
  EXPECT_TRUE(absl::StrContains(down.status().message(), host)) << down.status();
  EXPECT_TRUE(absl::StrContains(down.status().message(), "tries")) << "not retried: " << down.status();

  // A call made during the outage, with time to retry, succeeds once the gateway is back (radosgw
  // takes most of a second to start, so the call fails at least once first).
  absl::StatusOr<std::string> patient = absl::UnknownError("not run");
  std::thread waiting([&] { patient = client_->GetObject("outage/x"); });
  absl::Status restarted = server_->StartGateway();
  waiting.join();
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(patient.ok()) << patient.status();
  EXPECT_EQ(*patient, "before");
  EXPECT_EQ(quick->GetObject("outage/x").value_or(""), "before");
}

TEST_F(S3ClientTest, AnObjectChangedBehindTheClientsBackIsReadWithItsNewBytes) {
  ASSERT_TRUE(client_->PutObject("changed/x", "original bytes").ok());
  ASSERT_EQ(client_->GetObject("changed/x").value_or(""), "original bytes");
  ASSERT_EQ(client_->GetObjectRange("changed/x", 0, 8).value_or(""), "original");
  // Another writer (its own client and connections) replaces the object with other bytes.
  auto other = MakeClient(TestS3Server::kAccessKey, TestS3Server::kSecretKey, "cas");
  ASSERT_TRUE(other->PutObject("changed/x", "tampered, and longer than before").ok());
  EXPECT_EQ(client_->GetObject("changed/x").value_or(""), "tampered, and longer than before");
  EXPECT_EQ(client_->GetObjectRange("changed/x", 0, 8).value_or(""), "tampered");
  EXPECT_EQ(client_->HeadObject("changed/x").value_or(S3ObjectInfo{}).size, 32);
}

// A loopback HTTP server that holds each connection `delay` (forever when `answer` is false), then
// answers 404 and closes it; it counts the connections open at once.
class HoldingServer {
 public:
  HoldingServer(bool answer, absl::Duration delay) : answer_(answer), delay_(delay) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] {
      for (int c; (c = ::accept(fd_, nullptr, nullptr)) >= 0;) {
        held_.push_back(c);
        if (answer_) handlers_.emplace_back([this, c] { Answer(c); });
      }
    });
  }
  ~HoldingServer() {
    ::shutdown(fd_, SHUT_RDWR);  // ends accept()
    acceptor_.join();
    for (std::thread& handler : handlers_) handler.join();
    ::close(fd_);
    for (int c : held_) ::close(c);
  }
  int port() const { return port_; }
  int accepted() const { return static_cast<int>(held_.size()); }  // once the server is idle
  int most_at_once() const { return most_.load(); }

 private:
  void Answer(int c) {
    const int now = ++open_;
    for (int most = most_.load(); now > most && !most_.compare_exchange_weak(most, now);) {
    }
    std::string request;
    char buf[4096];
    for (ssize_t n; request.find("\r\n\r\n") == std::string::npos && (n = ::read(c, buf, sizeof(buf))) > 0;) {
      request.append(buf, static_cast<size_t>(n));
    }
    absl::SleepFor(delay_);  // the server's own slowness, not a wait for a condition
    --open_;  // before the answer: the client may start its next request as soon as it reads it
    const std::string answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    (void)!::write(c, answer.data(), answer.size());
    ::shutdown(c, SHUT_WR);
  }

  const bool answer_;
  const absl::Duration delay_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<int> open_{0}, most_{0};
  std::vector<int> held_;
  std::vector<std::thread> handlers_;
  std::thread acceptor_;
};

std::unique_ptr<S3Client> LoopbackClient(int port, int max_connections, absl::Duration attempt_timeout) {
  S3ClientOptions options;
  options.max_connections = max_connections;
  options.retry.attempt_timeout = attempt_timeout;
  options.retry.max_attempts = 1;
  return std::make_unique<S3Client>(*ParseS3Location(absl::StrCat("s3://bucket?endpoint=http://127.0.0.1:", port)),
                                    S3Credentials{"key", "secret"}, options);
}

TEST(S3ClientLoopbackTest, AServerThatNeverAnswersGivesDeadlineExceeded) {
  HoldingServer server(/*answer=*/false, absl::ZeroDuration());
  const absl::Time start = absl::Now();
  absl::Status status = LoopbackClient(server.port(), 1, absl::Milliseconds(300))->GetObject("x").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3)) << "the request outlived its deadline";
  EXPECT_TRUE(absl::StrContains(status.message(), absl::StrCat("127.0.0.1:", server.port()))) << status;
}

TEST(S3ClientLoopbackTest, NoMoreRequestsRunAtOnceThanTheConnectionCap) {
  HoldingServer server(/*answer=*/true, absl::Milliseconds(150));
  auto client = LoopbackClient(server.port(), 2, absl::Seconds(10));
  std::vector<absl::Status> results(6);
  std::vector<std::thread> callers;
  for (size_t i = 0; i < results.size(); ++i) {
    callers.emplace_back([&, i] { results[i] = client->GetObject(absl::StrCat("x", i)).status(); });
  }
  for (std::thread& caller : callers) caller.join();
  for (const absl::Status& status : results) EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_EQ(server.most_at_once(), 2);
}

TEST(S3ClientLoopbackTest, NoServerIsUnavailableNamingTheHost) {
  int port = 0;
  {
    HoldingServer closed(false, absl::ZeroDuration());  // a port that was free a moment ago, closed now
    port = closed.port();
  }
  absl::Status status = LoopbackClient(port, 1, absl::Seconds(5))->GetObject("x").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_TRUE(absl::StrContains(status.message(), absl::StrCat("127.0.0.1:", port))) << status;
}

}  // namespace
}  // namespace assay
