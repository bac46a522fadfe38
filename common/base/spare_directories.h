// Empty directories kept for reuse. Making a directory is a new inode, and on some file systems a
// dear one: ext4 without a journal makes every new inode skip, one by one, the inodes freed in the
// last minutes, so on a busy worker each mkdir cost ~170 us of CPU (docs/benchmarks.md, issue 24).
// A worker that empties a task's folder renames its emptied directories here instead of removing
// them, and takes them back as the next tasks' folders: a rename, no inode made or freed.
//
// Only where nothing can reach a directory after its task: the worker uses this for steps in its
// sandbox, whose every process is gone when the step ends. A directory is kept only when it is
// clean (its owner's, no extended attributes or ACLs) and comes back with mode 0755; it is empty
// because it was emptied before it was kept, and nothing else writes into the pool's folder.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace assay {

class SpareDirectories {
 public:
  // A pool in `dir` (emptied, or made), of at most `capacity` directories. `dir` must be on the file
  // system of the folders it serves (a rename does not cross file systems).
  static absl::StatusOr<std::unique_ptr<SpareDirectories>> Open(const std::filesystem::path& dir, size_t capacity);
  ~SpareDirectories();
  SpareDirectories(const SpareDirectories&) = delete;
  SpareDirectories& operator=(const SpareDirectories&) = delete;

  // Moves a spare directory to `name` in the directory `parent` (never over anything already named
  // so), mode 0755, and returns it opened (O_RDONLY | O_DIRECTORY | O_CLOEXEC; the caller closes it).
  // -1 when there is none or it could not be moved: the caller makes one.
  int Take(int parent, const char* name);

  // Keeps the emptied directory `name` in `parent` (opened as `fd`) for later, when it is clean and
  // the pool has room. False when it was not kept: the caller removes it.
  bool Keep(int parent, const char* name, int fd);

  size_t size() const;

 private:
  SpareDirectories(int fd, size_t capacity) : fd_(fd), capacity_(capacity), euid_(::geteuid()) {}

  const int fd_;  // the pool's folder
  const size_t capacity_;
  const uid_t euid_;  // the owner a clean directory has
  mutable absl::Mutex mu_;
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);  // spares, ready
  size_t reserved_ ABSL_GUARDED_BY(mu_) = 0;             // being kept now (counted against capacity)
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 0;               // the next spare's name
};

}  // namespace assay
