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

TEST(SchedulerTest, AFreedSlotGoesToTheJobWithFewestRunningNotTheOldestTask) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("w", {}, 2);
  for (int i = 0; i < 200; ++i) s.Enqueue(TaskKey{1, i}, {});  // a big job fills every slot
  auto first = s.Dispatch();
  ASSERT_EQ(first.size(), 2u);
  s.Enqueue(TaskKey{2, 0}, {});  // a small job, submitted later
  s.Enqueue(TaskKey{2, 1}, {});
  EXPECT_TRUE(s.Dispatch().empty()) << "every slot busy";
  ASSERT_TRUE(s.Release(first[0].task, first[0].lease_id));
  auto next = s.Dispatch();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].task, (TaskKey{2, 0})) << "job 2 has nothing running, job 1 has one task running";
  ASSERT_TRUE(s.Release(first[1].task, first[1].lease_id));
  next = s.Dispatch();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].task, (TaskKey{1, 2})) << "now each job has one running: the older job's next task";
}

TEST(SchedulerTest, HigherPriorityFirstAndMaxParallelCaps) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("w", {}, 3);
  s.SetJobPolicy(1, /*priority=*/0, /*max_parallel=*/0);
  s.SetJobPolicy(2, /*priority=*/5, /*max_parallel=*/1);
  for (int i = 0; i < 3; ++i) s.Enqueue(TaskKey{1, i}, {});
  for (int i = 0; i < 3; ++i) s.Enqueue(TaskKey{2, i}, {});
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 3u);
  EXPECT_EQ(granted[0].task, (TaskKey{2, 0})) << "priority 5 first";
  EXPECT_EQ(granted[1].task.job, 1u) << "job 2 is capped at 1 running";
  EXPECT_EQ(granted[2].task.job, 1u);
  EXPECT_EQ(s.running_of(2), 1);
  ASSERT_TRUE(s.Release(granted[0].task, granted[0].lease_id));
  auto next = s.Dispatch();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].task, (TaskKey{2, 1})) << "its cap frees with it, and its priority wins the slot";
}

TEST(SchedulerTest, AJobsPolicyOutlivesAnEmptyQueueUntilForgotten) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("w", {}, 1);
  s.SetJobPolicy(7, 9, 0);
  s.Enqueue(TaskKey{7, 0}, {});
  auto a = s.Dispatch();
  ASSERT_TRUE(s.Release(a[0].task, a[0].lease_id));  // job 7 has nothing queued or running now
  s.Enqueue(TaskKey{8, 0}, {});
  s.Enqueue(TaskKey{7, 1}, {});  // its next step, queued later
  auto b = s.Dispatch();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].task, (TaskKey{7, 1})) << "still priority 9";
}


TEST(SchedulerTest, KnownLongTasksGoFirstAndUnknownOnesKeepTheirOrder) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.Enqueue(TaskKey{1, 0}, {}, 0);
  s.Enqueue(TaskKey{1, 1}, {}, 30);
  s.Enqueue(TaskKey{1, 2}, {}, 0);
  s.Enqueue(TaskKey{1, 3}, {}, 120);
  s.Enqueue(TaskKey{1, 4}, {}, 30);
  s.AddWorker("w", {}, 5);
  std::vector<int32_t> order;
  for (const Lease& l : s.Dispatch()) order.push_back(l.task.index);
  EXPECT_EQ(order, (std::vector<int32_t>{3, 1, 4, 0, 2})) << "longest first, equals in arrival order, unknown last";
}

TEST(SchedulerPrefetchTest, HoldsTasksAheadOnlyOnceEveryMatchingSlotIsBusy) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 1, /*prefetch=*/1);
  s.AddWorker("b", {}, 1, /*prefetch=*/1);
  for (int i = 0; i < 5; ++i) s.Enqueue(TaskKey{1, i}, {});
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 4u);
  EXPECT_FALSE(granted[0].held);
  EXPECT_FALSE(granted[1].held);
  EXPECT_NE(granted[0].worker, granted[1].worker) << "both slots are filled before anyone holds a task";
  EXPECT_TRUE(granted[2].held);
  EXPECT_TRUE(granted[3].held);
  EXPECT_NE(granted[2].worker, granted[3].worker) << "one held task per worker";
  EXPECT_EQ(s.queued(), 1u);
  EXPECT_TRUE(s.Dispatch().empty()) << "slots and prefetch full";
  EXPECT_EQ(s.running_of(1), 4) << "held tasks count as the job's running tasks (max_parallel caps them)";
}

