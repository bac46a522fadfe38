#include "coordinator/notification_rules.h"

#include <google/protobuf/util/json_util.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/task/task_states.h"

namespace assay {

using assay::v1::Job;
using assay::v1::JobState;

std::string JobEvent(JobState previous, JobState now) {
  if (previous == now) return "";
  switch (now) {
    case assay::v1::JOB_RUNNING: return previous == assay::v1::JOB_QUEUED ? "started" : "";
    case assay::v1::JOB_SUCCEEDED: return "success";
    case assay::v1::JOB_FAILED: return "failure";
    case assay::v1::JOB_CANCELLED: return "cancelled";
    default: return "";
  }
}

std::string EventFor(const assay::v1::NotifySpec& spec, const std::string& event, bool recovered) {
  auto wants = [&](const std::string& e) { return std::find(spec.on().begin(), spec.on().end(), e) != spec.on().end(); };
  if (event == "success" && recovered && wants("recovered")) return "recovered";
  return wants(event) ? event : "";
}

std::string SignBody(const std::string& secret, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(body.data()),
       body.size(), mac, &length);
  return absl::StrCat("sha256=", absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(mac), length)));
}

std::string JobUrl(const NotifyConfig& config, const std::string& job_id) {
  return config.job_url.empty() ? "" : absl::StrReplaceAll(config.job_url, {{"{job}", job_id}});
}

namespace {

std::string Label(const Job& job, const std::string& name) {
  auto it = job.labels().find(name);
  return it == job.labels().end() ? "" : it->second;
}

bool SafeSegment(absl::string_view s) {
  return !s.empty() && s != "." && s != ".." && s.size() <= 100 && std::all_of(s.begin(), s.end(), [](char c) {
           return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}

std::vector<std::string> FailedTasks(const Job& job) {
  std::vector<std::string> failed;
  for (const auto& task : job.tasks()) {
    if (task.state() == assay::v1::TASK_FAILED) failed.push_back(task.id());
  }
  return failed;
}

// One line for a commit status (GitHub keeps 140 characters).
std::string Description(const Job& job, const std::string& event) {
  std::string text;
  if (event == "started") {
    text = absl::StrCat("running ", job.task_count(), " tasks");
  } else if (event == "cancelled") {
    text = absl::StrCat("cancelled after ", job.tasks_done(), " of ", job.task_count(), " tasks");
  } else if (std::vector<std::string> failed = FailedTasks(job); !failed.empty()) {
    text = absl::StrCat(failed.size(), " of ", job.task_count(), " tasks failed: ", absl::StrJoin(failed, ", "));
  } else {
    text = absl::StrCat(job.task_count(), " tasks succeeded");
  }
  return text.size() > 140 ? absl::StrCat(text.substr(0, 137), "...") : text;
}

std::string StatusState(NotifyTarget::Kind kind, const std::string& event) {
  const bool gitlab = kind == NotifyTarget::Kind::kGitLab;
  if (event == "started") return gitlab ? "running" : "pending";
  if (event == "success" || event == "recovered") return "success";
  if (event == "failure") return gitlab ? "failed" : "failure";
  return gitlab ? "canceled" : "error";  // cancelled
}

std::string PercentEncode(absl::string_view s) {
  std::string out;
  for (char c : s) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "%", absl::AsciiStrToUpper(absl::BytesToHexString(absl::string_view(&c, 1))));
    }
  }
  return out;
}

}  // namespace

absl::Status CheckStatusLabels(const Job& job, NotifyTarget::Kind kind) {
  const std::string commit = Label(job, "commit");
  const std::string repo = Label(job, "repo");
  if (commit.empty() || repo.empty()) {
    return absl::InvalidArgumentError(
        "commit statuses need the job's labels 'commit' and 'repo' (assay submit --label commit=SHA --label repo=OWNER/REPO)");
  }
  if (commit.size() < 7 || commit.size() > 64 ||
      !std::all_of(commit.begin(), commit.end(), [](char c) { return absl::ascii_isxdigit(static_cast<unsigned char>(c)); })) {
    return absl::InvalidArgumentError(absl::StrCat("label commit '", commit, "' is not a commit id (7 to 64 hex digits)"));
  }
  std::vector<absl::string_view> parts = absl::StrSplit(repo, '/');
  const bool shape = kind == NotifyTarget::Kind::kGitHub ? parts.size() == 2 : parts.size() >= 2 && parts.size() <= 20;
  if (!shape || !std::all_of(parts.begin(), parts.end(), SafeSegment)) {
    return absl::InvalidArgumentError(absl::StrCat("label repo '", repo, "' is not ",
                                                   kind == NotifyTarget::Kind::kGitHub ? "OWNER/REPO" : "GROUP/PROJECT",
                                                   " (letters, digits, '-', '_', '.')"));
  }
  return absl::OkStatus();
}

absl::StatusOr<HttpRequest> BuildNotificationRequest(const NotifyConfig& config, const NotifyTarget& target,
                                                     const assay::v1::Notification& n, const Job& job) {
  HttpRequest request;
  request.headers = {{"Content-Type", "application/json"}, {"User-Agent", "assay-coordinator"}};
  const std::string link = JobUrl(config, job.id());
  if (target.kind == NotifyTarget::Kind::kWebhook) {
    std::string job_json;
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    if (auto s = google::protobuf::util::MessageToJsonString(job, &job_json, options); !s.ok()) {
      return absl::InternalError(absl::StrCat("the job as JSON: ", s.ToString()));
    }
    nlohmann::json body = {{"event", n.event()},   {"delivery", n.id()},           {"job_id", job.id()},
                           {"pipeline", job.name()}, {"state", JobState_Name(job.state())},
                           {"job_url", link},      {"failed_tasks", FailedTasks(job)}};
    body["job"] = nlohmann::json::parse(job_json);
    request.url = target.url;
    request.body = body.dump();
    request.headers.emplace_back("X-Assay-Event", n.event());
    request.headers.emplace_back("X-Assay-Delivery", n.id());
    request.headers.emplace_back("X-Assay-Signature-256", SignBody(target.secret, request.body));
    return request;
  }
  if (absl::Status s = CheckStatusLabels(job, target.kind); !s.ok()) return s;
  const std::string context = absl::StrReplaceAll(target.context, {{"{pipeline}", job.name()}});
  nlohmann::json body = {{"state", StatusState(target.kind, n.event())}, {"description", Description(job, n.event())}};
  if (!link.empty()) body["target_url"] = link;
  if (target.kind == NotifyTarget::Kind::kGitHub) {
    request.url = absl::StrCat(target.url, "/repos/", Label(job, "repo"), "/statuses/", Label(job, "commit"));
    body["context"] = context;
    request.headers.emplace_back("Authorization", absl::StrCat("Bearer ", target.secret));
    request.headers.emplace_back("Accept", "application/vnd.github+json");
    request.headers.emplace_back("X-GitHub-Api-Version", "2022-11-28");
  } else {
    request.url = absl::StrCat(target.url, "/projects/", PercentEncode(Label(job, "repo")), "/statuses/",
                               Label(job, "commit"));
    body["name"] = context;
    request.headers.emplace_back("PRIVATE-TOKEN", target.secret);
  }
  request.body = body.dump();
  return request;
}

DeliveryVerdict JudgeResponse(int http_status) {
  if (http_status >= 200 && http_status < 300) return DeliveryVerdict::kDelivered;
  if (http_status == 408 || http_status == 429 || http_status >= 500 || http_status < 200) return DeliveryVerdict::kRetry;
  return DeliveryVerdict::kGiveUp;
}

}  // namespace assay
