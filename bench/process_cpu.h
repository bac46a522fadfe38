// CPU time of the farm's processes, from /proc, for the benchmarks' CPU accounts.
#pragma once

#include <sys/types.h>
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

inline Cpu CpuOf(pid_t pid) { return CpuFromStat("/proc/" + std::to_string(pid) + "/stat"); }

// CPU seconds of a process's live threads (run time from schedstat), summed by thread name (gRPC's
// pollers, our pools...). Threads that have exited are not in it: CpuOf(pid).self less the sum is
// theirs (to within CpuOf's clock ticks).
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
