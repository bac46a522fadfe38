#include "worker/metrics.h"

#include <prometheus/metric_type.h>

#include <utility>

namespace assay {

absl::StatusOr<std::unique_ptr<MetricsExposer>> ServeWorkerMetrics(const std::string& listen, WorkerAgent* agent) {
  return MetricsExposer::Start(listen, [agent]() {
    const WorkerAgent::Figures w = agent->figures();
    const MetricFamilies::Labels worker = {{"worker", agent->worker_id()}};
    using prometheus::MetricType;
    auto number = [](int64_t v) { return static_cast<double>(v); };
    MetricFamilies f;
    f.Family("assay_worker_up", "1 while the worker is connected to its coordinator.", MetricType::Gauge);
    f.Sample(w.connected ? 1 : 0, worker);
    f.Family("assay_worker_slots", "Tasks this worker runs at once.", MetricType::Gauge);
    f.Sample(w.slots, worker);
    f.Family("assay_worker_running_tasks", "Tasks running on this worker now.", MetricType::Gauge);
    f.Sample(w.running, worker);
    f.Family("assay_worker_tasks_finished_total", "Tasks this worker ran and reported.", MetricType::Counter);
    f.Sample(number(w.tasks_finished), worker);
    f.Family("assay_worker_executor_failures_total",
             "Tasks that could not be run to an exit: inputs not fetched, command not started, outputs not "
             "collected or uploaded.",
             MetricType::Counter);
    f.Sample(number(w.executor_failures), worker);
    f.Family("assay_worker_input_files_total", "Input files laid out for tasks.", MetricType::Counter);
    f.Sample(number(w.input_files), worker);
    f.Family("assay_worker_local_cache_hits_total", "Input files taken from this host's cache.", MetricType::Counter);
    f.Sample(number(w.local_cache_hits), worker);
    f.Family("assay_worker_input_files_linked_total",
             "Input files hard-linked to this host's checked copy instead of written (steps in the sandbox).",
             MetricType::Counter);
    f.Sample(number(w.input_files_linked), worker);
    f.Family("assay_worker_input_files_kept_total",
             "Linked input files already in place in a folder kept from an earlier task (neither linked nor removed).",
             MetricType::Counter);
    f.Sample(number(w.input_files_kept), worker);
    f.Family("assay_worker_input_copies_checked_total",
             "This host's copies of input files checked after a task had them: kept as unchanged by their change "
             "time, kept after reading their bytes again, or dropped (changed by the step, or linked elsewhere).",
             MetricType::Counter);
    for (auto [how, value] : {std::pair{"unchanged", w.input_copies.unchanged}, std::pair{"read", w.input_copies.read},
                              std::pair{"dropped", w.input_copies.dropped}}) {
      MetricFamilies::Labels labels = worker;
      labels.emplace_back("how", how);
      f.Sample(number(value), labels);
    }
    f.Family("assay_worker_fetched_bytes_total", "Input bytes fetched from the coordinator's CAS.",
             MetricType::Counter);
    f.Sample(number(w.bytes_fetched), worker);
    // Step caches (`caches:`): what restoring and saving them moved.
    f.Family("assay_worker_step_cache_bytes_total",
             "Bytes of step caches: restored (in all), restored_local (of which from this host's copies and cache), "
             "restored_fetched (of which from the coordinator), saved (in all), uploaded (of which the CAS lacked).",
             MetricType::Counter);
    for (auto [kind, value] : {std::pair{"restored", w.caches.restored_bytes},
                               std::pair{"restored_local", w.caches.local_bytes},
                               std::pair{"restored_fetched", w.caches.fetched_bytes},
                               std::pair{"saved", w.caches.saved_bytes},
                               std::pair{"uploaded", w.caches.uploaded_bytes}}) {
      MetricFamilies::Labels labels = worker;
      labels.emplace_back("kind", kind);
      f.Sample(number(value), labels);
    }
    return f.Take();
  });
}

}  // namespace assay
