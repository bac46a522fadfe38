// A decorator that runs a qemu step's console harness (ExecRequest::harness) beside the run: the
// output is judged as it is printed (on a thread of its own, worker/harness_thread.h, so the inner
// executor's loop, which enforces the timeout and the cancel, only queues it), the emulator is ended
// when the harness says so, and the harness's verdict comes back in ExecResult::console.
#pragma once

#include <memory>
#include <string>

#include "worker/executor.h"

namespace assay {

class HarnessExecutor final : public Executor {
 public:
  // How long the harness may take, once the emulator has ended, to read the output it has not read
  // yet (it reads as the output comes, so normally there is nothing left).
  static constexpr absl::Duration kDrainWait = absl::Seconds(5);

  explicit HarnessExecutor(std::unique_ptr<Executor> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output,
                                 const CancelToken& cancel) override;

 private:
  std::unique_ptr<Executor> inner_;
};

}  // namespace assay
