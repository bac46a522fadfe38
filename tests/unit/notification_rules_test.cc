// What notifications say and to whom: the admin's --notify-config, the pipeline's `notify:`, the
// events a job's state changes raise, and the requests they become (webhook signature, GitHub and
// GitLab commit statuses). Pure functions, no network.
#include "coordinator/notification_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/base/file_util.h"
#include "common/pipeline/pipeline.h"

namespace assay {
namespace {

using assay::v1::Job;
using ::testing::HasSubstr;

NotifyConfig Config(const ScopedTempDir& dir, const std::string& text) {
  auto config = ParseNotifyConfig(text, "notify.yaml", dir.path().string());
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *config : NotifyConfig();
}

std::string ConfigError(const ScopedTempDir& dir, const std::string& text) {
  auto config = ParseNotifyConfig(text, "notify.yaml", dir.path().string());
  EXPECT_FALSE(config.ok()) << text;
  return config.ok() ? "" : std::string(config.status().message());
}

TEST(NotifyConfigTest, TargetsReadTheirSecretsFromFilesBesideTheConfig) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteFile(dir.path() / "hook.secret", "s3cret\n").ok());
  ASSERT_TRUE(WriteFile(dir.path() / "gh.token", "ghp_token\n").ok());
  NotifyConfig config = Config(dir, R"(job_url: https://farm.example.com/jobs/{job}
retry: {initial: 200ms, max: 2s}
targets:
  team-hook: {kind: webhook, url: http://127.0.0.1:8080/hook, secret_file: hook.secret}
  gh: {kind: github, token_file: gh.token, context: "ci/{pipeline}"}
)");
  ASSERT_EQ(config.targets.size(), 2u);
  EXPECT_EQ(config.targets["team-hook"].secret, "s3cret");
  EXPECT_EQ(config.targets["team-hook"].kind, NotifyTarget::Kind::kWebhook);
  EXPECT_EQ(config.targets["gh"].url, "https://api.github.com");
  EXPECT_EQ(config.targets["gh"].secret, "ghp_token");
  EXPECT_EQ(config.targets["gh"].context, "ci/{pipeline}");
  EXPECT_EQ(config.retry_initial, absl::Milliseconds(200));
  EXPECT_EQ(config.retry_max, absl::Seconds(2));
  EXPECT_EQ(config.give_up_after, absl::Hours(24));
  EXPECT_EQ(JobUrl(config, "42"), "https://farm.example.com/jobs/42");
}

TEST(NotifyConfigTest, MistakesNameTheFileLineAndKey) {
  ScopedTempDir dir;
  ASSERT_TRUE(WriteFile(dir.path() / "s", "x").ok());
  EXPECT_EQ(ConfigError(dir, "targets:\n  a: {kind: webhook, url: http://h/, secret_file: s, colour: red}\n"),
            "notify.yaml:2:54: unknown key 'colour' in targets.a (known: ca_file, context, kind, secret_file, token_file, url)");
  EXPECT_THAT(ConfigError(dir, "targets:\n  a: {kind: slack, url: http://h/, secret_file: s}\n"), HasSubstr("notify.yaml:2:13: targets.a.kind 'slack' is not webhook, github or gitlab"));
  EXPECT_THAT(ConfigError(dir, "targets:\n  a: {kind: webhook, url: ftp://h/, secret_file: s}\n"), HasSubstr("targets.a.url 'ftp://h/' must start with https:// or http://"));
  EXPECT_THAT(ConfigError(dir, "targets:\n  a: {kind: webhook, url: http://h/, secret_file: missing}\n"), HasSubstr("targets.a.secret_file: cannot read"));
  EXPECT_THAT(ConfigError(dir, "targets:\n  a: {kind: github, secret_file: s}\n"), HasSubstr("a github target takes 'token_file', not 'secret_file'"));
  EXPECT_THAT(ConfigError(dir, "targets:\n  a: {kind: gitlab, token_file: s}\n"), HasSubstr("targets.a has no 'url'"));
  EXPECT_THAT(ConfigError(dir, "targets:\n  'a b': {kind: webhook, url: http://h/, secret_file: s}\n"), HasSubstr("target name 'a b' may hold only"));
  EXPECT_THAT(ConfigError(dir, "retry: {initial: soon}\ntargets: {}\n"), HasSubstr("notify.yaml:1:18: retry.initial"));
  EXPECT_THAT(ConfigError(dir, "targets: [\n"), HasSubstr("notify.yaml:"));
}

TEST(NotifyPipelineTest, NotifyIsAListOfTargetsAndEvents) {
  auto p = ParsePipeline("notify:\n  - {to: team-hook, on: [failure, recovered]}\n  - to: gh\nsteps:\n  - id: a\n    run: x\n",
                         "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->notify.size(), 2u);
  EXPECT_EQ(p->notify[0].on, (std::vector<std::string>{"failure", "recovered"}));
  EXPECT_EQ(p->notify[0].line, 2);
  EXPECT_EQ(p->notify[1].on, DefaultNotifyEvents());
  auto error = [](const std::string& notify) {
    auto parsed = ParsePipeline(notify + "steps:\n  - id: a\n    run: x\n", "assay.yaml");
    return parsed.ok() ? std::string("accepted") : std::string(parsed.status().message());
  };
  EXPECT_THAT(error("notify: [{to: a, on: [failed]}]\n"), HasSubstr("assay.yaml:1:22: notify[0].on: 'failed' is not an event (started, success, failure, cancelled, recovered)"));
  EXPECT_THAT(error("notify: [{on: [failure]}]\n"), HasSubstr("notify[0] has no 'to'"));
  EXPECT_THAT(error("notify: [{to: a, url: 'http://evil/'}]\n"), HasSubstr("unknown key 'url'"));
  EXPECT_THAT(error("notify: [{to: a}, {to: a}]\n"), HasSubstr("notify[1].to names 'a' twice"));
  EXPECT_THAT(error("notify: {to: a}\n"), HasSubstr("notify must be a list"));
}

TEST(NotificationRulesTest, JobStateChangesAreEvents) {
  EXPECT_EQ(JobEvent(assay::v1::JOB_QUEUED, assay::v1::JOB_RUNNING), "started");
  EXPECT_EQ(JobEvent(assay::v1::JOB_RUNNING, assay::v1::JOB_SUCCEEDED), "success");
  EXPECT_EQ(JobEvent(assay::v1::JOB_QUEUED, assay::v1::JOB_SUCCEEDED), "success");  // every task cached
  EXPECT_EQ(JobEvent(assay::v1::JOB_RUNNING, assay::v1::JOB_FAILED), "failure");
  EXPECT_EQ(JobEvent(assay::v1::JOB_QUEUED, assay::v1::JOB_CANCELLED), "cancelled");
  EXPECT_EQ(JobEvent(assay::v1::JOB_RUNNING, assay::v1::JOB_RUNNING), "");
}

TEST(NotificationRulesTest, ARecoveryIsToldAsRecoveredOnlyToTargetsThatAskForIt) {
  assay::v1::NotifySpec failures_and_recoveries;
  failures_and_recoveries.add_on("failure");
  failures_and_recoveries.add_on("recovered");
  EXPECT_EQ(EventFor(failures_and_recoveries, "success", /*recovered=*/true), "recovered");
  EXPECT_EQ(EventFor(failures_and_recoveries, "success", /*recovered=*/false), "");
  EXPECT_EQ(EventFor(failures_and_recoveries, "failure", false), "failure");
  assay::v1::NotifySpec successes;
  successes.add_on("success");
  EXPECT_EQ(EventFor(successes, "success", /*recovered=*/true), "success");
  EXPECT_EQ(EventFor(successes, "started", false), "");
}

TEST(NotificationRulesTest, SignatureIsHmacSha256OfTheBody) {
  // RFC 4231, test case 2.
  EXPECT_EQ(SignBody("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

Job FailedJob() {
  Job job;
  job.set_id("17");
  job.set_name("fw");
  job.set_state(assay::v1::JOB_FAILED);
  job.set_task_count(2);
  (*job.mutable_labels())["commit"] = "0123456789abcdef0123456789abcdef01234567";
  (*job.mutable_labels())["repo"] = "acme/fw";
  auto* ok = job.add_tasks();
  ok->set_id("cm3/build");
  ok->set_state(assay::v1::TASK_SUCCEEDED);
  auto* failed = job.add_tasks();
  failed->set_id("cm3/test");
  failed->set_state(assay::v1::TASK_FAILED);
  return job;
}

std::string Header(const HttpRequest& r, const std::string& name) {
  for (const auto& [n, v] : r.headers) {
    if (n == name) return v;
  }
  return "";
}

TEST(NotificationRulesTest, AWebhookCarriesTheSignedJobAndNamesTheFailedCells) {
  NotifyConfig config;
  config.job_url = "https://farm/jobs/{job}";
  NotifyTarget target{"hook", NotifyTarget::Kind::kWebhook, "http://127.0.0.1:1/hook", "key", "", ""};
  assay::v1::Notification n;
  n.set_id("17-3");
  n.set_event("failure");
  auto request = BuildNotificationRequest(config, target, n, FailedJob());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->url, "http://127.0.0.1:1/hook");
  EXPECT_EQ(Header(*request, "X-Assay-Signature-256"), SignBody("key", request->body));
  EXPECT_EQ(Header(*request, "X-Assay-Event"), "failure");
  EXPECT_EQ(Header(*request, "X-Assay-Delivery"), "17-3");
  auto body = nlohmann::json::parse(request->body);
  EXPECT_EQ(body["event"], "failure");
  EXPECT_EQ(body["job_url"], "https://farm/jobs/17");
  EXPECT_EQ(body["failed_tasks"], nlohmann::json::array({"cm3/test"}));
  EXPECT_EQ(body["job"]["id"], "17");
  EXPECT_EQ(body["job"]["tasks"][1]["state"], "TASK_FAILED");
}

TEST(NotificationRulesTest, CommitStatusesUseTheDocumentedPathsStatesAndContext) {
  NotifyConfig config;
  config.job_url = "https://farm/jobs/{job}";
  NotifyTarget gh{"gh", NotifyTarget::Kind::kGitHub, "https://api.github.com", "tok", "assay/{pipeline}", ""};
  assay::v1::Notification n;
  n.set_event("failure");
  auto request = BuildNotificationRequest(config, gh, n, FailedJob());
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->url, "https://api.github.com/repos/acme/fw/statuses/0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(Header(*request, "Authorization"), "Bearer tok");
  auto body = nlohmann::json::parse(request->body);
  EXPECT_EQ(body["state"], "failure");
  EXPECT_EQ(body["context"], "assay/fw");
  EXPECT_EQ(body["target_url"], "https://farm/jobs/17");
  EXPECT_EQ(body["description"], "1 of 2 tasks failed: cm3/test");
  n.set_event("started");
  EXPECT_EQ(nlohmann::json::parse(BuildNotificationRequest(config, gh, n, FailedJob())->body)["state"], "pending");

  NotifyTarget gl{"gl", NotifyTarget::Kind::kGitLab, "https://gitlab.example.com/api/v4", "tok", "assay", ""};
  Job job = FailedJob();
  (*job.mutable_labels())["repo"] = "group/sub/fw";
  n.set_event("cancelled");
  request = BuildNotificationRequest(config, gl, n, job);
  ASSERT_TRUE(request.ok()) << request.status();
  EXPECT_EQ(request->url,
            "https://gitlab.example.com/api/v4/projects/group%2Fsub%2Ffw/statuses/0123456789abcdef0123456789abcdef01234567");
  EXPECT_EQ(Header(*request, "PRIVATE-TOKEN"), "tok");
  body = nlohmann::json::parse(request->body);
  EXPECT_EQ(body["state"], "canceled");
  EXPECT_EQ(body["name"], "assay");
}

TEST(NotificationRulesTest, StatusLabelsAreCheckedBeforeTheyReachAUrl) {
  Job job = FailedJob();
  EXPECT_TRUE(CheckStatusLabels(job, NotifyTarget::Kind::kGitHub).ok());
  (*job.mutable_labels())["commit"] = "main";
  EXPECT_FALSE(CheckStatusLabels(job, NotifyTarget::Kind::kGitHub).ok());
  job = FailedJob();
  for (const char* repo : {"acme", "acme/fw/x", "acme/..", "acme/f w", "acme/fw?x=1"}) {
    (*job.mutable_labels())["repo"] = repo;
    EXPECT_FALSE(CheckStatusLabels(job, NotifyTarget::Kind::kGitHub).ok()) << repo;
  }
  (*job.mutable_labels())["repo"] = "acme/fw/x";
  EXPECT_TRUE(CheckStatusLabels(job, NotifyTarget::Kind::kGitLab).ok());
}

TEST(NotificationRulesTest, AnswersAreDeliveredRetriedOrGivenUp) {
  EXPECT_EQ(JudgeResponse(200), DeliveryVerdict::kDelivered);
  EXPECT_EQ(JudgeResponse(204), DeliveryVerdict::kDelivered);
  EXPECT_EQ(JudgeResponse(500), DeliveryVerdict::kRetry);
  EXPECT_EQ(JudgeResponse(503), DeliveryVerdict::kRetry);
  EXPECT_EQ(JudgeResponse(429), DeliveryVerdict::kRetry);
  EXPECT_EQ(JudgeResponse(408), DeliveryVerdict::kRetry);
  EXPECT_EQ(JudgeResponse(401), DeliveryVerdict::kGiveUp);
  EXPECT_EQ(JudgeResponse(404), DeliveryVerdict::kGiveUp);
  EXPECT_EQ(JudgeResponse(422), DeliveryVerdict::kGiveUp);
}

}  // namespace
}  // namespace assay