TEST(SchedulerPrefetchTest, NoPrefetchMeansNoHeldTask) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 2);
  for (int i = 0; i < 3; ++i) s.Enqueue(TaskKey{1, i}, {});
  EXPECT_EQ(s.Dispatch().size(), 2u);
  EXPECT_TRUE(s.Reclaim().empty());
}

TEST(SchedulerPrefetchTest, AFreeSlotElsewhereReclaimsAHeldTaskOnce) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {"os=linux"}, 1, 1);
  for (int i = 0; i < 2; ++i) s.Enqueue(TaskKey{1, i}, {"os=linux"});
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 2u);
  ASSERT_TRUE(granted[1].held);
  EXPECT_TRUE(s.Reclaim().empty()) << "no free slot anywhere";
  s.AddWorker("gpu-only", {"gpu"}, 1, 1);
  EXPECT_TRUE(s.Reclaim().empty()) << "the idle worker cannot run the held task";
  s.AddWorker("b", {"os=linux"}, 1, 1);
  auto back = s.Reclaim();
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].task, granted[1].task);
  EXPECT_EQ(back[0].worker, "a");
  EXPECT_TRUE(s.Reclaim().empty()) << "asked back once";
  // The worker hands it back unstarted: it is queued at the head of its job and goes to b's slot.
  s.Enqueue(TaskKey{1, 5}, {"os=linux"});
  ASSERT_TRUE(s.GiveBack(granted[1].task, granted[1].lease_id, {"os=linux"}));
  EXPECT_FALSE(s.GiveBack(granted[1].task, granted[1].lease_id, {"os=linux"})) << "the lease is gone";
  auto next = s.Dispatch();
  ASSERT_GE(next.size(), 1u);
  EXPECT_EQ(next[0].task, granted[1].task);
  EXPECT_EQ(next[0].worker, "b");
  EXPECT_FALSE(next[0].held);
}

TEST(SchedulerPrefetchTest, ACordonedWorkersHeldTasksAreAskedBackAndItsRunningOnesStay) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 1, 2);
  for (int i = 0; i < 3; ++i) s.Enqueue(TaskKey{1, i}, {});
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 3u);
  EXPECT_TRUE(s.Reclaim().empty());
  s.SetEligible("a", false);
  auto back = s.Reclaim();
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].task, granted[1].task);
  EXPECT_EQ(back[1].task, granted[2].task);
  EXPECT_TRUE(s.Reclaim().empty()) << "asked once";
}

TEST(SchedulerPrefetchTest, AHeldTaskStartsWhenItsWorkersRunningTaskEnds) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 1, 1);
  for (int i = 0; i < 2; ++i) s.Enqueue(TaskKey{1, i}, {});
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 2u);
  ASSERT_TRUE(s.Release(granted[0].task, granted[0].lease_id));
  s.AddWorker("b", {}, 1, 1);
  EXPECT_TRUE(s.Reclaim().empty()) << "a started its held task when its running one ended";
  s.Enqueue(TaskKey{1, 2}, {});
  auto next = s.Dispatch();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].worker, "b") << "a's slot is taken by the task it held";
  EXPECT_FALSE(next[0].held);
}

TEST(SchedulerPrefetchTest, ACrossedHandBackDoesNotUnholdAnotherTask) {
  // a: running r, held h1; b frees up, h1 is asked back; a hands h1 back just as r ends.
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 1, 1);
  s.AddWorker("b", {}, 1, 0);
  for (int i = 0; i < 3; ++i) s.Enqueue(TaskKey{1, i}, {});
  auto granted = s.Dispatch();  // r on a or b, the other's slot, h1 held on a
  ASSERT_EQ(granted.size(), 3u);
  const Lease* on_b = nullptr;
  const Lease* r = nullptr;
  const Lease* h1 = nullptr;
  for (const Lease& l : granted) {
    if (l.worker == "b") on_b = &l;
    else if (l.held) h1 = &l;
    else r = &l;
  }
  ASSERT_TRUE(on_b && r && h1);
  ASSERT_TRUE(s.Release(on_b->task, on_b->lease_id));
  ASSERT_EQ(s.Reclaim().size(), 1u);
  ASSERT_TRUE(s.Release(r->task, r->lease_id));  // the result of r comes first
  ASSERT_TRUE(s.GiveBack(h1->task, h1->lease_id, {}));
  EXPECT_EQ(s.free_slots("a"), 1);
  EXPECT_EQ(s.free_slots("b"), 1);
  EXPECT_EQ(s.queued(), 1u);
}

