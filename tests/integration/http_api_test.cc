// The dashboard's JSON API (docs/dashboard.md) against the real coordinator and worker on loopback:
// one model with gRPC, the same tokens and scopes, pushed job changes and logs, rerunning the failed
// cells, drain from the API, the security headers, and bad requests refused with a clear error.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "tests/integration/farm.h"
#include "tests/integration/pki.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kReadToken[] = "read-token-0123456789abcdef";
constexpr char kAdminToken[] = "admin-token-0123456789abcdef";
constexpr char kSubmitToken[] = "submit-token-0123456789abcdef";

// A two-cell matrix: cell `good` passes, cell `bad` fails; each prints numbered lines.
constexpr char kPipeline[] = R"(name: web
matrix:
  kind: [good, bad]
steps:
  - id: build
    run: for i in 1 2 3; do echo "line $i of ${{ matrix.kind }}"; done; echo "<b>built</b>" > out.html; test ${{ matrix.kind }} = good
    outputs: [out.html]
)";

httplib::Headers Bearer(const char* token) { return {{"Authorization", absl::StrCat("Bearer ", token)}}; }

class HttpApiTest : public ::testing::Test {
 protected:
  void StartFarm(bool tokens) {
    std::vector<std::string> args;
    if (tokens) {
      const fs::path file = farm_.dir() / "tokens";
      ASSERT_TRUE(WriteFile(file, absl::StrCat(kReadToken, " read\n", kAdminToken, " read,admin,worker,submit,cache-read,cache-write\n",
                                               kSubmitToken, " read,submit,cache-read,cache-write\n"))
                      .ok());
      args = {"--token-file", file.string()};
      ClientSecurity client;
      client.token_file = (farm_.dir() / "admin-token").string();
      ASSERT_TRUE(WriteFile(client.token_file, std::string(kAdminToken) + "\n").ok());
      farm_.StartCoordinator(args);
      farm_.UseClientSecurity(client);
    } else {
      farm_.StartCoordinator();
    }
    ASSERT_GT(farm_.http_port(), 0);
    http_ = std::make_unique<httplib::Client>("127.0.0.1", farm_.http_port());
    http_->set_read_timeout(60, 0);
  }

  // GET `path` as JSON; fails the test unless the status is `status`.
  json GetJson(const std::string& path, const httplib::Headers& headers = {}, int status = 200) {
    auto response = http_->Get(path, headers);
    EXPECT_TRUE(response) << path;
    if (!response) return json();
    EXPECT_EQ(response->status, status) << path << ": " << response->body;
    return json::parse(response->body, nullptr, false);
  }

  // The `data:` lines of a pushed response, read until it ends or `until` says stop.
  std::vector<json> Events(const std::string& path, const std::function<bool(const json&)>& until = nullptr) {
    std::vector<json> events;
    std::string buffer;
    auto response = http_->Get(path, [&](const char* data, size_t size) {
      buffer.append(data, size);
      size_t end;
      while ((end = buffer.find("\n\n")) != std::string::npos) {
        std::string event = buffer.substr(0, end);
        buffer.erase(0, end + 2);
        if (!absl::StartsWith(event, "data: ")) continue;
        events.push_back(json::parse(event.substr(6), nullptr, false));
        if (until && until(events.back())) return false;
      }
      return true;
    });
    return events;
  }

  Farm farm_;
  std::unique_ptr<httplib::Client> http_;
  std::atomic<bool> stop_{false};
};

