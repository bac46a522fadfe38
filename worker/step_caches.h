// A step's caches on this host (docs/pipeline.md, "Caches"). Before the step: each cache the
// coordinator found is written into a staging folder of the task (from this host's cache, else the
// CAS; validated as any input tree), then, once the inputs are in place, moved into the work
// directory beside them (what the inputs hold wins). After a successful step: each cache to save is
// collected beneath the work directory without following symlinks, as outputs are, and only the blobs
// the CAS lacks are uploaded. A cache is an accelerator: any failure here is a line in the step's log,
// never the step's failure.
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "absl/strings/string_view.h"
#include "assay/v1/worker_link.pb.h"
#include "common/remote/cas_client.h"
#include "worker/input_fetcher.h"

namespace assay {

class StepCaches {
 public:
  using NoteFn = std::function<void(absl::string_view line)>;  // "[assay] ...\n"
  struct Figures {
    int64_t restored_bytes = 0;     // bytes written into work directories
    int64_t local_bytes = 0;        // of which from this host's cache
    int64_t fetched_bytes = 0;      // of which fetched from the CAS
    int64_t saved_bytes = 0;        // bytes of the caches saved
    int64_t uploaded_bytes = 0;     // of which the CAS lacked
  };

  // `trees_dir`: where this host keeps a copy of each tree it restored (a restore then copies it, in the
  // kernel, instead of writing every file from the blobs), the least recently used removed beyond
  // `trees_bytes`; empty: none kept.
  // Copies a crash left half-written are removed here.
  StepCaches(CasClient* cas, InputFetcher* fetcher, std::filesystem::path trees_dir = {}, int64_t trees_bytes = 0);

  // Writes each cache of `assignment` that has something to restore under `staging`/N.
  void Restore(const assay::v1::Assignment& assignment, const std::filesystem::path& staging, const NoteFn& note,
               Figures* figures);
  // Moves what Restore staged into `exec_dir`, beside the inputs; then removes `staging`.
  void Place(const std::filesystem::path& staging, const std::filesystem::path& exec_dir, const NoteFn& note);
  // Saves the caches `assignment` asks to save from `exec_dir` into the CAS (and this host's cache) and
  // adds them to `out`.
  void Save(const assay::v1::Assignment& assignment, const std::filesystem::path& exec_dir,
            assay::v1::TaskResult* out, const NoteFn& note, Figures* figures);

 private:
  // Writes the tree at `root` into `dir`: copied from this host's copy (made first when there is none).
  absl::StatusOr<InputFetcher::Stats> RestoreInto(const Digest& root, const std::filesystem::path& dir);
  // This host's copy of the tree at `root` (trees_dir_/HASH_SIZE, with its file bytes in HASH_SIZE.bytes),
  // written whole and renamed into place the first time; `stats` says what that first write moved.
  absl::StatusOr<std::filesystem::path> KeptTree(const Digest& root, InputFetcher::Stats* stats);
  // Removes the least recently used copies (never `keep`) beyond trees_bytes_.
  void Trim(const std::filesystem::path& keep);

  CasClient* const cas_;
  InputFetcher* const fetcher_;
  const std::filesystem::path trees_dir_;
  const int64_t trees_bytes_;
};

}  // namespace assay
