// An output directory of a step as an REAPI Tree (REv2.0's OutputDirectory.tree_digest), read
// beneath an open directory without following any symlink. Symlinks inside stay SymlinkNodes when
// their target is relative and stays inside the step's work directory; others are refused. Every
// Directory is canonical (names sorted), each DirectoryNode carries the digest of the very child
// message the Tree holds (clients rebuild the tree by those digests: Bazel crashes on a mismatch),
// and identical children are stored once, parents before children.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "common/digest/digest.h"
#include "common/tree/merkle.h"

namespace assay {

struct OutputTree {
  reapi::Tree tree;
  Digest digest;       // of `bytes`
  std::string bytes;   // the serialized Tree, the blob OutputDirectory.tree_digest names
};

// The regular file `name` in the open directory `dir` (at `rel`, for messages) as a FileNode: its
// name, digest and executable bit. Opened with no symlink followed.
absl::StatusOr<reapi::FileNode> ReadOutputFile(int dir, const std::string& name, const std::string& rel);

// The target of the symlink `name` in the open directory `dir` (at `rel`, for messages), whose path
// inside the work directory is `dir_in_work`. INVALID_ARGUMENT naming it when the target is absolute
// or leaves the work directory (judged by name: the target is never read).
absl::StatusOr<std::string> ReadOutputSymlink(int dir, const std::string& name, const std::string& rel,
                                              const std::string& dir_in_work);

// Reads the directory `rel` beneath `base_fd` (its path relative to base; "" for base itself).
// `base_rel` is base's own path inside the work directory ("" when base is the work directory),
// against which symlink targets are judged. Each file's blob (opened beneath `base_fd` when
// uploaded) is added to `files` unless its digest is in `seen` (the digests are added there).
// Fails naming the path for a symlink that leaves the work directory or a tree deeper than 256.
absl::StatusOr<OutputTree> ReadOutputTree(int base_fd, const std::string& base_rel, const std::string& rel,
                                          std::vector<TreeBlob>* files, absl::flat_hash_set<Digest>* seen);

}  // namespace assay
