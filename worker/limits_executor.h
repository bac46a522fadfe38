// A decorator that holds a step's resource limits (ExecRequest::limits) in control groups of its
// own, made before the step starts and removed after it (worker/cgroups.h): a host step joins them;
// a container step's engine makes its groups beneath one of the worker's when it shares this host's
// cgroups (so the kernel's OOM count is read here, exactly), and otherwise gets the limits as flags.
#pragma once

#include <memory>
#include <string>

#include "worker/cgroups.h"
#include "worker/container_executor.h"
#include "worker/executor.h"

namespace assay {

class LimitsExecutor final : public Executor {
 public:
  // `containers`: the engine container steps run in (may be null); not owned.
  LimitsExecutor(std::unique_ptr<Executor> inner, Cgroups cgroups, const ContainerExecutor* containers);
  std::string name() const override { return inner_->name(); }
  absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output,
                                 const CancelToken& cancel) override;
  // Which limits this host can enforce, for the worker's start-up log.
  std::string Describe() const { return cgroups_.Describe(); }

 private:
  std::unique_ptr<Executor> inner_;
  const Cgroups cgroups_;
  const ContainerExecutor* const containers_;
};

}  // namespace assay
