// Input files as hard links to one copy per digest on this host, for steps in the sandbox.
//
// Writing a step's inputs costs, per file, a read from the local cache, its hash, a new file and,
// when the task is over, freeing it again; a make-based step has tens of inputs, and on a busy disk
// a new inode is the dearest part (ext4 without a journal skips every recently freed one). A link
// costs a directory entry. Bazel's sandbox and Buildbarn's workers link inputs the same way.
//
// What a step could do to a shared file is ruled out, not hoped away:
// - Links are made only for steps in the bubblewrap sandbox: every process of the step dies with it,
//   and the step's work directory is the only place on this filesystem it can write, so when its
//   folder is removed no other name of the file is left.
// - A copy is linked into one task at a time. Up to kMaxCopies copies of a file are kept, so tasks
//   that overlap still link theirs: a slot's next task starts while the folder of its last one is
//   still being removed, other slots run the same cell's steps, and folders kept for later tasks
//   (kept_folders.h) hold theirs.
// - When the task is over, each file it had is checked before another task may have it: a regular
//   file, its mode and size unchanged, no other link left, its bytes hashing to its digest.
//   Anything else and the file is dropped (the next task writes its own copy again).
// - Its bytes are not read again when the kernel says nothing changed it: the file's change time
//   (ctime: set by the kernel on every write, truncation, mode, owner or link change, and not
//   settable by a process) is the one read right after it was linked into the task, and it is
//   found so with the task's folder still there (NoteUnchanged). That proves it unchanged where a
//   change cannot carry the same time:
//   - on a file system that stamps a change made after its ctime was read with a finer, later
//     time (Linux 6.13's multigrain time-stamps: ext4, XFS, btrfs, tmpfs), probed at Open by
//     changing a file right after reading its time, many times;
//   - elsewhere, for a step that started at least one time-stamp step (the file system's
//     granularity, also probed) after that time: a change made after the start is stamped no
//     earlier than the kernel's coarse clock then (StepStarts).
//   Otherwise (coarse time-stamps and a file linked just before its step; a task that never ran)
//   the bytes are read. (Assumed: the machine's clock is not set back meanwhile.)
// - A sandboxed step's output files become copies too once it has ended (AdoptOutput), linked
//   through the descriptor their bytes were just hashed from: nothing of the step runs any more, and
//   the task's folder only loses its name for them.
// - The folder is emptied when the worker starts, so no file outlives the checks of this run.
// Input times: a linked file keeps the time it was first written, not the task's; steps with step
// caches (whose restored outputs are compared with their inputs' times by make and cargo) get
// copies, as do container steps.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/digest/digest.h"
#include "common/tree/safe_fs.h"
#include "common/tree/tree_writer.h"

namespace assay {

class InputLinks {
 public:
  // Files larger than this are copied (checking a linked file after its task reads it whole).
  static constexpr int64_t kMaxFileBytes = 4 << 20;
  // Copies kept of one file (of one digest and mode), each linked into one task at a time.
  static constexpr int kMaxCopies = 8;

  // `dir`: a folder of its own on the work directory's filesystem, emptied (or made) now. Files are
  // kept within `budget_bytes`, the least recently used dropped first. `restamps`: whether the file
  // system restamps every change after a look (see above); unset: probed (tests set it).
  static absl::StatusOr<std::unique_ptr<InputLinks>> Open(const std::filesystem::path& dir, int64_t budget_bytes,
                                                          std::optional<bool> restamps = std::nullopt);

  // The files one task has (hold them until the task's folder is gone, then Release them).
  struct Claim {
    std::string name;        // the copy's name in the folder
    std::string path;        // where the task has it (TreeWriter::File::path)
    Digest digest;           // what the task has there
    bool executable = false;
    ino_t inode = 0;         // the copy's inode and change time when it was linked into the task
    int64_t ctime_ns = -1;   // (-1: not known)
    bool unchanged = false;  // NoteUnchanged found it as it was linked
  };
  struct Claims {
    std::vector<Claim> files;
    int64_t step_start_ns = -1;  // the kernel's coarse clock when the step started (StepStarts)
  };
  // How Release found the files of a task.
  struct Released {
    int unchanged = 0;  // kept: their change time proved them unchanged
    int read = 0;       // kept: their bytes read and hashed again
    int dropped = 0;    // changed by the step or linked elsewhere: gone
    Released& operator+=(const Released& other) {
      unchanged += other.unchanged;
      read += other.read;
      dropped += other.dropped;
      return *this;
    }
  };