TEST_F(HttpApiTest, AJobIsTheSameMessageAsOverGrpcAndTheListFilters) {
  StartFarm(false);
  farm_.StartWorker("w1");
  auto tree = farm_.WriteTree("web", {{"assay.yaml", kPipeline}});
  ASSERT_EQ(farm_.Cli({"submit", tree.string(), "--wait", "--label", "branch=main", "--label", "user=ada"}).exit_code,
            1);
  ASSERT_EQ(farm_.Cli({"submit", tree.string(), "--wait", "--label", "branch=dev"}).exit_code, 1);

  auto over_grpc = farm_.GetJob("1");
  ASSERT_TRUE(over_grpc.ok()) << over_grpc.status();
  auto response = http_->Get("/api/v1/jobs/1");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  assay::v1::Job over_http;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(response->body, &over_http).ok()) << response->body;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(over_http, *over_grpc))
      << over_http.DebugString() << "\nvs\n" << over_grpc->DebugString();
  json job = json::parse(response->body);
  EXPECT_EQ(job["state"], "JOB_FAILED");
  EXPECT_TRUE(job["created_at_ms"].is_string()) << "64-bit integers are strings in protobuf's JSON";

  EXPECT_EQ(GetJson("/api/v1/jobs")["jobs"].size(), 2u);
  json main_jobs = GetJson("/api/v1/jobs?branch=main&state=failed&pipeline=web&submitter=ada");
  ASSERT_EQ(main_jobs["jobs"].size(), 1u) << main_jobs;
  EXPECT_EQ(main_jobs["jobs"][0]["id"], "1");
  EXPECT_TRUE(main_jobs["jobs"][0]["tasks"].empty()) << "the list carries no tasks";
  EXPECT_EQ(GetJson("/api/v1/jobs?state=succeeded")["jobs"].size(), 0u);
  EXPECT_EQ(GetJson("/api/v1/jobs?state=nonsense", {}, 400)["code"], "INVALID_ARGUMENT");
  EXPECT_EQ(GetJson("/api/v1/jobs/999", {}, 404)["code"], "NOT_FOUND");

  // An output file comes as an attachment, never rendered by the browser.
  std::string good_task;
  for (const auto& task : over_grpc->tasks()) {
    if (task.state() == assay::v1::TASK_SUCCEEDED) good_task = task.id();
  }
  auto artifact = http_->Get(absl::StrCat("/api/v1/jobs/1/artifact?task=", good_task, "&path=out.html"));
  ASSERT_TRUE(artifact);
  EXPECT_EQ(artifact->status, 200) << artifact->body;
  EXPECT_EQ(artifact->body, "<b>built</b>\n");
  EXPECT_EQ(artifact->get_header_value("Content-Disposition"), "attachment; filename=\"out.html\"");
  EXPECT_EQ(artifact->get_header_value("Content-Type"), "application/octet-stream");
  EXPECT_EQ(artifact->get_header_value("X-Content-Type-Options"), "nosniff");
  EXPECT_EQ(GetJson(absl::StrCat("/api/v1/jobs/1/artifact?task=", good_task, "&path=../etc/passwd"), {}, 404)["code"],
            "NOT_FOUND");

  RunResult web = farm_.Cli({"web"});
  EXPECT_EQ(web.exit_code, 0) << web.err;
  EXPECT_EQ(web.out, absl::StrCat("http://127.0.0.1:", farm_.http_port(), "/\n"));

  json trends = GetJson("/api/v1/trends?pipeline=web&branch=main");
  ASSERT_EQ(trends["jobs"].size(), 1u) << trends;
  EXPECT_EQ(trends["jobs"][0]["id"], "1");
}

