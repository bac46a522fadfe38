#include "worker/step_settings.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/task/platform_properties.h"

namespace assay {

// The console harness a command asks for (a qemu step), or null.
absl::StatusOr<std::unique_ptr<ConsoleHarness>> HarnessFor(const reapi::Command& command) {
  for (const auto& p : command.platform().properties()) {
    if (p.name() != kConsoleHarnessProperty) continue;
    assay::v1::QemuSpec spec;
    if (!google::protobuf::util::JsonStringToMessage(p.value(), &spec).ok()) {
      return absl::InvalidArgumentError("the qemu step's harness property is not valid");
    }
    return ConsoleHarness::Create(spec);
  }
  return nullptr;
}

// The container a step asks for (its image, network, user), or null.
std::shared_ptr<ContainerRun> ContainerFor(const reapi::Command& command) {
  std::shared_ptr<ContainerRun> run;
  for (const auto& p : command.platform().properties()) {
    if (p.name() == kContainerImageProperty) {
      if (!run) run = std::make_shared<ContainerRun>();
      run->image = p.value();
    }
  }
  if (!run) return nullptr;
  for (const auto& p : command.platform().properties()) {
    if (p.name() == kContainerNetworkProperty) run->network = p.value() == "true";
    if (p.name() == kContainerUserProperty) run->user = p.value();
  }
  return run;
}

// The step's `limits`, from its command's platform properties.
ResourceLimits LimitsFor(const reapi::Command& command) {
  ResourceLimits limits;
  for (const auto& p : command.platform().properties()) {
    if (p.name() == kLimitCpusProperty) (void)absl::SimpleAtod(p.value(), &limits.cpus);
    if (p.name() == kLimitMemoryProperty) (void)absl::SimpleAtoi(p.value(), &limits.memory_bytes);
    if (p.name() == kLimitPidsProperty) (void)absl::SimpleAtoi(p.value(), &limits.pids);
  }
  return limits;
}

OutputLimit OutputLimitFor(const reapi::Command& command) {
  OutputLimit limit;
  for (const auto& p : command.platform().properties()) {
    if (p.name() == kOutputLimitProperty) (void)absl::SimpleAtoi(p.value(), &limit.bytes);
    if (p.name() == kOutputLimitFailsProperty) limit.fails = p.value() == "true";
  }
  return limit;
}

EnvironmentVars StepEnvironment(const reapi::Command& command, EnvironmentVars defaults) {
  EnvironmentVars env = std::move(defaults);
  for (const auto& var : command.environment_variables()) {
    auto same = std::find_if(env.begin(), env.end(), [&](const auto& e) { return e.first == var.name(); });
    if (same != env.end()) {
      same->second = var.value();
    } else {
      env.emplace_back(var.name(), var.value());
    }
  }
  return env;
}

}  // namespace assay
