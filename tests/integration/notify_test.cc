// Notifications from the real coordinator to an HTTP receiver the test starts on loopback: a signed
// webhook for a failing job naming its failed cells, `recovered` only on the first success after a
// failure, a receiver that is down getting the notification once it is back (across a coordinator
// restart too), a GitHub-style commit status, and a pipeline naming an unknown target refused.
#include <grpcpp/client_context.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/base/file_util.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;

struct Received {
  std::string path;
  std::map<std::string, std::string> headers;
  std::string body;
};

// An HTTP server on 127.0.0.1 that records every POST and answers 200.
class Receiver {
 public:
  // `port` 0: any free port.
  explicit Receiver(int port = 0) { Start(port); }
  ~Receiver() { Stop(); }

  void Start(int port) {
    server_ = std::make_unique<httplib::Server>();
    server_->Post(".*", [this](const httplib::Request& request, httplib::Response& response) {
      Received r{request.path, {}, request.body};
      for (const auto& [name, value] : request.headers) r.headers[name] = value;
      absl::MutexLock lock(&mu_);
      received_.push_back(std::move(r));
      response.set_content("{}", "application/json");
    });
    if (port == 0) {
      port_ = server_->bind_to_any_port("127.0.0.1");
    } else {
      ASSERT_TRUE(server_->bind_to_port("127.0.0.1", port)) << "port " << port << " is taken";
      port_ = port;
    }
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    ASSERT_TRUE(WaitFor([&] { return server_->is_running(); }, absl::Seconds(10)));
  }
  void Stop() {
    if (!server_) return;
    server_->stop();
    thread_.join();
    server_.reset();
  }
  int port() const { return port_; }
  std::string url(const std::string& path = "") const { return absl::StrCat("http://127.0.0.1:", port_, path); }

  // Waits (up to `timeout`) for `n` requests; returns what arrived.
  std::vector<Received> WaitFor(size_t n, absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return received_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
    return received_;
  }

 private:
  static bool WaitFor(const std::function<bool()>& c, absl::Duration d) { return assay::testing::WaitFor(c, d); }
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  absl::Mutex mu_;
  std::vector<Received> received_ ABSL_GUARDED_BY(mu_);
};

std::string Hmac(const std::string& key, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &length);
  return "sha256=" + absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(mac), length));
}

// A notify config naming the receiver, written into the farm's folder with its secret beside it.
std::string WriteConfig(Farm& farm, const std::string& targets) {
  EXPECT_TRUE(WriteFile(farm.dir() / "hook.secret", "hook-key\n").ok());
  EXPECT_TRUE(WriteFile(farm.dir() / "gh.token", "gh-token\n").ok());
  const fs::path config = farm.dir() / "notify.yaml";
  EXPECT_TRUE(WriteFile(config, absl::StrCat("job_url: http://farm.example/jobs/{job}\n"
                                             "retry: {initial: 100ms, max: 400ms}\n"
                                             "targets:\n",
                                             targets))
                  .ok());
  return config.string();
}

