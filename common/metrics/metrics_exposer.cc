#include "common/metrics/metrics_exposer.h"

#include <prometheus/client_metric.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include <exception>

#include "absl/strings/str_cat.h"

namespace assay {

class FunctionCollectable final : public prometheus::Collectable {
 public:
  explicit FunctionCollectable(std::function<std::vector<prometheus::MetricFamily>()> collect)
      : collect_(std::move(collect)) {}
  std::vector<prometheus::MetricFamily> Collect() const override { return collect_(); }

 private:
  std::function<std::vector<prometheus::MetricFamily>()> collect_;
};

void MetricFamilies::Family(const char* name, const char* help, prometheus::MetricType type) {
  families_.push_back(prometheus::MetricFamily{name, help, type, {}});
}

void MetricFamilies::Sample(double value, const Labels& labels) {
  prometheus::ClientMetric m;
  for (const auto& [name, label_value] : labels) m.label.push_back({name, label_value});
  if (families_.back().type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  Add(std::move(m));
}

void MetricFamilies::Add(prometheus::ClientMetric metric) { families_.back().metric.push_back(std::move(metric)); }

absl::StatusOr<std::unique_ptr<MetricsExposer>> MetricsExposer::Start(
    const std::string& listen, std::function<std::vector<prometheus::MetricFamily>()> collect) {
  std::unique_ptr<MetricsExposer> server(new MetricsExposer());
  server->collectable_ = std::make_shared<FunctionCollectable>(std::move(collect));
  try {  // prometheus-cpp reports a port it cannot bind by throwing
    server->exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen, ": ", e.what()));
  }
  server->exposer_->RegisterCollectable(server->collectable_);
  auto ports = server->exposer_->GetListeningPorts();
  if (ports.empty()) return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", listen));
  server->port_ = ports.front();
  return server;
}

MetricsExposer::~MetricsExposer() = default;

}  // namespace assay
