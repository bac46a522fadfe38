// The dashboard's fleet routes: workers (and drain/cordon), the queue, the cache, the trends.
#include <httplib.h>

#include <algorithm>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_util.h"
#include "common/task/task_states.h"
#include "coordinator/http_api.h"
#include "coordinator/http_api_util.h"
#include "coordinator/queued_requirements.h"

namespace assay {

using assay::v1::Job;
using nlohmann::json;

namespace {

absl::StatusOr<std::string> WorkersJson(assay::v1::Admin::Stub* admin) {
  assay::v1::ListWorkersResponse workers;
  grpc::ClientContext context;
  SetDeadline(&context);
  if (grpc::Status s = admin->ListWorkers(&context, {}, &workers); !s.ok()) return FromGrpc(s);
  return ToJson(workers);
}

absl::StatusOr<assay::v1::ListJobsResponse> ListJobs(assay::v1::Jobs::Stub* jobs, int limit) {
  assay::v1::ListJobsRequest request;
  request.set_limit(limit);
  assay::v1::ListJobsResponse out;
  grpc::ClientContext context;
  SetDeadline(&context);
  if (grpc::Status s = jobs->ListJobs(&context, request, &out); !s.ok()) return FromGrpc(s);
  return out;
}

// Queued tasks of the unfinished jobs, by the labels they require.
absl::StatusOr<std::string> QueueJson(assay::v1::Jobs::Stub* jobs) {
  auto list = ListJobs(jobs, 1000);
  if (!list.ok()) return list.status();
  struct Group {
    int64_t tasks = 0;
    int64_t oldest = 0;
  };
  std::map<std::string, Group> groups;
  for (const Job& summary : list->jobs()) {
    if (IsFinal(summary.state())) continue;
    auto job = GetJob(jobs, summary.id());
    if (!job.ok()) continue;  // ended and retired meanwhile
    for (const assay::v1::Task& task : job->tasks()) {
      if (task.state() != assay::v1::TASK_QUEUED) continue;
      Group& group = groups[RequirementsKey(task.spec().required_labels())];
      ++group.tasks;
      if (group.oldest == 0 || task.queued_at_ms() < group.oldest) group.oldest = task.queued_at_ms();
    }
  }
  json out = {{"groups", json::array()}};
  for (const auto& [requires_labels, group] : groups) {
    out["groups"].push_back({{"requires", requires_labels},
                             {"tasks", group.tasks},
                             {"oldest_queued_at_ms", absl::StrCat(group.oldest)}});
  }
  return out.dump();
}

json SizeJson(const assay::v1::FileSize& size) {
  return {{"path", size.path()}, {"file", size.file()}, {"elf", size.elf()}, {"text", size.text()},
          {"data", size.data()}, {"bss", size.bss()},   {"rom", size.text() + size.data()},
          {"ram", size.data() + size.bss()}};
}

// The last `limit` finished jobs of a pipeline on a branch, oldest first: each task's time and sizes,
// and the budgets of the newest.
absl::StatusOr<std::string> TrendsJson(assay::v1::Jobs::Stub* jobs, const std::string& pipeline,
                                       const std::string& branch, int limit) {
  auto list = ListJobs(jobs, 1000);
  if (!list.ok()) return list.status();
  std::vector<Job> picked;
  for (const Job& summary : list->jobs()) {  // newest first
    if (static_cast<int>(picked.size()) >= limit) break;
    auto label = summary.labels().find("branch");
    const std::string job_branch = label == summary.labels().end() ? "" : label->second;
    if (summary.name() != pipeline || job_branch != branch || !IsFinal(summary.state())) continue;
    auto job = GetJob(jobs, summary.id());
    if (job.ok()) picked.push_back(std::move(*job));
  }
  std::reverse(picked.begin(), picked.end());
  json out = {{"jobs", json::array()}, {"budgets", json::array()}};
  for (const Job& job : picked) {
    json tasks = json::array();
    for (const assay::v1::Task& task : job.tasks()) {
      json sizes = json::array();
      for (const auto& size : task.sizes()) sizes.push_back(SizeJson(size));
      tasks.push_back({{"id", task.id()}, {"cell", task.cell()}, {"step", task.step()},
                       {"state", assay::v1::TaskState_Name(task.state())}, {"cached", task.cached()},
                       {"run_ms", absl::StrCat(task.run_ms())}, {"sizes", std::move(sizes)}});
    }
    out["jobs"].push_back({{"id", job.id()}, {"state", assay::v1::JobState_Name(job.state())},
                           {"created_at_ms", absl::StrCat(job.created_at_ms())}, {"tasks", std::move(tasks)}});
  }
  if (!picked.empty()) {
    for (const assay::v1::Task& task : picked.back().tasks()) {
      for (const assay::v1::SizeBudget& b : task.spec().size_budgets()) {
        out["budgets"].push_back({{"task_id", task.id()}, {"path", b.path()}, {"file", b.file()}, {"text", b.text()},
                                  {"data", b.data()}, {"bss", b.bss()}, {"rom", b.rom()}, {"ram", b.ram()}});
      }
    }
  }
  return out.dump();
}

}  // namespace

void HttpApi::AddFleetRoutes() {
  auto* admin = admin_.get();
  auto* jobs = jobs_.get();
  auto answer = [](httplib::Response& response, const absl::StatusOr<std::string>& json) {
    if (!json.ok()) return SetError(response, json.status());
    response.set_content(*json, "application/json");
  };
  server_->Get("/api/v1/workers", "/assay.v1.Admin/ListWorkers",
               [admin, answer](const httplib::Request&, httplib::Response& response, const HttpServer::Caller&) {
                 answer(response, WorkersJson(admin));
               });
  server_->Get("/api/v1/workers/events", "/assay.v1.Admin/ListWorkers",
               [this, admin](const httplib::Request&, httplib::Response& response, const HttpServer::Caller&) {
                 PushWhenChanged(server_, response, [admin] { return WorkersJson(admin); });
               });
  server_->Post(R"(/api/v1/workers/([^/]+)/state)", "/assay.v1.Admin/SetWorkerState",
                [admin](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
                  assay::v1::SetWorkerStateRequest set;
                  assay::v1::WorkerAdminState state;
                  if (!body.is_object() || !body.contains("state") || !body["state"].is_string() ||
                      !assay::v1::WorkerAdminState_Parse(body["state"].get<std::string>(), &state)) {
                    return SetError(response, absl::InvalidArgumentError(
                                                  "body: expected {\"state\": \"WORKER_ACTIVE\" | \"WORKER_CORDONED\" | "
                                                  "\"WORKER_DRAINING\"}"));
                  }
                  set.set_worker_id(request.matches[1]);
                  set.set_state(state);
                  assay::v1::Worker worker;
                  grpc::ClientContext context;
                  SetDeadline(&context);
                  if (grpc::Status s = admin->SetWorkerState(&context, set, &worker); !s.ok()) {
                    return SetError(response, FromGrpc(s));
                  }
                  response.set_content(ToJson(worker), "application/json");
                });
  server_->Get("/api/v1/cache", "/assay.v1.Admin/GetCacheStats",
               [admin](const httplib::Request&, httplib::Response& response, const HttpServer::Caller&) {
                 assay::v1::CacheStats stats;
                 grpc::ClientContext context;
                 SetDeadline(&context);
                 if (grpc::Status s = admin->GetCacheStats(&context, {}, &stats); !s.ok()) {
                   return SetError(response, FromGrpc(s));
                 }
                 response.set_content(ToJson(stats), "application/json");
               });
  server_->Get("/api/v1/queue", "/assay.v1.Jobs/ListJobs",
               [jobs, answer](const httplib::Request&, httplib::Response& response, const HttpServer::Caller&) {
                 answer(response, QueueJson(jobs));
               });
  server_->Get("/api/v1/trends", "/assay.v1.Jobs/GetJob",
               [jobs, answer](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 int limit = 20;
                 if (request.has_param("limit") &&
                     (!absl::SimpleAtoi(request.get_param_value("limit"), &limit) || limit < 1 || limit > 200)) {
                   return SetError(response, absl::InvalidArgumentError("limit: expected 1 to 200"));
                 }
                 if (request.get_param_value("pipeline").empty()) {
                   return SetError(response, absl::InvalidArgumentError("pipeline: required"));
                 }
                 answer(response, TrendsJson(jobs, request.get_param_value("pipeline"),
                                             request.get_param_value("branch"), limit));
               });
}

}  // namespace assay
