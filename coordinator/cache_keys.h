// What Intake checks and computes for a job's step caches (docs/pipeline.md, "Caches"), from the
// submitted tree: hashFiles() in cache keys, and cache paths that would go through a symlink of the
// tree. Reads directories through a loader; no state.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "assay/v1/job.pb.h"
#include "common/digest/digest.h"
#include "common/pipeline/pipeline.h"
#include "common/tree/tree_validator.h"

namespace assay {

// The submitted tree's files, by path, loaded once when a cache key first asks for hashFiles().
class TreeFiles {
 public:
  TreeFiles(Digest root, DirectoryLoader load) : root_(std::move(root)), load_(std::move(load)) {}

  // hashFiles(PATTERNS): the hex SHA-256 of the matching files' SHA-256 digests, in path order
  // (patterns as in `inputs`: a path, a folder "src/" or a glob); "" when no file matches.
  absl::StatusOr<std::string> Hash(const std::vector<std::string>& patterns);

 private:
  absl::Status Load();

  const Digest root_;
  const DirectoryLoader load_;
  bool loaded_ = false;
  std::vector<std::pair<std::string, std::string>> files_;  // path, hash; sorted by path
};

// Fails, naming the pipeline file, the line and the path, when a cache path of a task goes through a
// symlink of the submitted tree (the worker refuses such a path again when it saves).
absl::Status CheckCachePaths(const assay::v1::Job& job, const Digest& root, const DirectoryLoader& load,
                             const std::string& pipeline_path);

}  // namespace assay
