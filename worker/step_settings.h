// What a step's Command asks of the worker beyond its command line, read from its platform
// properties: a console harness (a qemu step), a container, resource limits.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "build/bazel/remote/execution/v2/remote_execution.pb.h"
#include "worker/cgroups.h"
#include "worker/console_harness.h"
#include "worker/container_executor.h"

namespace assay {

namespace reapi = build::bazel::remote::execution::v2;

// The console harness a command asks for (a qemu step), or null.
absl::StatusOr<std::unique_ptr<ConsoleHarness>> HarnessFor(const reapi::Command& command);
// The container a step asks for (its image, network, user), or null.
std::shared_ptr<ContainerRun> ContainerFor(const reapi::Command& command);
// The step's `limits`.
ResourceLimits LimitsFor(const reapi::Command& command);
// The step's `output_limit` (bytes of stdout and stderr together; 0: none) and `output_limit_fails`.
struct OutputLimit {
  int64_t bytes = 0;
  bool fails = false;
};
OutputLimit OutputLimitFor(const reapi::Command& command);

using EnvironmentVars = std::vector<std::pair<std::string, std::string>>;
// The step's environment: the worker's `defaults` (PATH, HOME, TMPDIR, LANG) with the Command's
// variables over them, one entry per name (the last value wins), in first-seen order: a Bazel
// Command carries its own PATH, which must be the one the step sees.
EnvironmentVars StepEnvironment(const reapi::Command& command, EnvironmentVars defaults);

}  // namespace assay
