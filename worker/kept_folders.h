// A sandboxed task's folder kept for a later task instead of emptied (issue 24), as Bazel's
// --reuse_sandbox_directories keeps its sandboxes: the next task's tree is mostly the same files at
// the same paths (a matrix's cells share their sources), so the links and directories that are
// already right stay, and only what differs is removed and made. Per task that saves a link made
// and removed per unchanged input file and a rename in and out of the spare pool per directory.
//
// What a later task may find in a kept folder is ruled out, not hoped away (the same grounds as
// input_links.h and spare_directories.h: every process of a sandboxed step is gone when it ends):
// - When the task is over, its folder is tidied down to directories (its owner's, no extended
//   attributes or ACLs, made mode 0755 again) and the input files the step linked and left
//   unchanged (InputLinks::NoteUnchanged: their change time is the one they were linked with) and
//   still has at the path the tree gave them, the same inode. Everything else goes: outputs, logs,
//   temporary files, symlinks, anything the step added, moved or changed. The files kept stay claimed
//   (no other task links those copies meanwhile).
// - A task that takes a kept folder first fits it to its own tree: a kept file stays only where the
//   tree has a file of the same digest and mode at the same path, a directory only where the tree
//   has one; the rest is removed (and the files released) before anything of the tree is made.
//   Then the tree is laid out as usual, its existing directories opened (never through a symlink)
//   instead of made, and every other entry new.
// Only for steps whose inputs are linked (input_links.h: the sandbox, no step caches, no image).
#pragma once

#include <cstddef>
#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/base/spare_directories.h"
#include "common/tree/tree_validator.h"
#include "worker/input_links.h"

namespace assay {

class KeptFolders {
 public:
  // The name of the input tree's folder in a task's folder.
  static constexpr char kWorkDir[] = "work";

  // A tree's files (by path: digest, executable) and directories, as it will be laid out.
  struct Plan {
    absl::flat_hash_map<std::string, std::pair<Digest, bool>> files;
    absl::flat_hash_set<std::string> dirs;
  };
  // A task's folder as kept: `task_dir` holds `work/` and nothing else.
  struct Folder {
    std::filesystem::path task_dir;
    absl::flat_hash_map<std::string, InputLinks::Claim> files;  // by path in work/
    absl::flat_hash_set<std::string> dirs;                      // the directories in work/, by path
    std::optional<Plan> plan;  // once taken: the plan of the tree it was chosen for, for Fit
  };
  // The plan of the tree at `root`; InvalidArgument beyond `limits` (its depth, its entries as laid
  // out: a tree that names a directory many times is refused, not walked).
  static absl::StatusOr<Plan> PlanOf(const Digest& root, const DirectoryLoader& load, const TreeLimits& limits);

  // Keeps up to `capacity` folders (the worker: two per slot, so that a task finds one that had a
  // tree like its own, a build a build's, a test a test's); `links` and `spares` are the worker's
  // (spares may be null).
  KeptFolders(InputLinks* links, SpareDirectories* spares, size_t capacity)
      : links_(links), spares_(spares), capacity_(capacity) {}
  ~KeptFolders();
  KeptFolders(const KeptFolders&) = delete;
  KeptFolders& operator=(const KeptFolders&) = delete;

  // A task is over (its step ended, or never started) and its result sent: tidies `task_dir` (see
  // above) and keeps it, releasing the claims it does not keep; or removes it all when it cannot
  // be tidied. `claims` is emptied. Returns how the released files were found.
  InputLinks::Released Keep(const std::filesystem::path& task_dir, InputLinks::Claims* claims);
  // The kept folder with the most files `plan` has at the same paths (a tie: the most recently
  // kept; null plan: the most recently kept), renamed to `task_dir` (which must not exist); nullopt
  // when there is none, none has a file of the plan, or it could not be moved (it is removed).
  std::optional<Folder> Take(const std::filesystem::path& task_dir, const Plan* plan = nullptr);
  // Fits a folder taken for a task to the task's tree (see above) and returns the files it keeps
  // for it, by path: the task claims them. When something cannot be removed, work/ is emptied
  // instead and nothing is kept; an error only when even that fails (its files are released by then).
  absl::StatusOr<absl::flat_hash_map<std::string, InputLinks::Claim>> Fit(Folder* folder, const Plan& plan,
                                                                          InputLinks::Released* released);

  size_t size() const;

 private:
  // Tidies the directory `fd` (`path` in work/) for keeping, recording what stays in `folder`;
  // `unchanged`: the task's unchanged files by path, `kept` marks those kept. False: not keepable.
  bool TidyDir(int fd, const std::string& path, int depth, const InputLinks::Claims& claims,
               const absl::flat_hash_map<std::string, size_t>& unchanged, std::vector<bool>* kept, Folder* folder);
  // Removes a folder (all of it) and releases its files.
  InputLinks::Released Drop(Folder folder);

  InputLinks* const links_;
  SpareDirectories* const spares_;
  const size_t capacity_;
  mutable absl::Mutex mu_;
  std::deque<Folder> folders_ ABSL_GUARDED_BY(mu_);  // oldest first
};

}  // namespace assay
