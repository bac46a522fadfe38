// The retry policy with a fake clock: which codes are retried, backoff growth and cap with jitter,
// the overall deadline, and the deadline each try gets.
#include "common/base/retrier.h"

#include <gtest/gtest.h>

namespace assay {
namespace {

RetryPolicy Policy() {
  RetryPolicy p;
  p.initial_backoff = absl::Milliseconds(100);
  p.max_backoff = absl::Seconds(2);
  p.jitter = 0.2;
  p.attempt_timeout = absl::Seconds(30);
  p.overall_timeout = absl::Seconds(10);
  return p;
}

TEST(RetrierTest, RetriesUnavailableUntilItSucceeds) {
  FakeClock clock;
  Retrier retrier(Policy(), &clock, 7);
  int calls = 0;
  absl::Status s = retrier.Run("call", [&](absl::Time deadline) {
    EXPECT_EQ(deadline, clock.Now() + absl::Seconds(30));
    return ++calls < 4 ? absl::UnavailableError("restarting") : absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(calls, 4);
}

TEST(RetrierTest, AFinalCodeIsNotRetried) {
  FakeClock clock;
  Retrier retrier(Policy(), &clock, 7);
  for (absl::StatusCode code : {absl::StatusCode::kInvalidArgument, absl::StatusCode::kPermissionDenied,
                                absl::StatusCode::kNotFound, absl::StatusCode::kDataLoss}) {
    int calls = 0;
    absl::Status s = retrier.Run("call", [&](absl::Time) {
      ++calls;
      return absl::Status(code, "no");
    });
    EXPECT_EQ(s.code(), code);
    EXPECT_EQ(calls, 1);
  }
}

TEST(RetrierTest, BackoffGrowsIsCappedAndJittered) {
  Retrier retrier(Policy(), nullptr, 7);
  for (int i = 0; i < 50; ++i) {
    absl::Duration first = retrier.Backoff(1), third = retrier.Backoff(3), tenth = retrier.Backoff(10);
    EXPECT_GE(first, absl::Milliseconds(80));
    EXPECT_LE(first, absl::Milliseconds(120));
    EXPECT_GE(third, absl::Milliseconds(320));
    EXPECT_LE(third, absl::Milliseconds(480));
    EXPECT_GE(tenth, absl::Milliseconds(1600));
    EXPECT_LE(tenth, absl::Milliseconds(2400));
  }
}

TEST(RetrierTest, GivesUpAtTheOverallDeadlineWithTheLastError) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  Retrier retrier(Policy(), &clock, 7);
  int calls = 0;
  absl::Status s = retrier.Run("GetJob", [&](absl::Time) {
    ++calls;
    return absl::UnavailableError("connection refused");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("connection refused"), absl::string_view::npos) << s;
  EXPECT_NE(s.message().find("gave up on GetJob"), absl::string_view::npos) << s;
  EXPECT_LE(clock.Now() - start, absl::Seconds(10));
  EXPECT_GT(calls, 3);
}

}  // namespace
}  // namespace assay
