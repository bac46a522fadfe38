#include "worker/container_or_host_executor.h"

#include "absl/strings/str_cat.h"

namespace assay {

ContainerOrHostExecutor::ContainerOrHostExecutor(std::unique_ptr<Executor> host,
                                                 std::unique_ptr<ContainerExecutor> containers)
    : host_(std::move(host)), containers_(std::move(containers)) {}

absl::StatusOr<ExecResult> ContainerOrHostExecutor::Run(const ExecRequest& request, const OutputFn& output,
                                                        const CancelToken& cancel) {
  Executor* executor = host_.get();
  if (request.container != nullptr) {
    if (containers_ == nullptr) {
      return absl::FailedPreconditionError(
          "this worker has no container engine (start it with --container-engine docker|podman)");
    }
    executor = containers_.get();
  }
  absl::StatusOr<ExecResult> exec = executor->Run(request, output, cancel);
  if (!exec.ok()) return absl::Status(exec.status().code(), absl::StrCat("starting the command: ", exec.status().message()));
  return exec;
}

}  // namespace assay
