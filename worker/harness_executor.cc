#include "worker/harness_executor.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "worker/console_harness.h"
#include "worker/harness_thread.h"
#include "worker/linked_cancel.h"

namespace assay {
namespace {

// The harness's verdict once the run has ended: it first reads what is still queued (a bounded wait).
ConsoleVerdict Judge(HarnessThread* judging, ConsoleHarness* harness, const ExecResult& exec,
                     const std::string& step) {
  std::string trouble;
  if (!judging->Drain(HarnessExecutor::kDrainWait)) {
    trouble = absl::StrCat("the console harness did not finish reading the output within ",
                           absl::FormatDuration(HarnessExecutor::kDrainWait), " after the emulator ended");
  } else if (judging->overflowed()) {
    trouble = absl::StrCat("the console harness fell more than ", HarnessThread::kMaxPendingBytes >> 20,
                           " MiB behind the emulator's output; the emulator was stopped");
  }
  ConsoleVerdict verdict;
  if (trouble.empty()) {
    const ConsoleHarness::Verdict judged = harness->Judge(exec.exit_code, exec.timed_out, judging->stopped());
    verdict.passed = judged.passed;
    verdict.message = judged.message;
  } else {
    spdlog::warn("step {}: {}", step, trouble);
    verdict.message = trouble;
  }
  verdict.met = harness->met();
  verdict.harness_stopped = judging->stopped();
  return verdict;
}

}  // namespace

absl::StatusOr<ExecResult> HarnessExecutor::Run(const ExecRequest& request, const OutputFn& output,
                                                const CancelToken& cancel) {
  if (request.harness == nullptr) return inner_->Run(request, output, cancel);
  std::shared_ptr<ConsoleHarness> harness = request.harness;
  CancelToken stop;  // the run's cancel, or the harness's decision to end the run
  LinkedCancel linked(cancel, &stop);
  HarnessThread judging([harness](absl::string_view data, int stream) { return harness->Feed(data, stream); },
                        [&stop] { stop.Cancel(); });
  absl::StatusOr<ExecResult> exec = inner_->Run(
      request,
      [&](OutputStream stream, absl::string_view data) {
        output(stream, data);
        judging.Feed(data, stream == OutputStream::kStdout ? 0 : 1);
      },
      stop);
  if (exec.ok()) exec->console = Judge(&judging, harness.get(), *exec, request.name);
  return exec;
}

}  // namespace assay
