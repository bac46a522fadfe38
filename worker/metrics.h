// The worker's own Prometheus metrics (GET /metrics on --metrics-listen): slots, running tasks,
// executor failures, this host's cache hits and the bytes fetched from the coordinator.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/metrics/metrics_exposer.h"
#include "worker/agent.h"

namespace assay {

// Serves `agent`'s figures on `listen` (host:port; port 0 picks one) until destroyed.
absl::StatusOr<std::unique_ptr<MetricsExposer>> ServeWorkerMetrics(const std::string& listen, WorkerAgent* agent);

}  // namespace assay
