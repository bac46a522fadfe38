#include "coordinator/log_retention.h"

#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/task/task_states.h"

namespace assay {

LogRetention::LogRetention(JobStore* store, const Clock* clock, Options options)
    : store_(store), clock_(clock), options_(std::move(options)) {}

LogRetention::~LogRetention() { Stop(); }

absl::StatusOr<int> LogRetention::RunOnce() {
  const absl::Time now = clock_->Now();
  const bool by_age = options_.max_age > absl::ZeroDuration();
  int removed = 0, examined = 0;
  uint64_t first = 0, last = 0;
  uint64_t next = 1;
  // Oldest jobs first (job numbers grow with time); a job still running is passed over.
  while (examined < options_.max_jobs_per_pass) {
    const bool low = options_.disk_low && options_.disk_low();
    if (!by_age && !low) break;
    auto number = store_->NextJobWithLogs(next);
    if (!number.ok()) return number.status();
    if (!number->has_value()) break;
    next = **number + 1;
    ++examined;
    auto job = store_->LoadJob(**number, /*with_tasks=*/false);
    if (!job.ok() || !IsFinal(job->state())) continue;
    const absl::Time finished = absl::FromUnixMillis(job->finished_at_ms());
    std::string why;
    if (by_age && now - finished > options_.max_age) {
      why = absl::StrCat("older than --log-retention ", options_.max_age_text);
    } else if (low) {
      why = absl::StrCat("the coordinator's disk was low (below twice --min-free-disk ", options_.min_free_text,
                         "), and this was the oldest finished job with logs");
    } else {
      break;  // younger than the retention, and the disk has room: so are the jobs after it
    }
    const std::string reason = absl::StrCat("removed at ", absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", now, absl::UTCTimeZone()),
                                            ": ", why);
    if (absl::Status s = store_->RemoveLogs(**number, reason); !s.ok()) return s;
    spdlog::info("job {}: logs removed ({})", **number, why);
    if (removed++ == 0) first = **number;
    last = **number;
    // While the disk is low, each job's space is given back before the disk is looked at again.
    if (low) {
      if (absl::Status s = store_->ReclaimLogs(**number, **number); !s.ok()) return s;
      first = last + 1;
    }
  }
  if (removed > 0 && first <= last) {
    if (absl::Status s = store_->ReclaimLogs(first, last); !s.ok()) return s;
  }
  return removed;
}

void LogRetention::Start() {
  thread_ = std::thread([this] {
    for (;;) {
      auto removed = RunOnce();
      if (!removed.ok()) spdlog::warn("log retention: {}", removed.status().ToString());
      const bool low = options_.disk_low && options_.disk_low();
      const absl::Duration wait = low ? std::min(options_.interval, absl::Seconds(1)) : options_.interval;
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), wait)) return;
    }
  });
}

void LogRetention::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<absl::Duration> ParseRetention(const std::string& text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  absl::Duration d;
  double days = 0;
  if (t == "0") return absl::ZeroDuration();
  if (absl::ConsumeSuffix(&t, "d") && absl::SimpleAtod(t, &days) && days > 0) return absl::Hours(24 * days);
  if (absl::ParseDuration(std::string(absl::StripAsciiWhitespace(text)), &d) && d > absl::ZeroDuration()) return d;
  return absl::InvalidArgumentError(
      absl::StrCat("--log-retention '", text, "' is not a period like 90d, 12h or 30m (0: keep logs however old)"));
}

}  // namespace assay