TEST_F(HttpApiTest, ALiveJobIsPushedUntilItEndsAndTheLogComesTailFirst) {
  StartFarm(false);
  farm_.StartWorker("w1");
  // The step waits for a file the test writes once it has seen the job running over HTTP.
  const fs::path go = farm_.dir() / "go";
  auto tree = farm_.WriteTree("live", {{"assay.yaml", absl::StrCat(R"(name: live
steps:
  - id: talk
    run: for i in $(seq 1 200); do echo "early line $i"; done; while [ ! -e )", go.string(),
                                                                    R"( ]; do sleep 0.05; done; echo "late line"
)")}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  std::vector<std::string> states;
  std::string task_id;
  auto events = Events(absl::StrCat("/api/v1/jobs/", *id, "/events"), [&](const json& event) {
    for (const json& task : event["tasks"]) {
      task_id = task["id"].get<std::string>();
      states.push_back(task["state"].get<std::string>());
      if (task["state"] == "TASK_RUNNING") return true;
    }
    return false;
  });
  ASSERT_FALSE(events.empty());
  EXPECT_FALSE(events.front()["tasks"].empty()) << "the first event is the whole job";
  ASSERT_EQ(states.back(), "TASK_RUNNING");

  // Once the step has printed its early lines (and waits), a page opens its log: the last 64 bytes
  // at once (the latest lines), then the output as it comes.
  const std::string raw_path = absl::StrCat("/api/v1/jobs/", *id, "/log/raw?task=", task_id);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto raw = http_->Get(raw_path);
        return raw && absl::StrContains(raw->body, "early line 200\n");
      },
      absl::Seconds(60)));
  const std::string log_path = absl::StrCat("/api/v1/jobs/", *id, "/log?task=", task_id, "&tail=64&follow=1");
  std::string text;
  bool wrote_go = false;
  auto log = Events(log_path, [&](const json& event) {
    if (event.contains("start")) {
      EXPECT_GT(event["size"].get<int64_t>(), 200 * 12);
      EXPECT_EQ(event["offset"].get<int64_t>(), event["size"].get<int64_t>() - 64);
      return false;
    }
    text += event["text"].get<std::string>();
    if (!wrote_go && absl::StrContains(text, "early line 200\n")) {
      EXPECT_FALSE(absl::StrContains(text, "early line 190\n")) << "more than the tail came first: " << text;
      wrote_go = WriteFile(go, "").ok();
    }
    return false;
  });
  ASSERT_GE(log.size(), 2u);
  EXPECT_TRUE(wrote_go) << text;
  EXPECT_TRUE(absl::StrContains(text, "late line\n")) << "the stream follows the step to its end: " << text;

  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  // The whole job's events end with its final state.
  auto after = Events(absl::StrCat("/api/v1/jobs/", *id, "/events"));
  ASSERT_FALSE(after.empty());
  EXPECT_EQ(after.back()["state"], "JOB_SUCCEEDED");

  // A range of the log ("load earlier") and the raw text agree with gRPC's StreamLogs.
  const std::string whole = farm_.Log(*id, task_id);
  json range = GetJson(absl::StrCat("/api/v1/jobs/", *id, "/log/range?task=", task_id, "&offset=10&length=100"));
  std::string ranged;
  for (const json& chunk : range["chunks"]) ranged += chunk["text"].get<std::string>();
  EXPECT_EQ(ranged, whole.substr(10, 100));
  EXPECT_EQ(range["size"].get<int64_t>(), static_cast<int64_t>(whole.size()));
  auto raw = http_->Get(absl::StrCat("/api/v1/jobs/", *id, "/log/raw?task=", task_id));
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->body, whole);
  EXPECT_EQ(raw->get_header_value("X-Content-Type-Options"), "nosniff");
}

