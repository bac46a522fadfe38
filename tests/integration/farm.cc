#include "tests/integration/farm.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/base/status_util.h"

namespace assay::testing {
namespace fs = std::filesystem;

Farm::Farm() : dir_("assay-farm") {}

Farm::~Farm() {
  // SIGINT: a worker stops at once, handing back what it runs (SIGTERM would let it finish first).
  for (auto& [id, worker] : workers_) worker->Kill(SIGINT);
  workers_.clear();
  grpc_.reset();
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
                                   "--listen", absl::StrCat("127.0.0.1:", port_), "--port-file", port_file.string()};
  // Short heartbeats and leases, so tests of lost workers end soon (benchmarks keep the defaults).
  if (test_timings_) argv.insert(argv.end(), {"--heartbeat-seconds", "0.5", "--lease-seconds", "5"});
  // The dashboard on a port of its own (the default address is for one coordinator per host).
  const fs::path http_port_file = dir() / "http-port";
  const bool own_http = std::find(extra_args.begin(), extra_args.end(), "--http-listen") == extra_args.end();
  if (own_http) {
    for (const char* a : {"--http-listen", "127.0.0.1:0", "--http-port-file"}) argv.push_back(a);
    argv.push_back(http_port_file.string());
  }
  for (const auto& a : extra_args) argv.push_back(a);
  fs::remove(port_file);
  fs::remove(http_port_file);
  http_port_ = 0;
  coordinator_ = std::make_unique<Process>(argv, dir() / "coordinator.log");
  bool up = WaitFor([&]() { return fs::exists(port_file) || !coordinator_->running(); }, absl::Seconds(30));
  ASSERT_TRUE(up && coordinator_->running()) << "coordinator did not start: " << ReadFile(dir() / "coordinator.log").value_or("");
  std::string text = ReadFile(port_file).value_or("0");
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port_));
  if (own_http) {
    ASSERT_TRUE(WaitFor([&]() { return fs::exists(http_port_file) || !coordinator_->running(); }, absl::Seconds(30)));
    ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(http_port_file).value_or("0")), &http_port_));
  }
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
  auto client = GrpcClient::Connect(address(), client_security_);
  ASSERT_TRUE(client.ok()) << client.status();
  grpc_ = std::move(*client);
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

CliClient Farm::cli() const {
  CliClient::Options options;
  options.address = address();
  options.security_args = ClientSecurityArgs();
  options.env = cli_env_;
  return CliClient(std::move(options));
}

RunResult Farm::Cli(const std::vector<std::string>& args, absl::Duration timeout) { return cli().Run(args, timeout); }

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
