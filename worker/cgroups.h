// Resource limits for steps through Linux control groups, on whatever layout the host has: cgroup v1
// controllers (/sys/fs/cgroup/<controller>), the unified v2 hierarchy, or both (hybrid: a controller
// is used where it is mounted with it). Each task gets a group of its own beneath the worker's own
// group of every controller, so a worker confined by its host stays confined.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace assay {

struct ResourceLimits {
  double cpus = 0;          // CPU time per wall second (1.5: one and a half cores); 0: no limit
  int64_t memory_bytes = 0;  // 0: no limit
  int64_t pids = 0;          // processes and threads at once; 0: no limit
  bool any() const { return cpus > 0 || memory_bytes > 0 || pids > 0; }
};

class Cgroups {
 public:
  // Where each controller can be used by this process (found in /proc/self/cgroup and mounts).
  static Cgroups Detect();

  bool cpu() const { return !cpu_.empty(); }
  bool memory() const { return !memory_.empty(); }
  bool pids() const { return !pids_.empty(); }
  // "cgroup v1: cpus, memory, pids" or "none": for the worker's start-up log.
  std::string Describe() const;
  // Why `limits` cannot be enforced here ("" when they can).
  std::string Unsupported(const ResourceLimits& limits) const;

  // One task's groups, removed (their processes killed first) when destroyed.
  class Task {
   public:
    ~Task();
    Task(const Task&) = delete;
    Task& operator=(const Task&) = delete;
    // The cgroup.procs files a process writes "0" to, to join (before it starts the step).
    const std::vector<std::string>& procs_files() const { return procs_files_; }
    // Whether the kernel's OOM killer ended a process of the task for its memory limit.
    bool oom_killed() const;
    // A parent group's path from the root of every hierarchy it is in ("/assay-w1-..."), for a
    // container engine's --cgroup-parent ("" for other groups).
    const std::string& path() const { return path_; }

   private:
    friend class Cgroups;
    Task() = default;
    std::vector<std::string> dirs_;
    std::vector<std::string> procs_files_;
    std::string memory_dir_;
    bool v2_memory_ = false;
    // cgroup v1: an eventfd the kernel signals when the memory group runs out of memory. Unlike the
    // oom_kill count, it also tells of a kill in a group beneath (an engine's container): v1 counts
    // kills only in the victim's own group, which the engine removes with the container.
    int oom_event_fd_ = -1;
    int oom_control_fd_ = -1;
    std::string path_;
    bool parent_ = false;  // a parent for an engine's groups, which may leave folders in other hierarchies
  };
  // Creates the groups of one task (`name`: unique on this host) and writes its limits. With
  // `as_parent` the group is made in every usable controller, to hold a container engine's groups
  // (engines with the cgroupfs driver make theirs beneath it, in every hierarchy; they go with it).
  absl::StatusOr<std::unique_ptr<Task>> Create(const std::string& name, const ResourceLimits& limits,
                                               bool as_parent = false) const;

 private:
  // The folder under which task groups are made, per controller ("" when unusable), and whether it
  // belongs to the v2 hierarchy (other file names).
  std::string cpu_, memory_, pids_;
  bool cpu_v2_ = false, memory_v2_ = false, pids_v2_ = false;
  // The root of each one's hierarchy, and the worker's own group in it ("/" or "/x/y").
  std::string cpu_root_, memory_root_, pids_root_;
  std::string cpu_path_, memory_path_, pids_path_;
};

}  // namespace assay
