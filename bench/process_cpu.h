// CPU time of the farm's processes, from /proc, for the benchmarks' CPU accounts.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace assay::bench {

// CPU seconds (user + system) of a live process (all its threads), and of its children it has waited for.
struct Cpu {
  double self = 0, children = 0;
};

inline Cpu CpuOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
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

}  // namespace assay::bench