// A matrix of two cells whose `test` step fails in cell 2 unless `fixed`.
std::map<std::string, std::string> Pipeline(bool fixed, const std::string& notify, const std::string& salt = "") {
  return {{"assay.yaml", absl::StrCat("name: fw\n", notify, R"(
matrix:
  n: [1, 2]
steps:
  - id: test
    run: )", fixed ? "true" : "test ${{ matrix.n }} != 2", "\n")},
          {"salt.txt", salt}};
}

std::string SubmitWait(Farm& farm, const fs::path& tree, const std::vector<std::string>& labels = {}) {
  std::vector<std::string> args = {"submit", tree.string()};
  for (const auto& l : labels) {
    args.push_back("--label");
    args.push_back(l);
  }
  RunResult r = farm.Cli(args);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string id(absl::StripAsciiWhitespace(r.out));
  auto job = farm.WaitJob(id);
  EXPECT_TRUE(job.ok()) << job.status();
  return id;
}

TEST(NotifyTest, AFailingJobSendsOneSignedWebhookAndRecoveredFiresOnlyOnce) {
  Receiver receiver;
  Farm farm;
  const fs::path metrics_port_file = farm.dir() / "metrics-port";
  farm.StartCoordinator({"--notify-config",
                         WriteConfig(farm, absl::StrCat("  team-hook: {kind: webhook, url: ", receiver.url("/hook"),
                                                        ", secret_file: hook.secret}\n")),
                         "--metrics-listen", "127.0.0.1:0", "--metrics-port-file", metrics_port_file.string()});
  farm.StartWorker("w1");
  const std::string notify = "notify: [{to: team-hook, on: [failure, recovered]}]\n";

  const std::string failed = SubmitWait(farm, farm.WriteTree("failing", Pipeline(false, notify)));
  EXPECT_EQ(farm.GetJob(failed)->state(), assay::v1::JOB_FAILED);
  auto got = receiver.WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].path, "/hook");
  EXPECT_EQ(got[0].headers["X-Assay-Event"], "failure");
  EXPECT_EQ(got[0].headers["X-Assay-Signature-256"], Hmac("hook-key", got[0].body)) << "the signature must verify";
  auto body = nlohmann::json::parse(got[0].body);
  EXPECT_EQ(body["event"], "failure");
  EXPECT_EQ(body["job_id"], failed);
  EXPECT_EQ(body["failed_tasks"], nlohmann::json::array({"2/test"}));
  EXPECT_EQ(body["job_url"], absl::StrCat("http://farm.example/jobs/", failed));
  EXPECT_EQ(body["job"]["state"], "JOB_FAILED");

  RunResult list = farm.Cli({"notifications", failed});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(absl::StrContains(list.out, "team-hook")) << list.out;
  EXPECT_TRUE(absl::StrContains(list.out, "delivered")) << list.out;

  const std::string recovered = SubmitWait(farm, farm.WriteTree("fixed", Pipeline(true, notify)));
  EXPECT_EQ(farm.GetJob(recovered)->state(), assay::v1::JOB_SUCCEEDED);
  got = receiver.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].headers["X-Assay-Event"], "recovered");
  EXPECT_EQ(got[1].headers["X-Assay-Signature-256"], Hmac("hook-key", got[1].body));

  // A second success is no recovery: the job raises no notification at all (they are written with
  // the job's final state, so none can come later).
  const std::string again = SubmitWait(farm, farm.WriteTree("again", Pipeline(true, notify, "another input")));
  EXPECT_EQ(farm.GetJob(again)->state(), assay::v1::JOB_SUCCEEDED);
  RunResult none = farm.Cli({"notifications", again, "--json"});
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_FALSE(absl::StrContains(none.out, "team-hook")) << none.out;
  EXPECT_EQ(receiver.WaitFor(2).size(), 2u);

  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(metrics_port_file).value_or("")), &port));
  httplib::Client client("127.0.0.1", port);
  auto scrape = client.Get("/metrics");
  ASSERT_TRUE(scrape) << "no answer from the metrics endpoint";
  EXPECT_TRUE(absl::StrContains(scrape->body, R"(assay_notifications_total{outcome="delivered",target="team-hook"} 2)"))
      << scrape->body;
  EXPECT_TRUE(absl::StrContains(scrape->body, R"(assay_notifications_pending{target="team-hook"} 0)")) << scrape->body;
}

