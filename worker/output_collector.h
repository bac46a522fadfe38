// Collects a step's declared outputs from its work directory without ever leaving it. Every path is
// opened beneath the work directory's descriptor with no symlink followed; an output that is a
// symlink becomes an REAPI OutputSymlink (path and target) when its target is relative and stays
// inside the work directory, and is refused otherwise: its target's contents are never read.
#pragma once

#include <sys/stat.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/digest/digest.h"
#include "common/tree/merkle.h"

namespace assay {

struct CollectedOutputs {
  std::vector<reapi::OutputFile> files;        // path (relative to the work dir), digest, is_executable
  std::vector<reapi::OutputSymlink> symlinks;  // path, target (REv2.0 commands: the output_file_symlinks)
  // REv2.0 commands only (rev2_outputs.h): output_directories and output_directory_symlinks.
  std::vector<reapi::OutputDirectory> directories;  // path, tree_digest
  std::vector<reapi::OutputSymlink> directory_symlinks;
  // The files' blobs: the bytes of small ones (read once, when collected), the others read beneath
  // the work directory when uploaded.
  std::vector<TreeBlob> uploads;
  std::vector<std::string> warnings;           // declared outputs that matched nothing
};

// Output files up to kInMemoryFileBytes are read into memory when collected, up to kInMemoryBytes
// per step; larger ones are hashed as they are read and read again when uploaded.
inline constexpr int64_t kInMemoryFileBytes = 64 << 10;
inline constexpr int64_t kInMemoryBytes = 1 << 20;

// Called for each output file collected, with its open descriptor and its fstat, once its bytes were
// read whole and found to be `digest`.
using CollectedFileFn = std::function<void(int fd, const struct stat& st, const Digest& digest)>;

// `work_fd` is the open work directory at `work_dir`; `patterns` are output paths or globs ('*', '?',
// '[...]'), a directory standing for everything under it. Fails (naming the output) when an output
// goes through a symlink or is a symlink that points outside the work directory.
absl::StatusOr<CollectedOutputs> CollectOutputs(int work_fd, const std::string& work_dir,
                                                const std::vector<std::string>& patterns,
                                                const CollectedFileFn& collected = nullptr);

// Splits a result's blobs: those of up to `per_blob` bytes, `total` in all, are added to
// `inline_blobs`, to travel with the result (those not in memory read as the upload would read them
// and checked against their digest); the others are returned, to be uploaded first. The empty blob
// needs neither.
std::vector<TreeBlob> InlineSmallBlobs(
    const std::vector<TreeBlob>& blobs, int64_t per_blob, int64_t total,
    google::protobuf::RepeatedPtrField<reapi::BatchUpdateBlobsRequest::Request>* inline_blobs);

}  // namespace assay
