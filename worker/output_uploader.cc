#include "worker/output_uploader.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "worker/output_collector.h"
#include "worker/output_sizes.h"

namespace assay {

absl::Status OutputUploader::Upload(const reapi::Command& command, const std::filesystem::path& exec_dir,
                                    const std::filesystem::path& task_dir, assay::v1::TaskResult* out,
                                    const NoteFn& note) {
  auto work_fd = OpenDirectory(exec_dir);
  if (!work_fd.ok()) return absl::Status(work_fd.status().code(), absl::StrCat("collecting outputs: ", work_fd.status().message()));
  const std::vector<std::string> output_paths(command.output_paths().begin(), command.output_paths().end());
  auto outputs = CollectOutputs(work_fd->get(), exec_dir.string(), output_paths);
  if (!outputs.ok()) {
    note(absl::StrCat("[assay] ", outputs.status().message(), "\n"));
    return absl::Status(outputs.status().code(), absl::StrCat("collecting outputs: ", outputs.status().message()));
  }
  reapi::ActionResult* result = out->mutable_result();
  // Output sizes (ELF sections too) ride in the action result, for size budgets and reports.
  if (assay::v1::OutputSizes sizes = MeasureOutputs(work_fd->get(), output_paths); sizes.files_size() > 0) {
    result->mutable_execution_metadata()->add_auxiliary_metadata()->PackFrom(sizes);
  }
  for (const std::string& warning : outputs->warnings) note(absl::StrCat("[assay] warning: ", warning, "\n"));
  for (auto& f : outputs->files) *result->add_output_files() = std::move(f);
  for (auto& l : outputs->symlinks) *result->add_output_symlinks() = std::move(l);
  std::vector<TreeBlob> uploads = std::move(outputs->uploads);
  for (const auto& [name, field] : {std::pair{"stdout", 0}, std::pair{"stderr", 1}}) {
    auto digest = DigestFile((task_dir / name).string());
    if (!digest.ok()) continue;
    *(field == 0 ? result->mutable_stdout_digest() : result->mutable_stderr_digest()) = digest->ToProto();
    uploads.push_back(TreeBlob{*digest, "", task_dir / name});
  }
  const std::vector<TreeBlob> to_upload =
      InlineSmallBlobs(uploads, kInlineBlobBytes, kInlineResultBytes, out->mutable_inline_blobs());
  auto uploaded = cas_->Upload(to_upload);
  if (!uploaded.ok()) {
    return absl::Status(uploaded.status().code(), absl::StrCat("uploading outputs: ", uploaded.status().message()));
  }
  local_->KeepLocally(uploads);
  return absl::OkStatus();
}

}  // namespace assay
