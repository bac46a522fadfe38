// A step's stdout and stderr as the worker keeps them (the part StepOutput keeps): in memory while
// small, in a file of the task's folder once a stream passes kMemoryBytes. Most steps print little,
// and a new file costs an inode: two per task, made and removed again, for nothing but the upload.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/digest/digest.h"
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
  // The whole stream for the upload, once the step is over: its digest, and its bytes (`data`, moved
  // out) or its file (`file`). A stream in a file was hashed as it was written, not read again.
  absl::StatusOr<TreeBlob> TakeBlob(int stream);

 private:
  struct Stream {
    std::string memory;
    ScopedFd file;
    std::unique_ptr<Sha256> hash;  // with the file: every byte written to it
    int64_t file_bytes = 0;
    absl::Status status;
  };
  // Writes `data` to the stream's file, hashing it.
  static void WriteToFile(Stream& s, absl::string_view data);
  std::filesystem::path PathOf(int stream) const { return task_dir_ / (stream == 0 ? "stdout" : "stderr"); }

  const std::filesystem::path task_dir_;
  Stream streams_[2];
};

}  // namespace assay
