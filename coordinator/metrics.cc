#include "coordinator/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace assay {

class MetricsCollector final : public prometheus::Collectable {
 public:
  MetricsCollector(JobManager* jobs, std::function<assay::v1::CacheStats()> cache_stats)
      : jobs_(jobs), cache_stats_(std::move(cache_stats)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    JobManager::Stats s = jobs_->GetStats();
    // Counters exist from the start at 0, so that rates and alerts work before the first event.
    for (const char* state : {"JOB_SUCCEEDED", "JOB_FAILED", "JOB_CANCELLED"}) s.jobs_finished.try_emplace(state, 0);
    for (const char* state : {"TASK_SUCCEEDED", "TASK_FAILED"}) {
      s.tasks_finished.try_emplace({state, false}, 0);
      s.tasks_finished.try_emplace({state, true}, 0);
    }
    for (const char* state : {"TASK_CANCELLED", "TASK_SKIPPED"}) s.tasks_finished.try_emplace({state, false}, 0);
    const assay::v1::CacheStats c = cache_stats_();
    std::vector<prometheus::MetricFamily> out;
    using Labels = std::vector<prometheus::ClientMetric::Label>;
    using prometheus::MetricType;
    // Starts a family; the samples that follow belong to it.
    auto family = [&](const char* name, const char* help, MetricType type) {
      out.push_back(prometheus::MetricFamily{name, help, type, {}});
    };
    auto sample = [&](double value, Labels labels = {}) {
      prometheus::MetricFamily& f = out.back();
      prometheus::ClientMetric m;
      m.label = std::move(labels);
      if (f.type == MetricType::Counter) {
        m.counter.value = value;
      } else {
        m.gauge.value = value;
      }
      f.metric.push_back(std::move(m));
    };
    auto state_name = [](const std::string& enum_name, absl::string_view prefix) {
      return absl::AsciiStrToLower(absl::string_view(enum_name).substr(prefix.size()));
    };
    auto number = [](int64_t v) { return static_cast<double>(v); };

    family("assay_jobs_active", "Jobs not yet finished.", MetricType::Gauge);
    sample(number(s.jobs_active));
    family("assay_jobs_finished_total", "Jobs finished since the coordinator started, by final state.",
           MetricType::Counter);
    for (const auto& [state, n] : s.jobs_finished) sample(number(n), {{"state", state_name(state, "JOB_")}});
    family("assay_tasks", "Tasks of unfinished jobs, by state.", MetricType::Gauge);
    sample(number(s.tasks_pending), {{"state", "pending"}});
    sample(number(s.tasks_queued), {{"state", "queued"}});
    sample(number(s.tasks_running), {{"state", "running"}});
    family("assay_tasks_finished_total",
           "Tasks finished since the coordinator started, by final state and whether the result came from the "
           "action cache.",
           MetricType::Counter);
    for (const auto& [key, n] : s.tasks_finished) {
      sample(number(n), {{"cached", key.second ? "true" : "false"}, {"state", state_name(key.first, "TASK_")}});
    }
    family("assay_workers_connected", "Workers connected now.", MetricType::Gauge);
    sample(number(s.workers_connected));
    family("assay_worker_slots", "Task slots of the connected workers.", MetricType::Gauge);
    sample(number(s.slots));
    family("assay_worker_slots_busy", "Slots running a task now.", MetricType::Gauge);
    sample(number(s.slots_busy));

    family("assay_worker_heartbeat_seconds",
           "Time the coordinator took to handle a worker's heartbeat, waiting for its lock included.",
           MetricType::Histogram);
    {
      prometheus::ClientMetric m;
      const auto& h = s.heartbeat_seconds;
      m.histogram.sample_count = h.count;
      m.histogram.sample_sum = h.sum_seconds;
      for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
        m.histogram.bucket.push_back({h.cumulative[i], LatencyHistogram::kBounds[i]});
      }
      m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
      out.back().metric.push_back(std::move(m));
    }
    family("assay_cas_bytes", "Bytes stored in the CAS.", MetricType::Gauge);
    sample(number(c.bytes()));
    family("assay_cas_blobs", "Blobs stored in the CAS.", MetricType::Gauge);
    sample(number(c.blobs()));
    family("assay_cas_budget_bytes", "The CAS byte budget (0: none).", MetricType::Gauge);
    sample(number(c.budget_bytes()));
    family("assay_cas_evicted_blobs_total", "Blobs evicted to keep within the budget.", MetricType::Counter);
    sample(number(c.evicted_blobs()));
    family("assay_cas_evicted_bytes_total", "Bytes evicted to keep within the budget.", MetricType::Counter);
    sample(number(c.evicted_bytes()));
    family("assay_cas_reads_total", "Blobs read by REAPI clients (ByteStream and batch).", MetricType::Counter);
    sample(number(c.cas_reads()));
    family("assay_cas_writes_total", "Blobs written by REAPI clients (ByteStream and batch).", MetricType::Counter);
    sample(number(c.cas_writes()));
    family("assay_action_cache_hits_total", "Action cache lookups that found a complete result.", MetricType::Counter);
    sample(number(c.ac_hits()));
    family("assay_action_cache_misses_total", "Action cache lookups that found nothing usable.", MetricType::Counter);
    sample(number(c.ac_misses()));
    return out;
  }

 private:
  JobManager* jobs_;
  std::function<assay::v1::CacheStats()> cache_stats_;
};

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen, JobManager* jobs,
                                                                    std::function<assay::v1::CacheStats()> cache_stats) {
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->collector_ = std::make_shared<MetricsCollector>(jobs, std::move(cache_stats));
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen, ": ", e.what()));
  }
  server->exposer_->RegisterCollectable(server->collector_);
  auto ports = server->exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen));
  server->port_ = ports.front();
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace assay
