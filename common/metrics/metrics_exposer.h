// Prometheus metrics served over HTTP (GET /metrics), gathered afresh on every scrape by a function
// the process gives: the coordinator and each worker serve their own.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <prometheus/metric_family.h>

#include "absl/status/statusor.h"

namespace prometheus {
class Exposer;
}

namespace assay {

// Builds the families of one scrape: Family starts one, the Samples that follow belong to it.
class MetricFamilies {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;
  void Family(const char* name, const char* help, prometheus::MetricType type);
  void Sample(double value, const Labels& labels = {});
  // A raw sample (a histogram) of the current family.
  void Add(prometheus::ClientMetric metric);
  std::vector<prometheus::MetricFamily> Take() { return std::move(families_); }

 private:
  std::vector<prometheus::MetricFamily> families_;
};

class MetricsExposer {
 public:
  // Serves on `listen` (host:port; port 0 picks one); `collect` is called per scrape, on the server's thread.
  static absl::StatusOr<std::unique_ptr<MetricsExposer>> Start(const std::string& listen,
                                                               std::function<std::vector<prometheus::MetricFamily>()> collect);
  ~MetricsExposer();
  int port() const { return port_; }

 private:
  MetricsExposer() = default;
  std::shared_ptr<class FunctionCollectable> collectable_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace assay
