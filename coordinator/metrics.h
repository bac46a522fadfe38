// Prometheus metrics of the coordinator, gathered when scraped (nothing is counted twice: the
// figures are the ones `assay workers`, `assay cache stats` and the job views show).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "assay/v1/admin.pb.h"
#include "common/cas/tiered_blob_store.h"
#include "common/metrics/metrics_exposer.h"
#include "common/s3/s3_metrics.h"
#include "coordinator/job_manager.h"
#include "coordinator/notifier.h"

namespace assay {

class MetricsServer {
 public:
  // Serves GET /metrics on `listen` (host:port; port 0 picks one). `cache_stats` is called per scrape.
  // `notifier` may be null (no targets configured); `bucket` too (no --cas-store), and `tiers`.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(const std::string& listen, JobManager* jobs,
                                                              std::function<assay::v1::CacheStats()> cache_stats,
                                                              const Notifier* notifier,
                                                              const S3ClientMetrics* bucket = nullptr,
                                                              const TieredBlobStore* tiers = nullptr);
  ~MetricsServer();
  int port() const { return exposer_->port(); }

 private:
  MetricsServer() = default;
  std::unique_ptr<MetricsExposer> exposer_;
};

}  // namespace assay
