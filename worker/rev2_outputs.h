// Commands of REv2.0 clients (Bazel 4.2): outputs declared in `output_files` and
// `output_directories`, relative to the command's `working_directory`, instead of v2.1's
// `output_paths`. Before the run the worker creates the directories leading up to each output (not
// the output directories themselves: REv2.0 leaves those to the command); after it, files become
// OutputFiles, directories OutputDirectories (an REAPI Tree in the CAS, output_tree.h), and
// symlinks output_file_symlinks / output_directory_symlinks. Everything is opened beneath the work
// directory's descriptor with no symlink followed, as for output_paths (output_collector.h).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/digest/digest.h"
#include "worker/output_collector.h"

namespace assay {

// True for a Command that declares its outputs the REv2.0 way: output_files or output_directories,
// and no output_paths (which, when present, win: REAPI v2.1).
bool UsesRev20Outputs(const reapi::Command& command);

// The command's working directory relative to the input root, normalized ("" for the root itself);
// INVALID_ARGUMENT when it is absolute or climbs with "..".
absl::StatusOr<std::string> WorkingDirectoryOf(const reapi::Command& command);

// Before the run, in the input root open at `exec_fd`: checks that the working directory is a
// directory there (reached through no symlink; REAPI: it must exist in the input tree), then, for
// an REv2.0 command, creates the directories leading up to each output file and output directory
// beneath it. Fails naming the path when an output is absolute or climbs, or when a symlink or a
// file stands where a directory must be.
absl::Status PrepareOutputParents(int exec_fd, const reapi::Command& command);

// After the run: the outputs of an REv2.0 command, read beneath `work_fd` (its working directory,
// at `work_rel` inside the input root). `files`, `symlinks` (output_file_symlinks), `directories`
// and `directory_symlinks` carry the paths exactly as the Command wrote them. A missing output is
// only a warning (the client reports it); an output file that is a directory, or an output directory
// that is a file, is FAILED_PRECONDITION (as REAPI says). `uploads` holds each distinct blob once:
// the files' (opened beneath `work_fd`) and the Trees'.
absl::StatusOr<CollectedOutputs> CollectRev20Outputs(int work_fd, const std::string& work_rel,
                                                     const reapi::Command& command);

}  // namespace assay
