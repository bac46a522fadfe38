// CPU time of the farm's processes, from /proc, for the benchmarks' CPU accounts.
#pragma once

#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace assay::bench {

// CPU seconds (user + system) of a live process (all its threads), and of its children it has waited for.
struct Cpu {
  double self = 0, children = 0;
};

// user + system CPU seconds and waited-for children's, from a /proc/.../stat file.
inline Cpu CpuFromStat(const std::string& path) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::vector<std::string> f = absl::StrSplit(text.substr(close + 2), ' ');
  // After the name: state(3) ... utime(14) stime(15) cutime(16) cstime(17), counted from field 3.
  auto at = [&](size_t field) {
    double v = 0;
    return field - 3 < f.size() && absl::SimpleAtod(f[field - 3], &v) ? v / static_cast<double>(sysconf(_SC_CLK_TCK)) : 0;
  };
  return {at(14) + at(15), at(16) + at(17)};
}

// CPU seconds of a live process, every thread it ever had included, to the nanosecond: the kernel's
// own sum (the process's CPU-time clock), where /proc's utime and stime are each cut to clock ticks
// (10 ms: up to 20 ms off per reading, 1.7 ms a task on a job of 12 tasks). -1 if the process is gone.
inline double PreciseCpuOf(pid_t pid) {
  clockid_t clock;
  timespec ts{};
  if (::clock_getcpuclockid(pid, &clock) != 0 || ::clock_gettime(clock, &ts) != 0) return -1;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The process's own CPU to the nanosecond (PreciseCpuOf), its waited-for children's in clock ticks.
inline Cpu CpuOf(pid_t pid) {
  Cpu cpu = CpuFromStat("/proc/" + std::to_string(pid) + "/stat");
  if (const double precise = PreciseCpuOf(pid); precise >= 0) cpu.self = precise;
  return cpu;
}

// Busy and total clock ticks of every CPU of the machine so far (the kernel's threads included),
// from /proc/stat's first line; busy is user + nice + system + irq + softirq.
struct MachineTicks {
  double busy = 0, total = 0;
};
inline MachineTicks MachineTicksNow() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0;
  in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq;
  const double busy = user + nice + system + irq + softirq;
  return {busy, busy + idle + iowait};
}

// CPU seconds of a process's live threads (run time from schedstat), summed by thread name (gRPC's
// pollers, our pools...). Threads that have exited are not in it: CpuOf(pid).self less the sum is
// theirs.
inline std::map<std::string, double> ThreadCpuOf(pid_t pid) {
  std::map<std::string, double> by_name;
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& thread : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream comm(thread.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name.empty()) continue;  // gone meanwhile
    std::ifstream schedstat(thread.path() / "schedstat");  // nanoseconds on a CPU first: finer than ticks
    double ns = 0;
    if (schedstat >> ns) by_name[name] += ns / 1e9;
  }
  return by_name;
}

}  // namespace assay::bench
