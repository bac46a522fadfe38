// One retry policy for every call a worker or the CLI makes to a coordinator: which codes are worth
// another try, exponential backoff with jitter between tries, a deadline on each try and one on the
// whole, so a slow or restarting coordinator never hangs a client forever.
#pragma once

#include <cstdint>
#include <functional>
#include <random>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/base/clock.h"

namespace assay {

struct RetryPolicy {
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  double multiplier = 2.0;
  double jitter = 0.2;                               // each wait is scaled by 1 +- jitter
  absl::Duration attempt_timeout = absl::Seconds(60);  // deadline of one try (longer for large blobs)
  absl::Duration overall_timeout = absl::Minutes(2);   // no try starts after this
  int max_attempts = 0;                                // 0: as many as fit in overall_timeout
};

// UNAVAILABLE (no connection, a restart), RESOURCE_EXHAUSTED (overload), ABORTED (a conflict) and
// DEADLINE_EXCEEDED (one try took too long) are retried; every other code is final.
bool IsRetryable(absl::StatusCode code);

class Retrier {
 public:
  explicit Retrier(RetryPolicy policy = {}, const Clock* clock = nullptr, uint64_t seed = std::random_device{}());

  // Calls `attempt(deadline)` until it succeeds, fails with a final code, or time runs out. The
  // deadline is the one the try should give its call. Returns the last status, with how many tries
  // were made when there was more than one.
  absl::Status Run(absl::string_view what, const std::function<absl::Status(absl::Time deadline)>& attempt);

  template <typename T>
  absl::StatusOr<T> Call(absl::string_view what, const std::function<absl::StatusOr<T>(absl::Time deadline)>& attempt) {
    absl::StatusOr<T> result = absl::UnknownError("not called");
    absl::Status status = Run(what, [&](absl::Time deadline) {
      result = attempt(deadline);
      return result.status();
    });
    if (!status.ok()) return status;
    return result;
  }

  // The wait before retry number `retry` (1 for the first retry), jitter included.
  absl::Duration Backoff(int retry);

  const RetryPolicy& policy() const { return policy_; }
  const Clock* clock() const { return clock_; }

 private:
  RetryPolicy policy_;
  const Clock* clock_;
  absl::Mutex mu_;
  std::mt19937_64 random_ ABSL_GUARDED_BY(mu_);
};

}  // namespace assay
