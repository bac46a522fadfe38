#include "coordinator/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>

#include <limits>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "coordinator/queued_requirements.h"

namespace assay {

namespace {

void CollectNotifications(const Notifier& notifier, MetricFamilies* f) {
  using prometheus::MetricType;
  const Notifier::Stats s = notifier.GetStats();
  f->Family("assay_notifications_total",
            "Notification attempts since the coordinator started, by target and outcome (delivered; failed: given "
            "up; retry: tried again later).",
            MetricType::Counter);
  for (const auto& [target, t] : s.targets) {
    f->Sample(static_cast<double>(t.delivered), {{"outcome", "delivered"}, {"target", target}});
    f->Sample(static_cast<double>(t.failed), {{"outcome", "failed"}, {"target", target}});
    f->Sample(static_cast<double>(t.retries), {{"outcome", "retry"}, {"target", target}});
  }
  f->Family("assay_notifications_pending", "Notifications not yet delivered, by target.", MetricType::Gauge);
  for (const auto& [target, t] : s.targets) f->Sample(static_cast<double>(t.pending), {{"target", target}});
}

prometheus::ClientMetric HistogramMetric(const LatencyHistogram::Snapshot& h) {
  prometheus::ClientMetric m;
  m.histogram.sample_count = h.count;
  m.histogram.sample_sum = h.sum_seconds;
  for (size_t i = 0; i < LatencyHistogram::kBounds.size(); ++i) {
    m.histogram.bucket.push_back({h.cumulative[i], LatencyHistogram::kBounds[i]});
  }
  m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
  return m;
}

// The --cas-store bucket's requests (every try), and the hot tier above it.
void CollectBucket(const S3ClientMetrics& bucket, const TieredBlobStore* tiers, MetricFamilies* f) {
  using prometheus::MetricType;
  const S3ClientMetrics::Snapshot s = bucket.Read();
  f->Family("assay_bucket_requests_total", "Requests sent to the --cas-store bucket (each try), by method.",
            MetricType::Counter);
  for (const auto& [method, n] : s.requests) f->Sample(static_cast<double>(n), {{"method", method}});
  f->Family("assay_bucket_request_errors_total", "Bucket requests that failed, by status code (unavailable, ...).",
            MetricType::Counter);
  for (const auto& [code, n] : s.errors) f->Sample(static_cast<double>(n), {{"code", code}});
  f->Family("assay_bucket_bytes_total", "Bytes sent to and received from the bucket (bodies).", MetricType::Counter);
  f->Sample(static_cast<double>(s.bytes_sent), {{"direction", "sent"}});
  f->Sample(static_cast<double>(s.bytes_received), {{"direction", "received"}});
  f->Family("assay_bucket_request_seconds", "Time each bucket request took (each try).", MetricType::Histogram);
  f->Add(HistogramMetric(s.latency));
  if (tiers == nullptr) return;
  f->Family("assay_hot_tier_reads_total", "CAS reads the hot tier answered (hit) or the bucket did (miss).",
            MetricType::Counter);
  f->Sample(static_cast<double>(tiers->hot_hits()), {{"result", "hit"}});
  f->Sample(static_cast<double>(tiers->hot_misses()), {{"result", "miss"}});
}

void CollectCache(const assay::v1::CacheStats& c, MetricFamilies* f) {
  using prometheus::MetricType;
  auto number = [](int64_t v) { return static_cast<double>(v); };
  f->Family("assay_cas_bytes", "Bytes stored in the CAS.", MetricType::Gauge);
  f->Sample(number(c.bytes()));
  f->Family("assay_cas_blobs", "Blobs stored in the CAS.", MetricType::Gauge);
  f->Sample(number(c.blobs()));
  f->Family("assay_cas_budget_bytes", "The CAS byte budget (0: none).", MetricType::Gauge);
  f->Sample(number(c.budget_bytes()));
  f->Family("assay_cas_evicted_blobs_total", "Blobs evicted to keep within the budget.", MetricType::Counter);
  f->Sample(number(c.evicted_blobs()));
  f->Family("assay_cas_evicted_bytes_total", "Bytes evicted to keep within the budget.", MetricType::Counter);
  f->Sample(number(c.evicted_bytes()));
  f->Family("assay_cas_reads_total", "Blobs read by REAPI clients (ByteStream and batch).", MetricType::Counter);
  f->Sample(number(c.cas_reads()));
  f->Family("assay_cas_writes_total", "Blobs written by REAPI clients (ByteStream and batch).", MetricType::Counter);
  f->Sample(number(c.cas_writes()));
  f->Family("assay_cas_transfer_bytes_total",
            "Bytes of blobs moved by clients: through the coordinator (path=\"coordinator\") or in the bucket "
            "itself with requests it signed (path=\"direct\").",
            MetricType::Counter);
  f->Sample(number(c.cas_read_bytes()), {{"path", "coordinator"}, {"direction", "read"}});
  f->Sample(number(c.cas_written_bytes()), {{"path", "coordinator"}, {"direction", "written"}});
  f->Sample(number(c.direct_read_bytes()), {{"path", "direct"}, {"direction", "read"}});
  f->Sample(number(c.direct_written_bytes()), {{"path", "direct"}, {"direction", "written"}});
  f->Family("assay_action_cache_hits_total", "Action cache lookups that found a complete result.", MetricType::Counter);
  f->Sample(number(c.ac_hits()));
  f->Family("assay_action_cache_misses_total", "Action cache lookups that found nothing usable.", MetricType::Counter);
  f->Sample(number(c.ac_misses()));
}

struct Sources {
  JobManager* jobs;
  std::function<assay::v1::CacheStats()> cache_stats;
  const Notifier* notifier;
  const S3ClientMetrics* bucket;
  const TieredBlobStore* tiers;
};

std::vector<prometheus::MetricFamily> Collect(const Sources& from) {
  JobManager* jobs = from.jobs;
  const assay::v1::CacheStats c = from.cache_stats();
  JobManager::Stats s = jobs->GetStats();
  // Counters exist from the start at 0, so that rates and alerts work before the first event.
  for (const char* state : {"JOB_SUCCEEDED", "JOB_FAILED", "JOB_CANCELLED"}) s.jobs_finished.try_emplace(state, 0);
  for (const char* state : {"TASK_SUCCEEDED", "TASK_FAILED"}) {
    s.tasks_finished.try_emplace({state, false}, 0);
    s.tasks_finished.try_emplace({state, true}, 0);
  }
  for (const char* state : {"TASK_CANCELLED", "TASK_SKIPPED"}) s.tasks_finished.try_emplace({state, false}, 0);
  using prometheus::MetricType;
  auto state_name = [](const std::string& enum_name, absl::string_view prefix) {
    return absl::AsciiStrToLower(absl::string_view(enum_name).substr(prefix.size()));
  };
  auto number = [](int64_t v) { return static_cast<double>(v); };
  MetricFamilies f;
  f.Family("assay_jobs_active", "Jobs not yet finished.", MetricType::Gauge);
  f.Sample(number(s.jobs_active));
  f.Family("assay_jobs_finished_total", "Jobs finished since the coordinator started, by final state.",
         MetricType::Counter);
  for (const auto& [state, n] : s.jobs_finished) f.Sample(number(n), {{"state", state_name(state, "JOB_")}});
  f.Family("assay_tasks", "Tasks of unfinished jobs, by state.", MetricType::Gauge);
  f.Sample(number(s.tasks_pending), {{"state", "pending"}});
  f.Sample(number(s.tasks_queued), {{"state", "queued"}});
  f.Sample(number(s.tasks_running), {{"state", "running"}});
  static_assert(kMaxRequirementSets == 50, "the help text names the bound");
  f.Family("assay_tasks_queued",
           "Queued tasks of unfinished jobs, by what they require of a worker: `requires` is their required labels, "
           "sorted and joined with \",\" (\"\" for none). Beyond 50 sets, those with the fewest tasks are summed "
           "under requires=\"other\".",
           MetricType::Gauge);
  for (const auto& [set, n] : CapRequirementSets(s.tasks_queued_by_requirements)) {
    f.Sample(number(n), {{"requires", set}});
  }
  f.Family("assay_tasks_finished_total",
         "Tasks finished since the coordinator started, by final state and whether the result came from the "
         "action cache.",
         MetricType::Counter);
  for (const auto& [key, n] : s.tasks_finished) {
    f.Sample(number(n), {{"cached", key.second ? "true" : "false"}, {"state", state_name(key.first, "TASK_")}});
  }
  f.Family("assay_workers_connected", "Workers connected now.", MetricType::Gauge);
  f.Sample(number(s.workers_connected));
  f.Family("assay_worker_slots", "Task slots of the connected workers.", MetricType::Gauge);
  f.Sample(number(s.slots));
  f.Family("assay_worker_slots_busy", "Slots running a task now.", MetricType::Gauge);
  f.Sample(number(s.slots_busy));

  f.Family("assay_worker_heartbeat_seconds",
         "Time the coordinator took to handle a worker's heartbeat, waiting for its lock included.",
         MetricType::Histogram);
  f.Add(HistogramMetric(s.heartbeat_seconds));
  f.Family("assay_state_writes_total",
           "Writes of jobs' changes to the coordinator's database (each carries the changes of many requests), "
           "by whether it waited for the disk (fsync).",
           MetricType::Counter);
  f.Sample(number(s.state_writes - s.state_writes_synced), {{"synced", "false"}});
  f.Sample(number(s.state_writes_synced), {{"synced", "true"}});
  f.Family("assay_state_bytes_waiting",
           "Bytes of jobs' changes not yet written to the coordinator's database: more than a moment's worth "
           "means the disk refuses them and they wait in memory.",
           MetricType::Gauge);
  f.Sample(number(s.state_bytes_waiting));
  CollectCache(c, &f);
  if (from.notifier != nullptr) CollectNotifications(*from.notifier, &f);
  if (from.bucket != nullptr) CollectBucket(*from.bucket, from.tiers, &f);
  return f.Take();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(const std::string& listen, JobManager* jobs,
                                                                    std::function<assay::v1::CacheStats()> cache_stats,
                                                                    const Notifier* notifier, const S3ClientMetrics* bucket,
                                                                    const TieredBlobStore* tiers) {
  auto exposer = MetricsExposer::Start(listen, [from = Sources{jobs, std::move(cache_stats), notifier, bucket, tiers}]() {
    return Collect(from);
  });
  if (!exposer.ok()) return exposer.status();
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->exposer_ = std::move(*exposer);
  return server;
}

MetricsServer::~MetricsServer() = default;

}  // namespace assay
