// Starting and stopping the real binaries from tests: every process started here is stopped by pid.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/common/wait_for.h"  // WaitFor

namespace assay::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  int64_t peak_rss_bytes = 0;  // the command's own peak resident memory
};

// Runs a command to completion (killing it after `timeout`), capturing its output.
RunResult RunCommand(const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(120),
              const std::vector<std::string>& extra_env = {});

// A background process; its destructor stops it (SIGTERM, then SIGKILL) and reaps it.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const std::filesystem::path& log_file);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  pid_t pid() const { return pid_; }
  bool running();            // reaps the process when it has ended
  void Kill(int signal);     // sends a signal and waits for the process to end
  int Wait();                // waits without a deadline; the wait status
  int status() const { return status_; }  // the wait status once running() returned false

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
};

// GET http://127.0.0.1:port/path; the body of a 200 response, an error otherwise.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);
// 127.0.0.1:`port`, for bind and connect.
sockaddr_in LoopbackAddress(int port);

// The pid written in a file (by `echo $! > file`), or 0 while it is missing or incomplete.
pid_t ReadPid(const std::filesystem::path& file);

// True while a process with this pid exists and is not a zombie.
bool PidAlive(pid_t pid);

}  // namespace assay::testing
