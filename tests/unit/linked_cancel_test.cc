// LinkedCancel: a step's own token follows the task's, with no thread of its own.
#include "worker/linked_cancel.h"

#include <gtest/gtest.h>
#include <poll.h>

#include <memory>
#include <thread>
#include <vector>

#include "absl/time/clock.h"

namespace assay {
namespace {

bool Readable(const CancelToken& token) {
  pollfd fd{token.fd(), POLLIN, 0};
  return ::poll(&fd, 1, 0) == 1 && (fd.revents & POLLIN) != 0;
}

TEST(LinkedCancelTest, TheInnerTokenIsCancelledWithTheOuterOneAndItsDescriptorSaysSo) {
  CancelToken outer, inner;
  LinkedCancel linked(outer, &inner);
  EXPECT_FALSE(inner.cancelled());
  EXPECT_FALSE(Readable(inner));
  outer.Cancel();
  EXPECT_TRUE(inner.cancelled());
  EXPECT_TRUE(Readable(inner));  // what an executor polls
}

TEST(LinkedCancelTest, CancellingTheInnerTokenLeavesTheOuterOneAlone) {
  CancelToken outer, inner;
  LinkedCancel linked(outer, &inner);
  inner.Cancel();  // the output limit stops the step, not the task
  EXPECT_FALSE(outer.cancelled());
}

TEST(LinkedCancelTest, AnOuterTokenCancelledBeforeTheLinkCancelsTheInnerOneAtOnce) {
  CancelToken outer, inner;
  outer.Cancel();
  LinkedCancel linked(outer, &inner);
  EXPECT_TRUE(inner.cancelled());
}

TEST(LinkedCancelTest, AfterTheLinkEndsTheOuterTokenNoLongerReachesTheInnerOne) {
  CancelToken outer;
  auto inner = std::make_unique<CancelToken>();
  { LinkedCancel linked(outer, inner.get()); }
  inner.reset();  // gone: a cancel that still reached it would touch freed memory (ASan)
  outer.Cancel();
  CancelToken again;
  LinkedCancel linked(outer, &again);
  EXPECT_TRUE(again.cancelled());
}

TEST(LinkedCancelTest, ChainsFollowAndLinksMadeWhileCancellingAreCancelled) {
  // The task's token, the step's, the harness's: a cancel goes down the chain.
  CancelToken task, step, harness;
  LinkedCancel first(task, &step);
  LinkedCancel second(step, &harness);
  // Links made and unmade on other threads while the task is cancelled: each token linked before
  // its link ends is cancelled, whichever of the two came first.
  std::vector<std::unique_ptr<CancelToken>> late(8);
  for (auto& t : late) t = std::make_unique<CancelToken>();
  std::vector<std::thread> threads;
  for (auto& t : late) {
    threads.emplace_back([&task, token = t.get()] {
      LinkedCancel link(task, token);
      const absl::Time deadline = absl::Now() + absl::Seconds(10);
      while (!token->cancelled() && absl::Now() < deadline) std::this_thread::yield();
    });
  }
  task.Cancel();
  for (auto& t : threads) t.join();
  EXPECT_TRUE(step.cancelled());
  EXPECT_TRUE(harness.cancelled());
  for (const auto& t : late) EXPECT_TRUE(t->cancelled());
}

}  // namespace
}  // namespace assay
