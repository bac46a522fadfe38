// What an S3 client sent and got, for the process's Prometheus metrics: every try counts (a retried
// request is two), by method; failures by their status code; bytes each way; and each try's latency.
// Lock-free (atomics): recorded on the request's thread, read by a scrape.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/base/latency_histogram.h"

namespace assay {

class S3ClientMetrics {
 public:
  static constexpr std::array<const char*, 5> kMethods = {"GET", "HEAD", "PUT", "POST", "DELETE"};
  struct Snapshot {
    std::vector<std::pair<std::string, int64_t>> requests;  // by method
    std::vector<std::pair<std::string, int64_t>> errors;    // by status code ("unavailable"), those seen
    int64_t bytes_sent = 0;
    int64_t bytes_received = 0;
    LatencyHistogram::Snapshot latency;
  };

  void Record(absl::string_view method, absl::Duration took, absl::StatusCode code, int64_t sent, int64_t received);
  Snapshot Read() const;

 private:
  static constexpr int kCodes = 17;  // absl::StatusCode 0..16
  std::array<std::atomic<int64_t>, kMethods.size()> requests_{};
  std::array<std::atomic<int64_t>, kCodes> errors_{};
  std::atomic<int64_t> bytes_sent_{0};
  std::atomic<int64_t> bytes_received_{0};
  LatencyHistogram latency_;
};

}  // namespace assay
