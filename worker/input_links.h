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
//   still being removed, and other slots run the same cell's steps.
// - When the task is over, each file it had is checked before another task may have it: a regular
//   file, its mode and size unchanged, no other link left, its bytes hashing to its digest.
//   Anything else and the file is dropped (the next task writes its own copy again).
// - The folder is emptied when the worker starts, so no file outlives the checks of this run.
// Input times: a linked file keeps the time it was first written, not the task's; steps with step
// caches (whose restored outputs are compared with their inputs' times by make and cargo) get
// copies, as do container steps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <list>
#include <memory>
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
  static constexpr int kMaxCopies = 4;

  // `dir`: a folder of its own on the work directory's filesystem, emptied (or made) now. Files are
  // kept within `budget_bytes`, the least recently used dropped first.
  static absl::StatusOr<std::unique_ptr<InputLinks>> Open(const std::filesystem::path& dir, int64_t budget_bytes);

  // The files one task has (hold them until the task's folder is gone, then Release them).
  struct Claims {
    std::vector<std::string> names;
  };

  // Links the file of the layout from one of this host's copies, claiming it for the task: false
  // when there is none yet, every copy is in use, or it is too large (the caller writes the file
  // itself, then Adopts it).
  bool Link(TreeWriter& tree, const TreeWriter::File& file, Claims* claims);
  // Takes the file just written for the task as one more copy of this host's (claimed by the task),
  // if there are fewer than kMaxCopies and it fits. Best effort.
  void Adopt(TreeWriter& tree, const TreeWriter::File& file, Claims* claims);
  // The task's folder is gone: checks each claimed file (see above) and frees it for the next task,
  // or drops it. Returns how many were dropped.
  int Release(Claims* claims);

  int64_t bytes() const;
  int64_t files() const;

 private:
  struct Entry {
    int64_t size = 0;
    mode_t mode = 0;
    Digest digest;
    bool in_use = false;
    std::list<std::string>::iterator lru;  // position in lru_ (front: least recently used)
  };
  InputLinks(ScopedFd dir, int64_t budget) : dir_(std::move(dir)), budget_(budget) {}
  // The name of the file's copy `copy` in the folder.
  static std::string NameOf(const TreeWriter::File& file, int copy);
  // Whether the file `name` in the folder is still exactly what `entry` says (see above).
  bool Intact(const std::string& name, const Entry& entry) const;
  void DropLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ScopedFd dir_;
  const int64_t budget_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace assay
