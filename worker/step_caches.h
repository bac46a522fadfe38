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

  StepCaches(CasClient* cas, InputFetcher* fetcher) : cas_(cas), fetcher_(fetcher) {}

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
  CasClient* const cas_;
  InputFetcher* const fetcher_;
};

}  // namespace assay
