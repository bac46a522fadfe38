// A step's stdout and stderr as the worker keeps them (the part StepOutput keeps): in memory while
// small, in a file of the task's folder once a stream passes kMemoryBytes. Most steps print little,
// and a new file costs an inode: two per task, made and removed again, for nothing but the upload.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tree/merkle.h"
#include "common/tree/safe_fs.h"

namespace assay {

class StepLogs {
 public:
  // Bytes of one stream kept in memory before it moves to its file.
  static constexpr int64_t kMemoryBytes = 256 << 10;

  // The files, when needed, are `task_dir`/stdout and `task_dir`/stderr.
  explicit StepLogs(std::filesystem::path task_dir) : task_dir_(std::move(task_dir)) {}

  // Bytes of stdout (`stream` 0) or stderr (1), in order. A stream whose file cannot be written
  // is dropped from then on (Blob says why).
  void Append(int stream, absl::string_view data);
  // The whole stream for the upload: its digest, and its bytes (`data`) or its file (`file`).
  absl::StatusOr<TreeBlob> Blob(int stream) const;

 private:
  struct Stream {
    std::string memory;
    ScopedFd file;
    absl::Status status;
  };
  std::filesystem::path PathOf(int stream) const { return task_dir_ / (stream == 0 ? "stdout" : "stderr"); }

  const std::filesystem::path task_dir_;
  Stream streams_[2];
};

}  // namespace assay
