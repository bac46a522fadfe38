// Writes an REAPI input tree into a directory so that no entry of the tree can redirect a write:
// every directory, file and symlink is created relative to an open descriptor of its parent, with
// O_NOFOLLOW / O_EXCL / mkdirat / symlinkat, never through a path an earlier entry could change;
// an entry that already exists is an error, never followed or replaced; symlinks are made last.
// It checks names and symlink targets itself, so it stays safe even for a tree that was never
// validated (ValidateTree is still what callers run first: it explains problems better).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/digest/digest.h"
#include "common/tree/safe_fs.h"
#include "common/tree/tree_validator.h"

namespace assay {

class TreeWriter {
 public:
  struct File {
    Digest digest;
    std::string dir;   // the directory it goes in, relative to the root ("" for the root)
    std::string name;
    bool executable = false;
    std::string path() const { return dir.empty() ? name : dir + "/" + name; }
  };

  // Writes under `root`, an existing directory; its directories come from `spares` where it has some
  // (spare_directories.h), else are made. `existing`: directories (paths relative to `root`) that are
  // there already and are opened (never through a symlink) instead of made; every other entry of the
  // tree must be new, as always.
  static absl::StatusOr<std::unique_ptr<TreeWriter>> Open(const std::filesystem::path& root, TreeLimits limits = {},
                                                          SpareDirectories* spares = nullptr,
                                                          const absl::flat_hash_set<std::string>* existing = nullptr);

  // Creates every directory of the tree and returns the files to write, in tree order.
  absl::StatusOr<std::vector<File>> Layout(const Digest& root, const DirectoryLoader& load);
  // Creates one file of the layout for writing; Commit() it once its bytes are in.
  absl::StatusOr<VerifiedFileWriter> CreateFile(const File& file);
  // Makes the file of the layout a hard link to `from_name` in the directory `from_dir` (an existing
  // entry is an error, never replaced).
  absl::Status LinkFile(const File& file, int from_dir, const std::string& from_name);
  // The reverse: a hard link to the file of the layout (written) at `to_name` in `to_dir`.
  absl::Status ShareFile(const File& file, int to_dir, const std::string& to_name);
  // Creates the symlinks of the layout. Call once every file is written.
  absl::Status FinishSymlinks();

 private:
  struct Link {
    std::string dir;
    std::string name;
    std::string target;
  };
  TreeWriter(ScopedFd root, TreeLimits limits, SpareDirectories* spares, const absl::flat_hash_set<std::string>* existing)
      : root_(std::move(root)), limits_(limits), spares_(spares), existing_(existing) {}
  absl::Status LayoutDir(int fd, const std::string& path, const Digest& digest, const DirectoryLoader& load, int depth,
                         std::vector<File>* files);
  absl::StatusOr<int> DirFd(const std::string& dir);

  ScopedFd root_;
  TreeLimits limits_;
  SpareDirectories* const spares_;                        // may be null
  const absl::flat_hash_set<std::string>* const existing_;  // may be null
  int64_t entries_ = 0;
  std::vector<Link> links_;
  std::string open_dir_;  // the directory `open_fd_` holds
  ScopedFd open_fd_;
};

}  // namespace assay
