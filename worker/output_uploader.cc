#include "worker/output_uploader.h"

#include <fcntl.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/tree/safe_fs.h"
#include "worker/output_collector.h"
#include "worker/output_sizes.h"
#include "worker/rev2_outputs.h"

namespace assay {
namespace {

absl::Status WithContext(const absl::Status& status, absl::string_view what) {
  return absl::Status(status.code(), absl::StrCat(what, ": ", status.message()));
}

// The collected outputs into `result`: REv2.0 commands get output_files, output_directories and
// the v2.0 symlink fields (what Bazel 4.2 reads); output_paths commands output_files and
// output_symlinks, as before.
void FillResult(const reapi::Command& command, CollectedOutputs* outputs, reapi::ActionResult* result) {
  for (auto& f : outputs->files) *result->add_output_files() = std::move(f);
  if (!UsesRev20Outputs(command)) {
    for (auto& l : outputs->symlinks) *result->add_output_symlinks() = std::move(l);
    return;
  }
  for (auto& l : outputs->symlinks) *result->add_output_file_symlinks() = std::move(l);
  for (auto& d : outputs->directories) *result->add_output_directories() = std::move(d);
  for (auto& l : outputs->directory_symlinks) *result->add_output_directory_symlinks() = std::move(l);
}

}  // namespace

absl::Status OutputUploader::Upload(const reapi::Command& command, const std::filesystem::path& exec_dir,
                                    StepLogs& logs, assay::v1::TaskResult* out, const NoteFn& note,
                                    InputLinks* links) {
  auto exec_fd = OpenDirectory(exec_dir);
  if (!exec_fd.ok()) return WithContext(exec_fd.status(), "collecting outputs");
  // Outputs are relative to the command's working directory (the input root for pipeline steps).
  auto work_rel = WorkingDirectoryOf(command);
  auto work_fd = work_rel.ok() ? OpenBeneath(exec_fd->get(), *work_rel, O_RDONLY | O_DIRECTORY) : work_rel.status();
  if (!work_fd.ok()) return WithContext(work_fd.status(), "collecting outputs");
  const std::vector<std::string> output_paths(command.output_paths().begin(), command.output_paths().end());
  const std::string work_dir = work_rel->empty() ? exec_dir.string() : (exec_dir / *work_rel).string();
  const CollectedFileFn adopt = [links](int fd, const struct stat& st, const Digest& digest) {
    links->AdoptOutput(fd, st, digest);
  };
  auto outputs = UsesRev20Outputs(command)
                     ? CollectRev20Outputs(work_fd->get(), *work_rel, command)
                     : CollectOutputs(work_fd->get(), work_dir, output_paths, links != nullptr ? adopt : nullptr);
  if (!outputs.ok()) {
    note(absl::StrCat("[assay] ", outputs.status().message(), "\n"));
    return WithContext(outputs.status(), "collecting outputs");
  }
  reapi::ActionResult* result = out->mutable_result();
  // Output sizes (ELF sections too) ride in the action result, for size budgets and reports: the
  // output paths' files (REv2.0 commands, Bazel's, have none).
  if (!UsesRev20Outputs(command)) {
    assay::v1::OutputSizes sizes = MeasureOutputs(work_fd->get(), outputs->files, outputs->uploads);
    if (sizes.files_size() > 0) result->mutable_execution_metadata()->add_auxiliary_metadata()->PackFrom(sizes);
  }
  for (const std::string& warning : outputs->warnings) note(absl::StrCat("[assay] warning: ", warning, "\n"));
  FillResult(command, &*outputs, result);
  std::vector<TreeBlob> uploads = std::move(outputs->uploads);
  for (int stream : {0, 1}) {
    auto blob = logs.TakeBlob(stream);
    if (!blob.ok()) {
      note(absl::StrCat("[assay] warning: its ", stream == 0 ? "stdout" : "stderr", " is not kept: ",
                        blob.status().message(), "\n"));
      continue;
    }
    *(stream == 0 ? result->mutable_stdout_digest() : result->mutable_stderr_digest()) = blob->digest.ToProto();
    uploads.push_back(std::move(*blob));
  }
  const std::vector<TreeBlob> to_upload =
      InlineSmallBlobs(uploads, kInlineBlobBytes, kInlineResultBytes, out->mutable_inline_blobs());
  auto uploaded = cas_->Upload(to_upload);
  if (!uploaded.ok()) return WithContext(uploaded.status(), "uploading outputs");
  local_->KeepLocally(uploads);  // while work_fd, which the outputs are opened beneath, is still open
  return absl::OkStatus();
}

}  // namespace assay
