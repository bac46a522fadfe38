#include "common/s3/s3_metrics.h"

#include "absl/strings/ascii.h"

namespace assay {

void S3ClientMetrics::Record(absl::string_view method, absl::Duration took, absl::StatusCode code, int64_t sent,
                             int64_t received) {
  for (size_t i = 0; i < kMethods.size(); ++i) {
    if (method == kMethods[i]) requests_[i].fetch_add(1, std::memory_order_relaxed);
  }
  const int c = static_cast<int>(code);
  if (c > 0 && c < kCodes) errors_[static_cast<size_t>(c)].fetch_add(1, std::memory_order_relaxed);
  bytes_sent_.fetch_add(sent, std::memory_order_relaxed);
  bytes_received_.fetch_add(received, std::memory_order_relaxed);
  latency_.Observe(took);
}

S3ClientMetrics::Snapshot S3ClientMetrics::Read() const {
  Snapshot out;
  for (size_t i = 0; i < kMethods.size(); ++i) out.requests.emplace_back(kMethods[i], requests_[i].load());
  for (int c = 1; c < kCodes; ++c) {
    const int64_t n = errors_[static_cast<size_t>(c)].load();
    if (n > 0) out.errors.emplace_back(absl::AsciiStrToLower(absl::StatusCodeToString(static_cast<absl::StatusCode>(c))), n);
  }
  out.bytes_sent = bytes_sent_.load();
  out.bytes_received = bytes_received_.load();
  out.latency = latency_.Read();
  return out;
}

}  // namespace assay