TEST_F(HttpApiTest, TokensAndScopesAreTheGrpcOnes) {
  StartFarm(true);
  farm_.StartWorker("w1");
  auto missing = http_->Get("/api/v1/jobs");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  EXPECT_EQ(missing->get_header_value("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(GetJson("/api/v1/jobs", Bearer("not-a-token-at-all-0000"), 401)["code"], "UNAUTHENTICATED");
  json session = GetJson("/api/v1/session", Bearer(kReadToken));
  EXPECT_EQ(session["auth"], true);
  EXPECT_EQ(session["scopes"], json::array({"read"}));

  const std::string drain = "/api/v1/workers/w1/state";
  const std::string body = R"({"state": "WORKER_DRAINING"})";
  auto refused = http_->Post(drain, Bearer(kReadToken), body, "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403) << refused->body;
  EXPECT_TRUE(absl::StrContains(refused->body, "admin")) << refused->body;
  ASSERT_EQ(farm_.Workers().at(0).admin_state(), assay::v1::WORKER_ACTIVE) << "a refused call changes nothing";

  auto drained = http_->Post(drain, Bearer(kAdminToken), body, "application/json");
  ASSERT_TRUE(drained);
  ASSERT_EQ(drained->status, 200) << drained->body;
  EXPECT_EQ(json::parse(drained->body)["admin_state"], "WORKER_DRAINING");
  EXPECT_EQ(farm_.Workers().at(0).admin_state(), assay::v1::WORKER_DRAINING) << "gRPC sees what the page did";

  auto bad = http_->Post(drain, Bearer(kAdminToken), R"({"state": "ASLEEP"})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
  auto unknown = http_->Post("/api/v1/workers/nobody/state", Bearer(kAdminToken), body, "application/json");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  EXPECT_EQ(GetJson("/api/v1/workers", Bearer(kReadToken))["workers"].size(), 1u) << "read may look at the fleet";
}

TEST_F(HttpApiTest, RerunFailedRunsOnlyTheFailedCellsAsANewJob) {
  StartFarm(true);
  farm_.StartWorker("w1");
  auto tree = farm_.WriteTree("web", {{"assay.yaml", kPipeline}});
  ASSERT_EQ(farm_.Cli({"submit", tree.string(), "--wait"}).exit_code, 1);
  auto refused = http_->Post("/api/v1/jobs/1/rerun-failed", Bearer(kReadToken), "", "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  auto rerun = http_->Post("/api/v1/jobs/1/rerun-failed", Bearer(kSubmitToken), "", "application/json");
  ASSERT_TRUE(rerun);
  ASSERT_EQ(rerun->status, 200) << rerun->body;
  json created = json::parse(rerun->body);
  EXPECT_EQ(created["labels"]["rerun_of"], "1");
  ASSERT_EQ(created["tasks"].size(), 1u) << created;
  const std::string task = created["tasks"][0]["id"];
  EXPECT_EQ(created["tasks"][0]["matrix"]["kind"], "bad") << created;
  auto job = farm_.WaitJob(created["id"].get<std::string>());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_FAILED);
  EXPECT_TRUE(absl::StrContains(farm_.Log(job->id(), task), "line 3 of bad"));
}

TEST_F(HttpApiTest, ThePageIsServedWithAStrictPolicyAndNothingOutsideItsFolders) {
  StartFarm(false);
  auto page = http_->Get("/");
  ASSERT_TRUE(page);
  const std::string csp = page->get_header_value("Content-Security-Policy");
  EXPECT_TRUE(absl::StrContains(csp, "script-src 'self'")) << csp;
  EXPECT_TRUE(absl::StrContains(csp, "connect-src 'self'")) << csp;
  EXPECT_FALSE(absl::StrContains(csp, "unsafe")) << csp;
  EXPECT_EQ(page->get_header_value("X-Content-Type-Options"), "nosniff");
  for (const char* path : {"/app/../../../etc/passwd", "/app/%2e%2e/%2e%2e/etc/passwd", "/vendor/../index.html",
                           "/etc/passwd"}) {
    auto response = http_->Get(path);
    ASSERT_TRUE(response) << path;
    EXPECT_GE(response->status, 400) << path;
    EXPECT_FALSE(absl::StrContains(response->body, "root:")) << path;
  }
  auto big = http_->Post("/api/v1/workers/w/state", std::string(2 << 20, 'x'), "application/json");
  ASSERT_TRUE(big);
  EXPECT_EQ(big->status, 413);
}

TEST_F(HttpApiTest, WithTlsThePageIsServedOverHttpsWithTheGrpcCertificate) {
  TestPki pki(farm_.dir() / "pki");
  const fs::path tokens = farm_.dir() / "tokens";
  ASSERT_TRUE(WriteFile(tokens, absl::StrCat(kAdminToken, " read,admin,worker,submit,cache-read,cache-write\n")).ok());
  ClientSecurity client;
  client.ca_file = pki.Path("ca.pem");
  client.token_file = (farm_.dir() / "token").string();
  ASSERT_TRUE(WriteFile(client.token_file, std::string(kAdminToken) + "\n").ok());
  farm_.UseClientSecurity(client);
  farm_.StartCoordinator({"--tls-cert", pki.Path("server.pem"), "--tls-key", pki.Path("server.key"), "--token-file",
                          tokens.string()});
  httplib::SSLClient https("127.0.0.1", farm_.http_port());
  https.set_ca_cert_path(pki.Path("ca.pem").c_str());
  https.enable_server_certificate_verification(true);
  auto session = https.Get("/api/v1/session", Bearer(kAdminToken));
  ASSERT_TRUE(session) << httplib::to_string(session.error());
  EXPECT_EQ(session->status, 200) << session->body;
  RunResult web = farm_.Cli({"web"});
  EXPECT_EQ(web.out, absl::StrCat("https://127.0.0.1:", farm_.http_port(), "/\n")) << web.err;
  httplib::Client plain("127.0.0.1", farm_.http_port());
  auto refused = plain.Get("/api/v1/session", Bearer(kAdminToken));
  EXPECT_TRUE(!refused || refused->status != 200) << "no plaintext beside TLS";
}

TEST(HttpApiPolicyTest, AnAddressBeyondLoopbackWithoutTlsIsRefusedAtStart) {
  ScopedTempDir dir("assay-http-policy");
  RunResult run = RunCommand({BinaryPath("assay-coordinator"), "--data", (dir.path() / "data").string(), "--listen",
                              "127.0.0.1:0", "--http-listen", "0.0.0.0:0"},
                             absl::Seconds(60));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(run.err + run.out, "--http-listen 0.0.0.0:0 is reachable from other hosts"))
      << run.err << run.out;
  EXPECT_FALSE(fs::exists(dir.path() / "data")) << "refused before the database is opened";
}

TEST_F(HttpApiTest, PushedStreamsAreCappedAndTheGrpcSideStaysFast) {
  farm_.StartCoordinator({"--http-listen", "127.0.0.1:0", "--http-port-file", (farm_.dir() / "hp").string(),
                          "--http-max-streams", "3"});
  int port = 0;  // the dashboard's port file is written once it serves, after the gRPC one the farm waits for
  ASSERT_TRUE(WaitFor(
      [&] { return absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(farm_.dir() / "hp").value_or("")), &port); },
      absl::Seconds(30)));
  std::vector<std::unique_ptr<httplib::Client>> clients;
  std::vector<std::thread> readers;
  std::atomic<int> opened{0};
  for (int i = 0; i < 3; ++i) {
    clients.push_back(std::make_unique<httplib::Client>("127.0.0.1", port));
    readers.emplace_back([&, client = clients.back().get()] {
      client->Get("/api/v1/workers/events", [&](const char*, size_t) {
        ++opened;
        return !stop_.load();
      });
    });
  }
  ASSERT_TRUE(WaitFor([&] { return opened.load() >= 3; }, absl::Seconds(30)));
  httplib::Client fourth("127.0.0.1", port);
  auto refused = fourth.Get("/api/v1/workers/events");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 503) << refused->body;
  const absl::Time start = absl::Now();
  EXPECT_TRUE(farm_.GetJob("1").status().code() == absl::StatusCode::kNotFound ||
              farm_.GetJob("1").status().code() == absl::StatusCode::kInvalidArgument);
  EXPECT_LT(absl::Now() - start, absl::Seconds(1)) << "open pages do not slow gRPC";
  stop_ = true;
  for (auto& client : clients) client->stop();
  for (auto& reader : readers) reader.join();
}

}  // namespace
}  // namespace assay::testing
