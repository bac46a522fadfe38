// The innermost decorator: a step that names an image runs in the container engine, any other on
// the host's executor (sandbox or process). Its errors are the task's errors as reported.
#pragma once

#include <memory>
#include <string>

#include "worker/container_executor.h"
#include "worker/executor.h"

namespace assay {

class ContainerOrHostExecutor final : public Executor {
 public:
  // `containers` may be null: steps with an image then fail (this worker has no engine).
  ContainerOrHostExecutor(std::unique_ptr<Executor> host, std::unique_ptr<ContainerExecutor> containers);
  std::string name() const override { return host_->name(); }
  absl::StatusOr<ExecResult> Run(const ExecRequest& request, const OutputFn& output,
                                 const CancelToken& cancel) override;
  // Null when this worker has no container engine.
  const ContainerExecutor* containers() const { return containers_.get(); }

 private:
  std::unique_ptr<Executor> host_;
  std::unique_ptr<ContainerExecutor> containers_;
};

}  // namespace assay
