#include "coordinator/scheduler.h"

#include <gtest/gtest.h>

namespace assay {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(30);

TEST(LabelsTest, KeyValueAndBareLabels) {
  std::vector<std::string> offered = {"os=linux", "arch=x86_64", "qemu"};
  EXPECT_TRUE(LabelsMatch({}, offered));
  EXPECT_TRUE(LabelsMatch({"os=linux", "qemu"}, offered));
  EXPECT_TRUE(LabelsMatch({"arch"}, offered)) << "a bare key matches any value";
  EXPECT_FALSE(LabelsMatch({"os=bsd"}, offered));
  EXPECT_FALSE(LabelsMatch({"gpu"}, offered));
  EXPECT_FALSE(LabelsMatch({"qemu=7"}, offered));
}

TEST(SchedulerTest, DispatchesOldestFirstWithinFreeSlots) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("w1", {}, 2);
  for (int i = 0; i < 3; ++i) s.Enqueue(TaskKey{1, i}, {});
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 2u);
  EXPECT_EQ(granted[0].task, (TaskKey{1, 0}));
  EXPECT_EQ(granted[1].task, (TaskKey{1, 1}));
  EXPECT_EQ(s.queued(), 1u);
  EXPECT_TRUE(s.Dispatch().empty()) << "no free slot";
  EXPECT_TRUE(s.Release(granted[0].task, granted[0].lease_id));
  auto next = s.Dispatch();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].task, (TaskKey{1, 2}));
}

TEST(SchedulerTest, SpreadsWorkAndHonoursLabels) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {"os=linux"}, 2);
  s.AddWorker("b", {"os=linux", "gpu"}, 2);
  s.Enqueue(TaskKey{1, 0}, {"gpu"});
  s.Enqueue(TaskKey{1, 1}, {"fpga"});
  s.Enqueue(TaskKey{1, 2}, {});
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 2u);
  EXPECT_EQ(granted[0].worker, "b");
  EXPECT_EQ(granted[1].worker, "a") << "the worker with more free slots takes the next task";
  EXPECT_EQ(s.queued(), 1u) << "nobody offers fpga";
  EXPECT_FALSE(s.AnyWorkerCouldRun({"fpga"}));
}

TEST(SchedulerTest, LeaseExpiresOnlyAfterTtl) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("w", {}, 1);
  s.Enqueue(TaskKey{1, 0}, {});
  auto lease = s.Dispatch().at(0);
  clock.Advance(kTtl);
  EXPECT_TRUE(s.ExpireLeases().empty()) << "at exactly the TTL the lease still holds";
  clock.Advance(absl::Nanoseconds(1));
  auto expired = s.ExpireLeases();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].lease_id, lease.lease_id);
  EXPECT_FALSE(s.CheckLease(lease.task, lease.lease_id).ok()) << "a late result is fenced off";
  EXPECT_EQ(s.free_slots("w"), 1);
}

TEST(SchedulerTest, RenewalExtendsOnlyTheWorkersOwnLiveLeases) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("w", {}, 1);
  s.Enqueue(TaskKey{1, 0}, {});
  auto lease = s.Dispatch().at(0);
  clock.Advance(kTtl - absl::Seconds(1));
  EXPECT_EQ(s.Renew("other", {{lease.task, lease.lease_id}}), 0);
  EXPECT_EQ(s.Renew("w", {{lease.task, "wrong"}}), 0);
  EXPECT_EQ(s.Renew("w", {{lease.task, lease.lease_id}}), 1);
  clock.Advance(kTtl);
  EXPECT_TRUE(s.ExpireLeases().empty());
  clock.Advance(absl::Nanoseconds(1));
  EXPECT_EQ(s.ExpireLeases().size(), 1u);
}

TEST(SchedulerTest, RemovingAWorkerReturnsItsLeases) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("w", {}, 2);
  s.Enqueue(TaskKey{1, 0}, {});
  s.Enqueue(TaskKey{2, 3}, {});
  auto granted = s.Dispatch();
  auto lost = s.RemoveWorker("w");
  ASSERT_EQ(lost.size(), 2u);
  EXPECT_EQ(lost[0].task, (TaskKey{1, 0}));
  EXPECT_FALSE(s.CheckLease(granted[0].task, granted[0].lease_id).ok());
  EXPECT_FALSE(s.Release(granted[1].task, granted[1].lease_id));
}

TEST(SchedulerTest, DequeueTakesATaskOffTheQueue) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.Enqueue(TaskKey{1, 0}, {});
  EXPECT_TRUE(s.Dequeue(TaskKey{1, 0}));
  EXPECT_FALSE(s.Dequeue(TaskKey{1, 0}));
  s.AddWorker("w", {}, 1);
  EXPECT_TRUE(s.Dispatch().empty());
}

}  // namespace
}  // namespace assay