// Locality: a task's inputs are the outputs of the steps it needs, on the disk of the worker that
// ran them (linked from there, not fetched and written again).
TEST(SchedulerLocalityTest, ATaskGoesToTheWorkerWithItsInputsWhenThatOneHasRoom) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 2);
  s.AddWorker("b", {}, 1);
  s.Enqueue(TaskKey{1, 0}, {}, 0, "b");
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 1u);
  EXPECT_EQ(granted[0].worker, "b") << "b has its inputs, though a has more free slots";
  s.Enqueue(TaskKey{1, 1}, {}, 0, "b");
  granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 1u);
  EXPECT_EQ(granted[0].worker, "a") << "b is full: no waiting for it";
}

TEST(SchedulerLocalityTest, AFreedSlotGoesToALaterTaskWithItsInputsThere) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 1);
  s.AddWorker("b", {}, 1);
  s.Enqueue(TaskKey{1, 0}, {});
  s.Enqueue(TaskKey{1, 1}, {});
  auto first = s.Dispatch();
  ASSERT_EQ(first.size(), 2u);
  const Lease on_a = first[0].worker == "a" ? first[0] : first[1];
  const Lease on_b = first[0].worker == "a" ? first[1] : first[0];
  ASSERT_TRUE(s.Release(on_a.task, on_a.lease_id));
  s.Enqueue(TaskKey{1, 2}, {});                                // queued first, no inputs anywhere
  s.Enqueue(TaskKey{1, 3}, {}, 0, "a");                        // needs what a just made
  auto next = s.Dispatch();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].task, (TaskKey{1, 3}));
  EXPECT_EQ(next[0].worker, "a");
  ASSERT_TRUE(s.Release(on_b.task, on_b.lease_id));
  next = s.Dispatch();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].task, (TaskKey{1, 2})) << "the task passed over takes the next free slot";
  EXPECT_EQ(next[0].worker, "b");
}

TEST(SchedulerLocalityTest, ATaskIsPassedOverOnlySoOften) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 1);
  s.AddWorker("b", {"gpu"}, 1);  // could take any of them, but has no room
  s.Enqueue(TaskKey{2, 0}, {"gpu"});
  ASSERT_EQ(s.Dispatch().size(), 1u);
  s.Enqueue(TaskKey{1, 0}, {}, 0, "gone");  // its inputs' worker left
  for (int i = 1; i <= Scheduler::kMaxPassedOver + 1; ++i) {
    s.Enqueue(TaskKey{1, i}, {}, 0, "a");
    auto granted = s.Dispatch();
    ASSERT_EQ(granted.size(), 1u);
    const bool head_due = i > Scheduler::kMaxPassedOver;
    EXPECT_EQ(granted[0].task, (TaskKey{1, head_due ? 0 : i})) << "grant " << i;
    ASSERT_TRUE(s.Release(granted[0].task, granted[0].lease_id));
  }
  EXPECT_EQ(s.queued(), 1u);
}

TEST(SchedulerLocalityTest, WithOneWorkerTheQueuesOrderStands) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 1);
  s.Enqueue(TaskKey{1, 0}, {});
  s.Enqueue(TaskKey{1, 1}, {}, 0, "a");
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 1u);
  EXPECT_EQ(granted[0].task, (TaskKey{1, 0})) << "every task is local on the only worker: nothing to pass over for";
}

TEST(SchedulerLocalityTest, AWorkersPrefetchHoldsTheTaskWithItsInputs) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {}, 1, /*prefetch=*/1);
  s.AddWorker("b", {}, 1, /*prefetch=*/1);
  s.Enqueue(TaskKey{1, 0}, {});
  s.Enqueue(TaskKey{1, 1}, {});
  ASSERT_EQ(s.Dispatch().size(), 2u);
  s.Enqueue(TaskKey{1, 2}, {}, 0, "b");
  auto held = s.Dispatch();
  ASSERT_EQ(held.size(), 1u);
  EXPECT_EQ(held[0].worker, "b") << "both have room to hold one; b has its inputs";
  EXPECT_TRUE(held[0].held);
}

TEST(SchedulerLocalityTest, LabelsStillRule) {
  FakeClock clock;
  Scheduler s(&clock, kTtl);
  s.AddWorker("a", {"gpu"}, 1);
  s.AddWorker("b", {}, 1);
  s.Enqueue(TaskKey{1, 0}, {"gpu"}, 0, "b");
  auto granted = s.Dispatch();
  ASSERT_EQ(granted.size(), 1u);
  EXPECT_EQ(granted[0].worker, "a") << "b has the inputs but not the label";
}

}  // namespace
}  // namespace assay
