#include "tests/integration/farm.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>

#include <gtest/gtest.h>

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_util.h"

namespace assay::testing {
namespace fs = std::filesystem;

std::string SourceDir() { return ASSAY_SOURCE_DIR; }

std::string BinaryPath(const std::string& name) {
  if (name == "assay") return ASSAY_CLI_BIN;
  if (name == "assay-coordinator") return ASSAY_COORDINATOR_BIN;
  return ASSAY_WORKER_BIN;
}

Farm::Farm() : dir_("assay-farm") {}

Farm::~Farm() {
  // SIGINT: a worker stops at once, handing back what it runs (SIGTERM would let it finish first).
  for (auto& [id, worker] : workers_) worker->Kill(SIGINT);
  workers_.clear();
  jobs_.reset();
  admin_.reset();
  coordinator_.reset();
  // In sanitizer builds the programs report what they find in their logs: any report fails the test.
  for (const auto& entry : fs::directory_iterator(dir())) {
    if (entry.path().extension() != ".log") continue;
    std::string text = ReadFile(entry.path()).value_or("");
    for (const char* marker : {"WARNING: ThreadSanitizer", "ERROR: AddressSanitizer", "runtime error:",
                               "ERROR: LeakSanitizer"}) {
      size_t at = text.find(marker);
      if (at != std::string::npos) {
        ADD_FAILURE() << entry.path().filename().string() << " has a sanitizer report:\n"
                      << text.substr(at > 200 ? at - 200 : 0, 6000);
        break;
      }
    }
  }
}

void Farm::StartCoordinator(const std::vector<std::string>& extra_args) {
  fs::path port_file = dir() / "port";
  std::vector<std::string> argv = {BinaryPath("assay-coordinator"), "--data", (dir() / "data").string(),
                                   "--listen", absl::StrCat("127.0.0.1:", port_), "--port-file", port_file.string(),
                                   "--heartbeat-seconds", "0.5", "--lease-seconds", "5"};
  for (const auto& a : extra_args) argv.push_back(a);
  fs::remove(port_file);
  coordinator_ = std::make_unique<Process>(argv, dir() / "coordinator.log");
  bool up = WaitFor([&]() { return fs::exists(port_file) || !coordinator_->running(); }, absl::Seconds(30));
  ASSERT_TRUE(up && coordinator_->running()) << "coordinator did not start: " << ReadFile(dir() / "coordinator.log").value_or("");
  std::string text = ReadFile(port_file).value_or("0");
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port_));
  Connect();
}

void Farm::StopCoordinator(int signal) {
  if (coordinator_) coordinator_->Kill(signal);
  coordinator_.reset();
}

void Farm::UseClientSecurity(const ClientSecurity& security) {
  client_security_ = security;
  if (coordinator_) Connect();
}

std::vector<std::string> Farm::ClientSecurityArgs() const {
  std::vector<std::string> args;
  auto add = [&](const char* flag, const std::string& value) {
    if (value.empty()) return;
    args.push_back(flag);
    args.push_back(value);
  };
  add("--tls-ca", client_security_.ca_file);
  add("--tls-cert", client_security_.cert_file);
  add("--tls-key", client_security_.key_file);
  add("--token-file", client_security_.token_file);
  return args;
}

void Farm::Connect() {
  auto credentials = MakeChannelCredentials(client_security_, address());
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  channel_ = grpc::CreateChannel(address(), *credentials);
  jobs_ = assay::v1::Jobs::NewStub(channel_);
  admin_ = assay::v1::Admin::NewStub(channel_);
}

void Farm::StartWorker(const std::string& id, const std::vector<std::string>& labels, int slots,
                       const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {BinaryPath("assay-worker"), "--coordinator", address(), "--id", id,
                                   "--slots", std::to_string(slots), "--work-dir", (dir() / ("work-" + id)).string(),
                                   "--executor", executor_};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  for (const auto& l : labels) {
    argv.push_back("--label");
    argv.push_back(l);
  }
  for (const auto& a : ClientSecurityArgs()) argv.push_back(a);
  workers_[id] = std::make_unique<Process>(argv, dir() / ("worker-" + id + ".log"));
  bool connected = WaitFor(
      [&]() {
        for (const auto& w : Workers()) {
          if (w.id() == id && w.connected()) return true;
        }
        return false;
      },
      absl::Seconds(30));
  ASSERT_TRUE(connected) << "worker " << id << " did not connect: "
                         << ReadFile(dir() / ("worker-" + id + ".log")).value_or("");
}

