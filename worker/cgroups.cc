#include "worker/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/base/file_util.h"

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
      const std::string root = absl::StrCat(kRoot, "/", controller);
      const std::string dir = root + (parts[2] == "/" ? "" : parts[2]);
      if (!Writable(dir)) continue;
      if (controller == "cpu") std::tie(c.cpu_, c.cpu_root_, c.cpu_path_) = std::tuple{dir, root, parts[2]};
      if (controller == "memory") std::tie(c.memory_, c.memory_root_, c.memory_path_) = std::tuple{dir, root, parts[2]};
      if (controller == "pids") std::tie(c.pids_, c.pids_root_, c.pids_path_) = std::tuple{dir, root, parts[2]};
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
      const auto v2 = std::tuple{dir, true, mount, unified_path};
      if (controller == "cpu" && c.cpu_.empty()) std::tie(c.cpu_, c.cpu_v2_, c.cpu_root_, c.cpu_path_) = v2;
      if (controller == "memory" && c.memory_.empty()) std::tie(c.memory_, c.memory_v2_, c.memory_root_, c.memory_path_) = v2;
      if (controller == "pids" && c.pids_.empty()) std::tie(c.pids_, c.pids_v2_, c.pids_root_, c.pids_path_) = v2;
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

absl::StatusOr<std::unique_ptr<Cgroups::Task>> Cgroups::Create(const std::string& name, const ResourceLimits& limits,
                                                               bool as_parent) const {
  std::unique_ptr<Task> task(new Task());
  if (std::string why = Unsupported(limits); !why.empty()) return absl::FailedPreconditionError(why);
  task->parent_ = as_parent;
  // A task's group is <root><own group>/<name> in each controller: beneath the worker's own group
  // there. A parent for an engine needs one path in every hierarchy (the engine makes its groups at
  // the same path in each): that of the worker's memory group, where the limit that matters sits.
  if (as_parent) {
    const std::string& own = memory() ? memory_path_ : cpu() ? cpu_path_ : pids_path_;
    task->path_ = absl::StrCat(own == "/" ? "" : own, "/", name);
  }
  // Makes the group in the hierarchy at `root` (once per folder: v2 controllers share one).
  auto group = [&](const std::string& root, const std::string& own) -> absl::StatusOr<std::string> {
    const std::string dir = root + (as_parent ? task->path_ : absl::StrCat(own == "/" ? "" : own, "/", name));
    for (const std::string& made : task->dirs_) {
      if (made == dir) return dir;
    }
    std::error_code ec;
    if (as_parent) {
      // The folders above it, where the worker's group in this hierarchy is elsewhere: kept after
      // the task (shared by later ones; the engines leave theirs too).
      fs::create_directories(fs::path(dir).parent_path(), ec);
    }
    if (!fs::create_directory(dir, ec) || ec) {
      return absl::InternalError(absl::StrCat("cannot create the cgroup ", dir, ": ", ec.message()));
    }
    task->dirs_.push_back(dir);
    task->procs_files_.push_back(dir + "/cgroup.procs");
    return dir;
  };
  if (limits.cpus > 0) {
    auto dir = group(cpu_root_, cpu_path_);
    if (!dir.ok()) return dir.status();
    const int64_t period = 100'000, quota = std::max<int64_t>(1000, std::llround(limits.cpus * period));
    absl::Status s = cpu_v2_ ? Write(*dir + "/cpu.max", absl::StrCat(quota, " ", period))
                             : Write(*dir + "/cpu.cfs_period_us", absl::StrCat(period));
    if (s.ok() && !cpu_v2_) s = Write(*dir + "/cpu.cfs_quota_us", absl::StrCat(quota));
    if (!s.ok()) return s;
  }
  if (limits.memory_bytes > 0) {
    auto dir = group(memory_root_, memory_path_);
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
      // Notification of the group's OOMs (Documentation/admin-guide/cgroup-v1/memory.rst, 9.).
      task->oom_event_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      task->oom_control_fd_ = ::open((*dir + "/memory.oom_control").c_str(), O_RDONLY | O_CLOEXEC);
      if (task->oom_event_fd_ < 0 || task->oom_control_fd_ < 0 ||
          !Write(*dir + "/cgroup.event_control", absl::StrCat(task->oom_event_fd_, " ", task->oom_control_fd_)).ok()) {
        // Kills in the group itself are still counted; only those in a container's group beneath are not.
        static std::once_flag warned;
        std::call_once(warned, [&]() { spdlog::warn("cannot watch the out-of-memory events of {} (cgroup.event_control)", *dir); });
      }
    }
  }
  if (limits.pids > 0) {
    auto dir = group(pids_root_, pids_path_);
    if (!dir.ok()) return dir.status();
    if (absl::Status s = Write(*dir + "/pids.max", absl::StrCat(limits.pids)); !s.ok()) return s;
  }
  for (const auto& [root, own] : {std::pair{&cpu_root_, &cpu_path_}, {&memory_root_, &memory_path_}, {&pids_root_, &pids_path_}}) {
    if (!as_parent || root->empty()) continue;
    if (auto dir = group(*root, *own); !dir.ok()) return dir.status();
  }
  return task;
}

bool Cgroups::Task::oom_killed() const {
  if (memory_dir_.empty()) return false;
  // v2 counts a kill in every group above the victim's as well.
  if (v2_memory_) return KeyedValue(memory_dir_ + "/memory.events", "oom_kill") > 0;
  if (KeyedValue(memory_dir_ + "/memory.oom_control", "oom_kill") > 0) return true;
  uint64_t events = 0;  // left as it is: asked once, before the group is removed (which signals it too)
  return ::read(oom_event_fd_, &events, sizeof(events)) == sizeof(events) && events > 0;
}

namespace {

// Removes a group and the groups beneath it, killing what is still in them.
void RemoveGroup(const std::string& dir) {
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) RemoveGroup(entry.path().string());
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (::rmdir(dir.c_str()) != 0 && errno == EBUSY && absl::Now() < deadline) {
    std::ifstream procs(dir + "/cgroup.procs");
    pid_t pid = 0;
    while (procs >> pid) ::kill(pid, SIGKILL);
    absl::SleepFor(absl::Milliseconds(10));  // the kernel empties the group as the processes are reaped
  }
}

}  // namespace

Cgroups::Task::~Task() {
  // The executor has killed the step's process group (or the engine removed its container);
  // anything that left the group is killed here, then the (empty) groups are removed.
  for (const std::string& dir : dirs_) RemoveGroup(dir);
  if (oom_event_fd_ >= 0) ::close(oom_event_fd_);
  if (oom_control_fd_ >= 0) ::close(oom_control_fd_);
  if (!parent_ || path_.empty()) return;
  // An engine made this path in the other hierarchies too (blkio, devices, ...): empty folders now.
  std::error_code ec;
  for (const fs::directory_entry& hierarchy : fs::directory_iterator(kRoot, ec)) {
    const std::string dir = hierarchy.path().string() + path_;
    if (!hierarchy.is_symlink(ec) && fs::is_directory(dir, ec)) RemoveGroup(dir);
  }
}

}  // namespace assay
