#include "common/base/retrier.h"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/log_format.h"

namespace assay {

bool IsRetryable(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kDeadlineExceeded:
      return true;
    default:
      return false;
  }
}

Retrier::Retrier(RetryPolicy policy, const Clock* clock, uint64_t seed)
    : policy_(policy), clock_(clock != nullptr ? clock : RealClock::Get()), random_(seed) {}

absl::Duration Retrier::Backoff(int retry) {
  double base = absl::ToDoubleSeconds(policy_.initial_backoff) * std::pow(policy_.multiplier, std::max(0, retry - 1));
  base = std::min(base, absl::ToDoubleSeconds(policy_.max_backoff));
  double factor = 1.0;
  {
    absl::MutexLock lock(&mu_);
    std::uniform_real_distribution<double> spread(1.0 - policy_.jitter, 1.0 + policy_.jitter);
    factor = spread(random_);
  }
  return absl::Seconds(base * factor);
}

absl::Status Retrier::Run(absl::string_view what, const std::function<absl::Status(absl::Time deadline)>& attempt) {
  const absl::Time give_up = clock_->Now() + policy_.overall_timeout;
  absl::Status status;
  int tries = 1;
  for (;; ++tries) {
    status = attempt(clock_->Now() + policy_.attempt_timeout);
    if (status.ok() || !IsRetryable(status.code())) return status;
    if (policy_.max_attempts > 0 && tries >= policy_.max_attempts) break;
    const absl::Duration wait = Backoff(tries);
    if (clock_->Now() + wait >= give_up) break;
    spdlog::debug("{} failed ({}); try {} in {}", what, status.ToString(), tries + 1, absl::FormatDuration(wait));
    clock_->SleepFor(wait);
  }
  return absl::Status(status.code(), absl::StrCat(status.message(), " (gave up on ", what, " after ", tries, " tries)"));
}

}  // namespace assay
