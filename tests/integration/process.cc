#include "tests/integration/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/base/file_util.h"

namespace assay::testing {
namespace fs = std::filesystem;

namespace {

// `append`: a restarted process adds to its log instead of replacing it.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path,
            const std::vector<std::string>& extra_env, bool append = false) {
  const int mode = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    int out = ::open(out_path.c_str(), mode, 0644);
    int err = err_path == out_path ? out : ::open(err_path.c_str(), mode, 0644);
    int in = ::open("/dev/null", O_RDONLY);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const auto& e : extra_env) ::putenv(const_cast<char*>(e.c_str()));
    ::execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

}  // namespace

sockaddr_in LoopbackAddress(int port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

absl::StatusOr<std::string> HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr = LoopbackAddress(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return absl::UnavailableError(absl::StrCat("cannot connect to 127.0.0.1:", port));
  }
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  (void)!::write(fd, request.data(), request.size());
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd, buf, sizeof(buf))) > 0;) response.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const size_t body = response.find("\r\n\r\n");
  if (!absl::StartsWith(response, "HTTP/1.") || body == std::string::npos) {
    return absl::DataLossError("not an HTTP response: " + response.substr(0, 200));
  }
  if (response.find(" 200 ") > response.find("\r\n")) {
    return absl::UnavailableError(response.substr(0, response.find("\r\n")));
  }
  return response.substr(body + 4);
}

pid_t ReadPid(const fs::path& file) {
  auto text = ReadFile(file);
  int pid = 0;
  if (!text.ok() || text->empty() || text->back() != '\n' ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &pid)) {
    return 0;
  }
  return pid;
}

bool PidAlive(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

RunResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout, const std::vector<std::string>& extra_env) {
  ScopedTempDir dir("assay-run");
  std::string out_path = (dir.path() / "out").string(), err_path = (dir.path() / "err").string();
  pid_t pid = Spawn(argv, out_path, err_path, extra_env);
  RunResult result;
  int status = 0;
  struct rusage usage {};
  bool done = WaitFor([&]() { return ::wait4(pid, &status, WNOHANG, &usage) == pid; }, timeout);
  if (!done) {
    ::kill(pid, SIGKILL);
    ::wait4(pid, &status, 0, &usage);
  }
  result.peak_rss_bytes = static_cast<int64_t>(usage.ru_maxrss) * 1024;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out_path).value_or("");
  result.err = ReadFile(err_path).value_or("");
  return result;
}

Process::Process(const std::vector<std::string>& argv, const fs::path& log_file) {
  pid_ = Spawn(argv, log_file.string(), log_file.string(), {}, /*append=*/true);
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) Kill(SIGTERM);
}

bool Process::running() {
  if (reaped_) return false;
  if (::waitpid(pid_, &status_, WNOHANG) == pid_) {
    reaped_ = true;
    return false;
  }
  return true;
}

void Process::Kill(int signal) {
  if (reaped_) return;
  ::kill(pid_, signal);
  int status = 0;
  if (!WaitFor([&]() { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, absl::Seconds(10))) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
  }
  reaped_ = true;
}

int Process::Wait() {
  if (!reaped_) ::waitpid(pid_, &status_, 0);
  reaped_ = true;
  return status_;
}

}  // namespace assay::testing
