// Small file-system helpers that report errors as absl::Status.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace assay {

absl::StatusOr<std::string> ReadFile(const std::filesystem::path& path);
// Writes atomically: a temporary file beside the target, then rename.
absl::Status WriteFile(const std::filesystem::path& path, absl::string_view data, bool executable = false);
absl::Status MakeDirs(const std::filesystem::path& path);
class SpareDirectories;
// Removes `path` and everything under it, never following a symlink. With `spares`, its emptied
// directories are kept there (spare_directories.h) instead of removed, when they are clean.
absl::Status RemoveAll(const std::filesystem::path& path, SpareDirectories* spares = nullptr);

// The entries of the directory open as `fd` but "." and "..", with their types as the file system
// reports them (DT_UNKNOWN where it does not), read straight from `fd` (getdents64): no copy of the
// descriptor and no DIR stream. `fd` is read from where it stands: pass one freshly opened.
struct DirectoryEntry {
  std::string name;
  unsigned char type = 0;  // DT_REG, DT_DIR, DT_LNK, ... or DT_UNKNOWN
  ino_t ino = 0;           // the entry's inode, as the listing gives it
};
absl::StatusOr<std::vector<DirectoryEntry>> ListDirectory(int fd);

// A relative path with no "..", no absolute part and no empty segments.
absl::Status CheckRelativePath(absl::string_view path, absl::string_view what);

// A directory removed (recursively) when the object goes away.
class ScopedTempDir {
 public:
  explicit ScopedTempDir(absl::string_view prefix = "assay");
  ~ScopedTempDir();
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string RandomHex(size_t bytes);

}  // namespace assay
