#include "worker/cgroups.h"

#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/file_util.h"

namespace assay {
namespace fs = std::filesystem;
namespace {

constexpr char kRoot[] = "/sys/fs/cgroup";

bool Writable(const std::string& dir) { return !dir.empty() && ::access(dir.c_str(), W_OK) == 0; }

absl::Status Write(const std::string& file, const std::string& value) {
  std::ofstream out(file);
  out << value;
  out.flush();
  if (!out) return absl::InternalError(absl::StrCat("cannot write '", value, "' to ", file));
  return absl::OkStatus();
}

// The "NAME N" line of a flat-keyed cgroup file, or 0.
int64_t KeyedValue(const std::string& file, absl::string_view name) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    int64_t v = 0;
    if (parts.size() == 2 && parts[0] == name && absl::SimpleAtoi(parts[1], &v)) return v;
  }
  return 0;
}

}  // namespace

Cgroups Cgroups::Detect() {
  Cgroups c;
  std::string unified_path;
  std::ifstream self("/proc/self/cgroup");
  std::string line;
  while (std::getline(self, line)) {
    // "4:memory:/some/path" (v1) or "0::/some/path" (v2)
    std::vector<std::string> parts = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (parts.size() != 3) continue;
    if (parts[1].empty()) {
      unified_path = parts[2];
      continue;
    }
    for (absl::string_view controller : absl::StrSplit(parts[1], ',')) {
      const std::string dir = absl::StrCat(kRoot, "/", controller, parts[2] == "/" ? "" : parts[2]);
      if (!Writable(dir)) continue;
      if (controller == "cpu") c.cpu_ = dir;
      if (controller == "memory") c.memory_ = dir;
      if (controller == "pids") c.pids_ = dir;
    }
  }
  // cgroup v2: at /sys/fs/cgroup (v2 only) or /sys/fs/cgroup/unified (hybrid); a controller can be
  // used when the worker's own group already hands it to its children (subtree_control).
  for (const std::string& mount : {std::string(kRoot), absl::StrCat(kRoot, "/unified")}) {
    if (!fs::exists(mount + "/cgroup.controllers")) continue;
    const std::string dir = mount + (unified_path == "/" ? "" : unified_path);
    auto delegated = ReadFile(dir + "/cgroup.subtree_control");
    if (!delegated.ok() || !Writable(dir)) break;
    for (absl::string_view controller : absl::StrSplit(absl::StripAsciiWhitespace(*delegated), ' ')) {
      if (controller == "cpu" && c.cpu_.empty()) std::tie(c.cpu_, c.cpu_v2_) = std::pair{dir, true};
      if (controller == "memory" && c.memory_.empty()) std::tie(c.memory_, c.memory_v2_) = std::pair{dir, true};
      if (controller == "pids" && c.pids_.empty()) std::tie(c.pids_, c.pids_v2_) = std::pair{dir, true};
    }
    break;
  }
  return c;
}

std::string Cgroups::Describe() const {
  std::vector<std::string> enforced;
  if (cpu()) enforced.push_back(absl::StrCat("cpus (cgroup ", cpu_v2_ ? "v2" : "v1", ")"));
  if (memory()) enforced.push_back(absl::StrCat("memory (cgroup ", memory_v2_ ? "v2" : "v1", ")"));
  if (pids()) enforced.push_back(absl::StrCat("pids (cgroup ", pids_v2_ ? "v2" : "v1", ")"));
  return enforced.empty() ? "none (no usable cgroup controller)" : absl::StrJoin(enforced, ", ");
}

std::string Cgroups::Unsupported(const ResourceLimits& limits) const {
  std::vector<std::string> missing;
  if (limits.cpus > 0 && !cpu()) missing.push_back("limits.cpus (no cgroup cpu controller)");
  if (limits.memory_bytes > 0 && !memory()) missing.push_back("limits.memory (no cgroup memory controller)");
  if (limits.pids > 0 && !pids()) missing.push_back("limits.pids (no cgroup pids controller)");
  if (missing.empty()) return "";
  return absl::StrCat("this worker cannot enforce ", absl::StrJoin(missing, ", "));
}

absl::StatusOr<std::unique_ptr<Cgroups::Task>> Cgroups::Create(const std::string& name,
                                                               const ResourceLimits& limits) const {
  std::unique_ptr<Task> task(new Task());
  if (std::string why = Unsupported(limits); !why.empty()) return absl::FailedPreconditionError(why);
  // Makes the group under `base` (once per folder: v2 controllers share one) and returns it.
  auto group = [&](const std::string& base) -> absl::StatusOr<std::string> {
    const std::string dir = base + "/" + name;
    for (const std::string& made : task->dirs_) {
      if (made == dir) return dir;
    }
    std::error_code ec;
    if (!fs::create_directory(dir, ec) || ec) {
      return absl::InternalError(absl::StrCat("cannot create the cgroup ", dir, ": ", ec.message()));
    }
    task->dirs_.push_back(dir);
    task->procs_files_.push_back(dir + "/cgroup.procs");
    return dir;
  };
  if (limits.cpus > 0) {
    auto dir = group(cpu_);
    if (!dir.ok()) return dir.status();
    const int64_t period = 100'000, quota = std::max<int64_t>(1000, std::llround(limits.cpus * period));
    absl::Status s = cpu_v2_ ? Write(*dir + "/cpu.max", absl::StrCat(quota, " ", period))
                             : Write(*dir + "/cpu.cfs_period_us", absl::StrCat(period));
    if (s.ok() && !cpu_v2_) s = Write(*dir + "/cpu.cfs_quota_us", absl::StrCat(quota));
    if (!s.ok()) return s;
  }
  if (limits.memory_bytes > 0) {
    auto dir = group(memory_);
    if (!dir.ok()) return dir.status();
    task->memory_dir_ = *dir;
    task->v2_memory_ = memory_v2_;
    const std::string bytes = absl::StrCat(limits.memory_bytes);
    if (memory_v2_) {
      if (absl::Status s = Write(*dir + "/memory.max", bytes); !s.ok()) return s;
      Write(*dir + "/memory.swap.max", "0").IgnoreError();  // absent without swap accounting
    } else {
      if (absl::Status s = Write(*dir + "/memory.limit_in_bytes", bytes); !s.ok()) return s;
      // With swap accounting the limit covers swap too, so a hog is killed rather than swapped out.
      if (fs::exists(*dir + "/memory.memsw.limit_in_bytes")) Write(*dir + "/memory.memsw.limit_in_bytes", bytes).IgnoreError();
    }
  }
  if (limits.pids > 0) {
    auto dir = group(pids_);
    if (!dir.ok()) return dir.status();
    if (absl::Status s = Write(*dir + "/pids.max", absl::StrCat(limits.pids)); !s.ok()) return s;
  }
  return task;
}

bool Cgroups::Task::oom_killed() const {
  if (memory_dir_.empty()) return false;
  return KeyedValue(memory_dir_ + (v2_memory_ ? "/memory.events" : "/memory.oom_control"), "oom_kill") > 0;
}

Cgroups::Task::~Task() {
  // The executor has killed the step's process group; anything that left the group is killed here,
  // then the (empty) groups are removed.
  for (const std::string& dir : dirs_) {
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (::rmdir(dir.c_str()) != 0 && errno == EBUSY && absl::Now() < deadline) {
      std::ifstream procs(dir + "/cgroup.procs");
      pid_t pid = 0;
      while (procs >> pid) ::kill(pid, SIGKILL);
      absl::SleepFor(absl::Milliseconds(10));  // the kernel empties the group as the processes are reaped
    }
  }
}

}  // namespace assay
