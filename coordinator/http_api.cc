#include "coordinator/http_api.h"

#include <httplib.h>
#include <grpcpp/client_context.h>

#include <chrono>
#include <string_view>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/base/status_util.h"
#include "common/task/task_states.h"
#include "coordinator/http_api_util.h"
#include "google/protobuf/util/json_util.h"

namespace assay {

using assay::v1::Job;

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options).ok()) return "{}";
  return out;
}

namespace {

// The job list's filters from the query: state (JOB_FAILED or failed), pipeline, branch, submitter.
struct JobFilter {
  std::string state, pipeline, branch, submitter;
  int limit = 100;

  static absl::StatusOr<JobFilter> From(const httplib::Request& request) {
    JobFilter filter;
    filter.state = absl::AsciiStrToUpper(request.get_param_value("state"));
    if (!filter.state.empty() && !absl::StartsWith(filter.state, "JOB_")) filter.state = "JOB_" + filter.state;
    assay::v1::JobState parsed;
    if (!filter.state.empty() && !assay::v1::JobState_Parse(filter.state, &parsed)) {
      return absl::InvalidArgumentError(absl::StrCat("state: no job state '", request.get_param_value("state"), "'"));
    }
    filter.pipeline = request.get_param_value("pipeline");
    filter.branch = request.get_param_value("branch");
    filter.submitter = request.get_param_value("submitter");
    if (request.has_param("limit")) {
      if (!absl::SimpleAtoi(request.get_param_value("limit"), &filter.limit) || filter.limit < 1 ||
          filter.limit > 1000) {
        return absl::InvalidArgumentError("limit: expected 1 to 1000");
      }
    }
    return filter;
  }

  bool Matches(const Job& job) const {
    auto label = [&job](const char* key) {
      auto it = job.labels().find(key);
      return it == job.labels().end() ? std::string() : it->second;
    };
    return (state.empty() || assay::v1::JobState_Name(job.state()) == state) &&
           (pipeline.empty() || job.name() == pipeline) && (branch.empty() || label("branch") == branch) &&
           (submitter.empty() || label("user") == submitter);
  }
};

// The jobs the filter matches, newest first, without their tasks.
absl::StatusOr<std::string> ListJobsJson(assay::v1::Jobs::Stub* jobs, const JobFilter& filter) {
  assay::v1::ListJobsRequest request;
  // With a filter, the newest 1000 are looked through for `limit` matches.
  const bool filtered = !(filter.state + filter.pipeline + filter.branch + filter.submitter).empty();
  request.set_limit(filtered ? 1000 : filter.limit);
  assay::v1::ListJobsResponse all;
  grpc::ClientContext context;
  SetDeadline(&context);
  if (grpc::Status s = jobs->ListJobs(&context, request, &all); !s.ok()) return FromGrpc(s);
  assay::v1::ListJobsResponse out;
  for (Job& job : *all.mutable_jobs()) {
    if (!filter.Matches(job)) continue;
    job.clear_tasks();
    *out.add_jobs() = std::move(job);
    if (out.jobs_size() >= filter.limit) break;
  }
  return ToJson(out);
}

// The cells of `job` to run again: those with a task that failed, was cancelled or skipped.
std::vector<std::string> FailedCells(const Job& job) {
  std::vector<std::string> cells;
  for (const assay::v1::Task& task : job.tasks()) {
    const bool bad = task.state() == assay::v1::TASK_FAILED || task.state() == assay::v1::TASK_CANCELLED ||
                     task.state() == assay::v1::TASK_SKIPPED;
    if (bad && std::find(cells.begin(), cells.end(), task.cell()) == cells.end()) cells.push_back(task.cell());
  }
  return cells;
}

// Submits the failed cells of job `id` again as a new job: the same tree, pipeline, labels (and
// `rerun_of`), priority and resolved images.
absl::StatusOr<Job> RerunFailed(assay::v1::Jobs::Stub* jobs, const std::string& id) {
  auto found = GetJob(jobs, id);
  if (!found.ok()) return found.status();
  const Job& job = *found;
  if (!IsFinal(job.state())) return absl::FailedPreconditionError(absl::StrCat("job ", id, " has not ended yet"));
  std::vector<std::string> cells = FailedCells(job);
  if (cells.empty()) return absl::FailedPreconditionError(absl::StrCat("job ", id, " has no failed cell"));
  assay::v1::SubmitRequest submit;
  *submit.mutable_source_root() = job.source_root();
  submit.set_pipeline_path(job.pipeline_path());
  submit.mutable_labels()->insert(job.labels().begin(), job.labels().end());
  (*submit.mutable_labels())["rerun_of"] = job.id();
  submit.set_priority(job.priority());
  for (const std::string& cell : cells) submit.add_cells(cell);
  for (const assay::v1::Task& task : job.tasks()) {
    const assay::v1::ContainerSpec& container = task.spec().container();
    if (!container.image_id().empty()) (*submit.mutable_image_ids())[container.image()] = container.image_id();
  }
  Job created;
  grpc::ClientContext write;
  SetDeadline(&write);
  if (grpc::Status s = jobs->Submit(&write, submit, &created); !s.ok()) return FromGrpc(s);
  return created;
}

}  // namespace