void Farm::StopWorker(const std::string& id, int signal) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  it->second->Kill(signal);
  workers_.erase(it);
}

void Farm::SignalWorker(const std::string& id, int signal) {
  auto it = workers_.find(id);
  ASSERT_NE(it, workers_.end()) << "no worker " << id;
  ASSERT_EQ(::kill(it->second->pid(), signal), 0);
}

std::optional<int> Farm::WaitWorkerExit(const std::string& id, absl::Duration timeout) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return std::nullopt;
  Process* process = it->second.get();
  if (!WaitFor([&]() { return !process->running(); }, timeout)) return std::nullopt;
  const int status = process->status();
  workers_.erase(it);
  return status;
}

RunResult Farm::Cli(const std::vector<std::string>& args, absl::Duration timeout) {
  std::vector<std::string> argv = {BinaryPath("assay"), "--coordinator", address()};
  for (const auto& a : ClientSecurityArgs()) argv.push_back(a);
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv, timeout, cli_env_);
}

fs::path Farm::WriteTree(const std::string& name, const std::map<std::string, std::string>& files) {
  fs::path root = dir() / "trees" / name;
  for (const auto& [path, content] : files) {
    fs::create_directories((root / path).parent_path());
    bool executable = path.ends_with(".sh");
    EXPECT_TRUE(WriteFile(root / path, content, executable).ok());
  }
  return root;
}

absl::StatusOr<std::string> Farm::Submit(const fs::path& tree, const std::string& pipeline) {
  RunResult r = Cli({"submit", tree.string(), "-f", pipeline});
  if (r.exit_code != 0) return absl::InvalidArgumentError(absl::StrCat("submit failed (", r.exit_code, "): ", r.err));
  return std::string(absl::StripAsciiWhitespace(r.out));
}

absl::StatusOr<assay::v1::Job> Farm::GetJob(const std::string& id) {
  assay::v1::GetJobRequest request;
  request.set_job_id(id);
  assay::v1::Job job;
  grpc::ClientContext context;
  grpc::Status status = jobs_->GetJob(&context, request, &job);
  if (!status.ok()) return FromGrpc(status);
  return job;
}

absl::StatusOr<assay::v1::Job> Farm::WaitJob(const std::string& id, absl::Duration timeout) {
  // Follows the job's WatchJob stream (pushed on every change), as `assay submit --wait` does, so the
  // wait ends the moment the job does; the stream is opened again should it end early (a test that
  // restarts the coordinator).
  auto final_state = [](const assay::v1::Job& j) {
    return j.state() == assay::v1::JOB_SUCCEEDED || j.state() == assay::v1::JOB_FAILED ||
           j.state() == assay::v1::JOB_CANCELLED;
  };
  const absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<assay::v1::Job> last = absl::NotFoundError(absl::StrCat("job ", id, " never seen"));
  while (true) {
    assay::v1::WatchJobRequest request;
    request.set_job_id(id);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    auto reader = jobs_->WatchJob(&context, request);
    assay::v1::Job job;
    while (reader->Read(&job)) {
      last = job;
      if (final_state(job)) {
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

std::string Farm::Log(const std::string& job, const std::string& task) {
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

std::vector<assay::v1::Worker> Farm::Workers() {
  assay::v1::ListWorkersResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!admin_->ListWorkers(&context, assay::v1::ListWorkersRequest(), &response).ok()) return {};
  return {response.workers().begin(), response.workers().end()};
}

int64_t PeakMemoryBytes(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      int64_t kb = 0;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(line.substr(6), "kB")), &kb)) return kb * 1024;
    }
  }
  return -1;
}

const assay::v1::Task* FindTask(const assay::v1::Job& job, const std::string& id) {
  for (const auto& t : job.tasks()) {
    if (t.id() == id) return &t;
  }
  return nullptr;
}

}  // namespace assay::testing
