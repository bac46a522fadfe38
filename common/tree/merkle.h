// REAPI Merkle trees: directories as Directory messages addressed by digest.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest/digest.h"
#include "common/tree/tree_validator.h"

namespace assay {

// A blob of a tree to upload: a serialized Directory held in memory, or a file on disk.
struct TreeBlob {
  Digest digest;
  std::string data;              // used when `file` is empty
  std::filesystem::path file;
  // When set, `file` is relative to this directory and is opened beneath it without following any
  // symlink (outputs of a step: the step may have left symlinks anywhere).
  int base_fd = -1;
};

struct LocalTree {
  Digest root;
  std::vector<TreeBlob> blobs;   // every distinct blob of the tree, directories and files
  int64_t files = 0;
  int64_t file_bytes = 0;
};

// Relative paths (using '/') for which this returns true are left out.
using IgnoreFn = std::function<bool(const std::string& relative_path, bool is_directory)>;

// Reads a directory into a Merkle tree. Symlinks are kept as symlinks when they stay inside the tree
// and are relative; others are an error naming them.
absl::StatusOr<LocalTree> ScanDirectory(const std::filesystem::path& dir, const IgnoreFn& ignore);

using BlobSaver = std::function<absl::Status(const Digest&, const std::string& bytes)>;

// The tree at `root` with `files` and `symlinks` added (replacing entries of the same path); new
// directories are saved.
absl::StatusOr<Digest> AddFilesToTree(const Digest& root, const std::vector<reapi::OutputFile>& files,
                                      const std::vector<reapi::OutputSymlink>& symlinks, const DirectoryLoader& load,
                                      const BlobSaver& save);

// The tree at `root` keeping only files that match one of `patterns`: an exact path, a folder
// ("src/" or "src/**": everything under it) or a glob ("src/*.c", '*' stays within a folder).
// Empty directories are dropped; new directories are saved.
absl::StatusOr<Digest> FilterTree(const Digest& root, const std::vector<std::string>& patterns,
                                  const DirectoryLoader& load, const BlobSaver& save);

// True when `path` is selected by `pattern` (see FilterTree).
bool PathMatches(absl::string_view pattern, absl::string_view path);

// The file at `path` in the tree; NotFound naming the path when absent.
absl::StatusOr<reapi::FileNode> FindFile(const Digest& root, absl::string_view path, const DirectoryLoader& load);

// Sorts a Directory's entries by name, as REAPI requires for a canonical digest.
void Canonicalize(reapi::Directory* directory);

}  // namespace assay
