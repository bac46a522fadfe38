#include "worker/limits_executor.h"

namespace assay {

LimitsExecutor::LimitsExecutor(std::unique_ptr<Executor> inner, Cgroups cgroups, const ContainerExecutor* containers)
    : inner_(std::move(inner)), cgroups_(std::move(cgroups)), containers_(containers) {}

absl::StatusOr<ExecResult> LimitsExecutor::Run(const ExecRequest& request, const OutputFn& output,
                                               const CancelToken& cancel) {
  const ResourceLimits& limits = request.limits;
  if (!limits.any()) return inner_->Run(request, output, cancel);
  ExecRequest limited = request;
  std::unique_ptr<Cgroups::Task> cgroup;
  if (request.container != nullptr) {
    // Without an engine that shares this host's groups, the engine holds the limits (its flags).
    const bool shared = containers_ != nullptr && containers_->shares_cgroups() && cgroups_.Unsupported(limits).empty();
    if (!shared) return inner_->Run(request, output, cancel);
    auto made = cgroups_.Create(request.container->name, limits, /*as_parent=*/true);
    if (!made.ok()) return absl::FailedPreconditionError(made.status().message());
    cgroup = std::move(*made);
    auto container = std::make_shared<ContainerRun>(*request.container);
    container->cgroup_parent = cgroup->path();
    limited.container = std::move(container);
  } else {
    auto made = cgroups_.Create(request.name, limits);
    if (!made.ok()) return absl::FailedPreconditionError(made.status().message());
    cgroup = std::move(*made);
    limited.join_cgroups = cgroup->procs_files();
  }
  absl::StatusOr<ExecResult> exec = inner_->Run(limited, output, cancel);
  if (exec.ok() && cgroup->oom_killed()) exec->oom_killed = true;
  return exec;
}

}  // namespace assay