TEST(NotifyTest, AReceiverThatIsDownGetsTheNotificationWhenBackEvenAcrossACoordinatorRestart) {
  auto receiver = std::make_unique<Receiver>();
  const int port = receiver->port();
  receiver->Stop();  // down: nothing listens on its port
  Farm farm;
  const std::vector<std::string> args = {
      "--notify-config", WriteConfig(farm, absl::StrCat("  team-hook: {kind: webhook, url: http://127.0.0.1:", port,
                                                        "/hook, secret_file: hook.secret}\n"))};
  farm.StartCoordinator(args);
  farm.StartWorker("w1");
  const std::string id = SubmitWait(farm, farm.WriteTree("failing", Pipeline(false, "notify: [{to: team-hook, on: [failure]}]\n")));
  // Tried and failed at least twice, still pending.
  ASSERT_TRUE(WaitFor(
      [&] {
        RunResult r = farm.Cli({"notifications", id, "--json"});
        return absl::StrContains(r.out, "\"attempts\": 2") || absl::StrContains(r.out, "\"attempts\": 3");
      },
      absl::Seconds(30)));
  EXPECT_TRUE(absl::StrContains(farm.Cli({"notifications", id}).out, "pending"));

  farm.StopCoordinator(SIGKILL);
  receiver->Start(port);
  farm.StartCoordinator(args);
  auto got = receiver->WaitFor(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].headers["X-Assay-Event"], "failure");
  EXPECT_EQ(nlohmann::json::parse(got[0].body)["job_id"], id);
  ASSERT_TRUE(WaitFor([&] { return absl::StrContains(farm.Cli({"notifications", id}).out, "delivered"); },
                      absl::Seconds(10)));
}

TEST(NotifyTest, AGitHubCommitStatusHasTheDocumentedPathStateContextAndLink) {
  Receiver receiver;
  Farm farm;
  farm.StartCoordinator({"--notify-config",
                         WriteConfig(farm, absl::StrCat("  gh: {kind: github, url: ", receiver.url(), ", token_file: gh.token}\n"))});
  farm.StartWorker("w1");
  const std::string sha = "0123456789abcdef0123456789abcdef01234567";
  const std::string id = SubmitWait(farm, farm.WriteTree("fw", Pipeline(false, "notify: [{to: gh}]\n")),
                                    {"commit=" + sha, "repo=acme/fw"});
  auto got = receiver.WaitFor(2);
  ASSERT_EQ(got.size(), 2u);  // started, then failure
  for (const Received& r : got) {
    EXPECT_EQ(r.path, "/repos/acme/fw/statuses/" + sha);
    EXPECT_EQ(r.headers.at("Authorization"), "Bearer gh-token");
  }
  auto started = nlohmann::json::parse(got[0].body);
  auto ended = nlohmann::json::parse(got[1].body);
  EXPECT_EQ(started["state"], "pending");
  EXPECT_EQ(ended["state"], "failure");
  EXPECT_EQ(ended["context"], "assay/fw");
  EXPECT_EQ(ended["target_url"], absl::StrCat("http://farm.example/jobs/", id));
  EXPECT_EQ(ended["description"], "1 of 2 tasks failed: 2/test");
}

TEST(NotifyTest, APipelineNamingAnUnknownTargetIsRefusedAtSubmitWithItsLine) {
  Receiver receiver;
  Farm farm;
  farm.StartCoordinator({"--notify-config",
                         WriteConfig(farm, absl::StrCat("  team-hook: {kind: webhook, url: ", receiver.url(),
                                                        ", secret_file: hook.secret}\n"))});
  auto tree = farm.WriteTree("typo", Pipeline(true, "notify:\n  - to: team-hok\n"));
  RunResult r = farm.Cli({"submit", tree.string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "assay.yaml:3: notify[0]: no notification target 'team-hok' is configured on "
                                       "this coordinator (configured: team-hook)"))
      << r.err;
  assay::v1::ListJobsResponse jobs;
  grpc::ClientContext context;
  ASSERT_TRUE(farm.jobs()->ListJobs(&context, assay::v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0) << "a refused submission makes no job";

  // A coordinator given a config with a mistake does not start, and says where.
  ASSERT_TRUE(WriteFile(farm.dir() / "bad.yaml", "targets:\n  x: {kind: webhook, url: http://h/, secret_file: hook.secret, to: y}\n").ok());
  RunResult bad = RunCommand({BinaryPath("assay-coordinator"), "--data", (farm.dir() / "other-data").string(), "--listen",
                              "127.0.0.1:0", "--notify-config", (farm.dir() / "bad.yaml").string()},
                             absl::Seconds(30));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(bad.err + bad.out, "bad.yaml:2:") && absl::StrContains(bad.err + bad.out, "unknown key 'to'"))
      << bad.err << bad.out;
}

}  // namespace
}  // namespace assay::testing
