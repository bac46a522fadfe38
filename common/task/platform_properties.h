// The Command platform properties by which a step's settings travel from the coordinator (which
// writes them, coordinator/action_builder.cc) to the worker (which reads them,
// worker/step_settings.cc). They are part of the action, so a changed setting is a different
// action and never a cache hit of the old one.
#pragma once

namespace assay {

// A qemu step's console harness (QemuSpec as JSON).
inline constexpr const char* kConsoleHarnessProperty = "assay-console-harness";
// A step's `limits` (cpus: a decimal; memory: bytes; pids).
inline constexpr const char* kLimitCpusProperty = "assay-limit-cpus";
inline constexpr const char* kLimitMemoryProperty = "assay-limit-memory";
inline constexpr const char* kLimitPidsProperty = "assay-limit-pids";
// A step's `output_limit` (bytes of stdout and stderr together) and `output_limit_fails` ("true").
inline constexpr const char* kOutputLimitProperty = "assay-output-limit";
inline constexpr const char* kOutputLimitFailsProperty = "assay-output-limit-fails";
// A container step: its image (the resolved id when there is one), network ("true"), user.
inline constexpr const char* kContainerImageProperty = "assay-container-image";
inline constexpr const char* kContainerNetworkProperty = "assay-container-network";
inline constexpr const char* kContainerUserProperty = "assay-container-user";

}  // namespace assay