HttpApi::HttpApi(HttpServer* server, std::shared_ptr<grpc::Channel> channel)
    : server_(server),
      channel_(std::move(channel)),
      jobs_(assay::v1::Jobs::NewStub(channel_)),
      admin_(assay::v1::Admin::NewStub(channel_)) {}

void HttpApi::AddRoutes() {
  server_->Get("/api/v1/session", "/assay.v1.Dashboard/GetDashboard",
               [](const httplib::Request&, httplib::Response& response, const HttpServer::Caller& caller) {
                 std::vector<std::string> scopes;
                 for (int i = 0; i < kScopeCount; ++i) {
                   const Scope scope = static_cast<Scope>(i);
                   if (caller.scopes.Has(scope)) scopes.push_back(absl::StrCat("\"", ScopeName(scope), "\""));
                 }
                 response.set_content(absl::StrCat("{\"auth\": ", caller.auth ? "true" : "false", ", \"scopes\": [",
                                                   absl::StrJoin(scopes, ", "), "]}\n"),
                                      "application/json");
               });
  AddJobRoutes();
  AddFleetRoutes();
  AddLogRoutes();
}

void HttpApi::AddJobRoutes() {
  auto* jobs = jobs_.get();
  server_->Get("/api/v1/jobs", "/assay.v1.Jobs/ListJobs",
               [jobs](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 auto filter = JobFilter::From(request);
                 auto json = filter.ok() ? ListJobsJson(jobs, *filter) : filter.status();
                 if (!json.ok()) return SetError(response, json.status());
                 response.set_content(*json, "application/json");
               });
  server_->Get("/api/v1/jobs/events", "/assay.v1.Jobs/ListJobs",
               [this, jobs](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 auto filter = JobFilter::From(request);
                 if (!filter.ok()) return SetError(response, filter.status());
                 PushWhenChanged(server_, response, [jobs, filter = *filter] { return ListJobsJson(jobs, filter); });
               });
  server_->Get(R"(/api/v1/jobs/([^/]+))", "/assay.v1.Jobs/GetJob",
               [jobs](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 auto job = GetJob(jobs, request.matches[1]);
                 if (!job.ok()) return SetError(response, job.status());
                 response.set_content(ToJson(*job), "application/json");
               });
  server_->Get(R"(/api/v1/jobs/([^/]+)/events)", "/assay.v1.Jobs/WatchJob",
               [this](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                 assay::v1::WatchJobRequest watch;
                 watch.set_job_id(request.matches[1]);
                 watch.set_changes_only(true);
                 auto* stub = jobs_.get();
                 PushEvents<Job>(server_, response, [stub, watch](grpc::ClientContext* context) {
                   return stub->WatchJob(context, watch);
                 }, [](const Job& job) { return std::optional<std::string>(ToJson(job)); });
               });
  server_->Post(R"(/api/v1/jobs/([^/]+)/rerun-failed)", "/assay.v1.Jobs/Submit",
                [jobs](const httplib::Request& request, httplib::Response& response, const HttpServer::Caller&) {
                  auto created = RerunFailed(jobs, request.matches[1]);
                  if (!created.ok()) return SetError(response, created.status());
                  response.set_content(ToJson(*created), "application/json");
                });
}

}  // namespace assay
