// The console harness runs beside the executor's loop, never in it: feeding it never waits for it,
// it sees every chunk in order, and one that is stuck or falls behind cannot keep a task running.
#include "worker/harness_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"

namespace assay {
namespace {

TEST(HarnessThreadTest, EveryChunkIsFedInOrderWithItsStreamBeforeDrainReturns) {
  std::vector<std::string> seen;  // written by the harness's thread only, read after Drain
  std::atomic<int> stops{0};
  HarnessThread t([&](absl::string_view data, int stream) {
    seen.push_back(std::to_string(stream) + ":" + std::string(data));
    return false;
  }, [&] { ++stops; });
  for (int i = 0; i < 100; ++i) t.Feed(std::to_string(i), i % 2);
  ASSERT_TRUE(t.Drain(absl::Seconds(30)));
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], std::to_string(i % 2) + ":" + std::to_string(i));
  EXPECT_FALSE(t.stopped());
  EXPECT_FALSE(t.overflowed());
  EXPECT_EQ(stops.load(), 0);
}

TEST(HarnessThreadTest, AHarnessThatSaysStopEndsTheRunOnce) {
  std::atomic<int> stops{0};
  HarnessThread t([](absl::string_view data, int) { return data == "PANIC"; }, [&] { ++stops; });
  t.Feed("booting", 0);
  t.Feed("PANIC", 0);
  t.Feed("PANIC", 0);
  ASSERT_TRUE(t.Drain(absl::Seconds(30)));
  EXPECT_TRUE(t.stopped());
  EXPECT_FALSE(t.overflowed());
  EXPECT_EQ(stops.load(), 1);
}

TEST(HarnessThreadTest, FeedingReturnsAtOnceAndDrainGivesUpWhileTheHarnessIsStuck) {
  absl::Notification entered, release;
  std::atomic<int> stops{0};
  {
    HarnessThread t([&](absl::string_view, int) {
      if (!entered.HasBeenNotified()) entered.Notify();
      release.WaitForNotification();  // a harness stuck in one chunk
      return false;
    }, [&] { ++stops; });
    t.Feed("aaaa", 0);
    ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(30)));
    // The executor's loop keeps reading (and so keeps watching its deadline and the cancel).
    for (int i = 0; i < 1000; ++i) t.Feed("more output\n", 0);
    const absl::Time start = absl::Now();
    EXPECT_FALSE(t.Drain(absl::Milliseconds(100))) << "the harness has not read its queue";
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(100));
    EXPECT_FALSE(t.stopped());
    release.Notify();  // (else the destructor leaves the thread behind after a second)
  }
  EXPECT_EQ(stops.load(), 0);
}

TEST(HarnessThreadTest, OutputBeyondThePendingBoundEndsTheRunInsteadOfGrowingTheQueue) {
  absl::Notification entered, release;
  std::atomic<int> stops{0};
  size_t fed = 0;
  {
    HarnessThread t([&](absl::string_view data, int) {
      if (!entered.HasBeenNotified()) entered.Notify();
      release.WaitForNotification();
      fed += data.size();
      return false;
    }, [&] { ++stops; }, /*max_pending_bytes=*/100);
    t.Feed(std::string(60, 'a'), 0);  // taken by the harness, which then waits
    ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(30)));
    t.Feed(std::string(60, 'b'), 0);  // queued: 60 of 100
    EXPECT_FALSE(t.overflowed());
    t.Feed(std::string(60, 'c'), 0);  // 120: over the bound
    EXPECT_TRUE(t.overflowed());
    EXPECT_TRUE(t.stopped());
    EXPECT_EQ(stops.load(), 1);
    t.Feed(std::string(10, 'd'), 0);  // ignored from now on
    release.Notify();
    ASSERT_TRUE(t.Drain(absl::Seconds(30)));
  }
  EXPECT_EQ(fed, 120u) << "the chunks queued before the bound are read; the rest is not";
  EXPECT_EQ(stops.load(), 1);
}

TEST(HarnessThreadTest, AnAbandonedHarnessNeverCallsStopAfterItsOwnerIsGone) {
  absl::Notification entered, release;
  auto stops = std::make_shared<std::atomic<int>>(0);
  {
    HarnessThread t([&](absl::string_view, int) {
      if (!entered.HasBeenNotified()) entered.Notify();
      release.WaitForNotification();
      return true;  // would end the run, but its owner has given up on it
    }, [stops] { ++*stops; });
    t.Feed("x", 0);
    ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(30)));
    EXPECT_FALSE(t.Drain(absl::Milliseconds(10)));
    release.Notify();
  }
  EXPECT_EQ(stops->load(), 0);
}

}  // namespace
}  // namespace assay
