// For tests of the worker's linked inputs: starts a task's step (InputLinks::StepStarts) once the
// kernel's coarse clock is a time-stamp step past the change times of the task's linked files, the
// condition for trusting them unchanged on a file system that does not restamp. Polled tick by tick,
// with a deadline (never a bare sleep).
#pragma once

#include <time.h>

#include <gtest/gtest.h>

#include "absl/time/clock.h"
#include "worker/input_links.h"

namespace assay::testing {

inline void StartStepAfterLinks(const InputLinks& links, InputLinks::Claims* claims) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  for (;;) {
    InputLinks::StepStarts(claims);
    bool later = true;
    for (const auto& c : claims->files) later = later && claims->step_start_ns >= c.ctime_ns + links.time_step_ns();
    if (later) return;
    ASSERT_LT(absl::Now(), deadline) << "the coarse clock did not move";
    struct timespec tick {};
    ::clock_getres(CLOCK_REALTIME_COARSE, &tick);
    ::nanosleep(&tick, nullptr);
  }
}

}  // namespace assay::testing
