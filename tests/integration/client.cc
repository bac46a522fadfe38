#include "tests/integration/client.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "common/base/status_util.h"
#include "common/task/task_states.h"

namespace assay::testing {

std::string SourceDir() { return ASSAY_SOURCE_DIR; }

std::string BinaryPath(const std::string& name) {
  if (name == "assay") return ASSAY_CLI_BIN;
  if (name == "assay-coordinator") return ASSAY_COORDINATOR_BIN;
  return ASSAY_WORKER_BIN;
}

bool IsFinalJob(const assay::v1::Job& job) {
  return job.state() == assay::v1::JOB_SUCCEEDED || job.state() == assay::v1::JOB_FAILED ||
         job.state() == assay::v1::JOB_CANCELLED;
}

RunResult CliClient::Run(const std::vector<std::string>& args, absl::Duration timeout) const {
  std::vector<std::string> argv = options_.prefix;
  argv.push_back(BinaryPath("assay"));
  argv.push_back("--coordinator");
  argv.push_back(options_.address);
  argv.insert(argv.end(), options_.security_args.begin(), options_.security_args.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout == absl::ZeroDuration() ? options_.timeout : timeout, options_.env);
}

absl::StatusOr<assay::v1::Job> CliClient::GetJob(const std::string& id) const {
  RunResult r = Run({"status", id, "--output", "json"});
  if (r.exit_code != 0) return absl::UnavailableError(r.err);
  assay::v1::Job job;
  if (!google::protobuf::util::JsonStringToMessage(r.out, &job).ok()) return absl::InternalError(r.out);
  return job;
}

absl::StatusOr<assay::v1::Job> CliClient::WaitJob(const std::string& id, absl::Duration timeout) const {
  absl::StatusOr<assay::v1::Job> job;
  WaitFor(
      [&]() {
        job = GetJob(id);
        return job.ok() && IsFinalJob(*job);
      },
      timeout);
  return job;
}

absl::StatusOr<std::vector<assay::v1::Worker>> CliClient::Workers() const {
  RunResult r = Run({"workers", "--output", "json"});
  if (r.exit_code != 0) return absl::UnavailableError(r.err);
  assay::v1::ListWorkersResponse list;
  if (!google::protobuf::util::JsonStringToMessage(r.out, &list).ok()) return absl::InternalError(r.out);
  return std::vector<assay::v1::Worker>(list.workers().begin(), list.workers().end());
}

int CliClient::ConnectedWorkers() const {
  auto workers = Workers();
  if (!workers.ok()) return -1;
  int n = 0;
  for (const auto& w : *workers) n += w.connected();
  return n;
}

absl::StatusOr<std::unique_ptr<GrpcClient>> GrpcClient::Connect(const std::string& address,
                                                                const ClientSecurity& security) {
  auto credentials = MakeChannelCredentials(security, address);
  if (!credentials.ok()) return credentials.status();
  return std::unique_ptr<GrpcClient>(new GrpcClient(grpc::CreateChannel(address, *credentials)));
}

GrpcClient::GrpcClient(std::shared_ptr<grpc::Channel> channel)
    : channel_(std::move(channel)),
      jobs_(assay::v1::Jobs::NewStub(channel_)),
      admin_(assay::v1::Admin::NewStub(channel_)) {}

absl::StatusOr<assay::v1::Job> GrpcClient::GetJob(const std::string& id) {
  assay::v1::GetJobRequest request;
  request.set_job_id(id);
  assay::v1::Job job;
  grpc::ClientContext context;
  grpc::Status status = jobs_->GetJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status);
  return job;
}

absl::StatusOr<assay::v1::Job> GrpcClient::WaitJob(const std::string& id, absl::Duration timeout) {
  // Follows the job's WatchJob stream (pushed on every change), as `assay submit --wait` does, so the
  // wait ends the moment the job does; the stream is opened again should it end early (a test that
  // restarts the coordinator).
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<assay::v1::Job> last = absl::NotFoundError(absl::StrCat("job ", id, " never seen"));
  while (true) {
    assay::v1::WatchJobRequest request;
    request.set_job_id(id);
    request.set_changes_only(true);  // as `assay submit --wait` asks: the job, then what changed
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    auto reader = jobs_->WatchJob(&context, request);
    assay::v1::Job update, job;
    while (reader->Read(&update)) {
      ApplyJobChanges(std::move(update), &job);
      last = job;
      if (IsFinalJob(job)) {
        context.TryCancel();
        reader->Finish();
        return last;
      }
    }
    grpc::Status status = reader->Finish();
    if (!last.ok() && !status.ok()) last = FromGrpc(status);
    if (absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(20));  // the coordinator is away: dial again shortly
  }
  if (!last.ok()) return last.status();
  return absl::DeadlineExceededError(absl::StrCat("job ", id, " still ", last->state()));
}

std::string GrpcClient::Log(const std::string& job, const std::string& task) {
  assay::v1::StreamLogsRequest request;
  request.set_job_id(job);
  request.set_task_id(task);
  grpc::ClientContext context;
  auto reader = jobs_->StreamLogs(&context, request);
  assay::v1::LogChunk chunk;
  std::string out;
  while (reader->Read(&chunk)) out += chunk.data();
  reader->Finish();
  return out;
}

std::vector<assay::v1::Worker> GrpcClient::Workers() {
  assay::v1::ListWorkersResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!admin_->ListWorkers(&context, assay::v1::ListWorkersRequest(), &response).ok()) return {};
  return {response.workers().begin(), response.workers().end()};
}

int GrpcClient::ConnectedWorkers() {
  int n = 0;
  for (const auto& w : Workers()) n += w.connected();
  return n;
}

}  // namespace assay::testing
