// A fixed-bucket latency histogram, lock-free to record into, read as Prometheus reads histograms
// (cumulative counts per upper bound, with a count and a sum).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"

namespace assay {

class LatencyHistogram {
 public:
  // Upper bounds in seconds: 10 us to 10 s.
  static constexpr std::array<double, 19> kBounds = {1e-5,   2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
                                                     2.5e-2, 5e-2,   0.1,  0.25, 0.5,    1,    2.5,  5,      10};
  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per bound in kBounds, then +Inf
    uint64_t count = 0;
    double sum_seconds = 0;
  };

  void Observe(absl::Duration d) {
    const double s = absl::ToDoubleSeconds(d);
    size_t i = 0;
    while (i < kBounds.size() && s > kBounds[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_nanos_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_relaxed);
  }

  Snapshot Read() const {
    Snapshot out;
    uint64_t running = 0;
    for (const auto& b : buckets_) {
      running += b.load(std::memory_order_relaxed);
      out.cumulative.push_back(running);
    }
    out.count = running;
    out.sum_seconds = static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) / 1e9;
    return out;
  }

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<int64_t> sum_nanos_{0};
};

}  // namespace assay
