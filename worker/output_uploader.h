// A finished step's outputs into the coordinator's CAS: its declared outputs, collected beneath its
// work directory without following symlinks (output_collector.h; rev2_outputs.h for REv2.0
// commands' output_files and output_directories, with their Trees), their sizes (ELF sections too,
// output_sizes.h) and its stdout and stderr files. Small blobs travel inline with the result (one
// round trip fewer per step); the rest is uploaded first. Everything is also kept in this host's
// cache, where the cell's next steps on this host read it; a sandboxed step's output files also
// become this host's input copies, which those steps link instead of writing.
#pragma once

#include <filesystem>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "assay/v1/worker_link.pb.h"
#include "common/remote/cas_client.h"
#include "worker/input_fetcher.h"
#include "worker/step_logs.h"

namespace assay {

class OutputUploader {
 public:
  // Blobs of a result up to this size travel inline with it, up to kInlineResultBytes in all.
  static constexpr int64_t kInlineBlobBytes = 64 << 10;
  static constexpr int64_t kInlineResultBytes = 1 << 20;
  // A line of the worker's in the task's log ("[assay] ...\n").
  using NoteFn = std::function<void(absl::string_view line)>;

  // `local`: where the outputs are also kept for this host (InputFetcher::KeepLocally).
  OutputUploader(CasClient* cas, InputFetcher* local) : cas_(cas), local_(local) {}

  // Fills `out`'s result (output files, directories and symlinks, stdout/stderr digests, sizes,
  // inline blobs) for `command` run in `exec_dir` (its outputs relative to the command's working
  // directory there; REv2.0 commands' as rev2_outputs.h says), whose stdout and stderr are `logs`.
  // The error is the task's, as reported. `links`: this host's input copies, when the task's inputs
  // were linked (its step ran in the sandbox and has ended): each output file also becomes one
  // (InputLinks::AdoptOutput), so the cell's next step here links it.
  absl::Status Upload(const reapi::Command& command, const std::filesystem::path& exec_dir, StepLogs& logs,
                      assay::v1::TaskResult* out, const NoteFn& note, InputLinks* links = nullptr);

 private:
  CasClient* const cas_;
  InputFetcher* const local_;
};

}  // namespace assay