  // Links the file of the layout from one of this host's copies, claiming it for the task: false
  // when there is none yet, every copy is in use, or it is too large (the caller writes the file
  // itself, then Adopts it).
  bool Link(TreeWriter& tree, const TreeWriter::File& file, Claims* claims);
  // Takes the file just written for the task as one more copy of this host's (claimed by the task),
  // if there are fewer than kMaxCopies and it fits. Best effort.
  void Adopt(TreeWriter& tree, const TreeWriter::File& file, Claims* claims);
  // Takes an output of a step that has ended in the sandbox (every process of it gone) as one more
  // copy of this host's, free for the next task to link (the cell's test after its build) instead
  // of writing it again: `fd` is the file (`st` its fstat), its bytes just read whole and found to
  // be `digest`. Only a plain file is taken: regular, this user's, its one link the task's, mode
  // 0644 or 0755 (as a written input would be), no extended attributes, fitting; and not when a
  // copy no task holds is there already. It is not the task's to check: nothing can change it once
  // its step has ended, and the task's folder only loses its name for it (which a task that links
  // it meanwhile finds as a change of its time, and so has its bytes read again at Release). Best
  // effort.
  void AdoptOutput(int fd, const struct stat& st, const Digest& digest);
  // The task's step is about to start (nothing it runs exists yet).
  static void StepStarts(Claims* claims);
  // The task's step has ended, every process of it gone, and its folder is still there: notes the
  // files whose change time is still the one they were linked with, where that proves they are
  // unchanged (see above).
  void NoteUnchanged(Claims* claims) const;
  // The task's folder is gone: checks each claimed file (see above) and frees it for the next task,
  // or drops it.
  Released Release(Claims* claims);

  int64_t bytes() const;
  int64_t files() const;
  // The granularity of the folder's time-stamps, probed at Open (2 s when the probe could not tell).
  int64_t time_step_ns() const { return time_step_ns_; }
  // Whether a change made after a file's time was read always gets another time (see above).
  bool restamps() const { return restamps_; }

 private:
  struct Entry {
    int64_t size = 0;
    mode_t mode = 0;
    Digest digest;
    bool in_use = false;
    std::list<std::string>::iterator lru;  // position in lru_ (front: least recently used)
  };
  InputLinks(ScopedFd dir, int64_t budget, int64_t time_step_ns, bool restamps)
      : dir_(std::move(dir)), budget_(budget), time_step_ns_(time_step_ns), restamps_(restamps) {}
  // The name of copy `copy` of the file with `digest` in the folder.
  static std::string NameOf(const Digest& digest, bool executable, int copy);
  // Reserves the name of a new copy of the file (in use by the caller), making room for it (the
  // least recently used copies no task holds go): empty when there are kMaxCopies already, no room,
  // or (`unless_free`) a copy no task holds.
  std::string Reserve(const Digest& digest, bool executable, bool unless_free);
  std::string ReserveLocked(const Digest& digest, bool executable, bool unless_free, std::vector<std::string>* evicted)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A reserved copy that could not be made: its name goes, file and entry.
  void Unreserve(const std::string& name);
  // Whether the file `name` in the folder is still exactly what `entry` says (see above), read whole
  // unless NoteUnchanged found it unchanged (`*read`: whether it was).
  bool Intact(const Claim& claim, const Entry& entry, bool* read) const;
  // Claims the copy `name`, just linked into the task as `file`; `st`: its inode and change time
  // (null: not known).
  static void AddClaim(std::string name, std::string path, const Digest& digest, bool executable,
                       const struct stat* st, Claims* claims);
  void DropLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ScopedFd dir_;
  const int64_t budget_;
  const int64_t time_step_ns_;  // the granularity of the folder's time-stamps
  const bool restamps_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace assay
