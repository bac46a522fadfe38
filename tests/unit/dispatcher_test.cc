// Dispatcher: worker sessions, the queue, leases, prepared actions and their pins, without a coordinator.
#include "coordinator/dispatcher.h"

#include <gtest/gtest.h>

#include <map>

namespace assay {
namespace {

// Counts pins per digest.
class CountingPinner final : public BlobPinner {
 public:
  bool pinning_matters() const override { return true; }
  void Pin(const std::vector<Digest>& digests) override {
    for (const auto& d : digests) pins[d.hash()]++;
  }
  void Unpin(const std::vector<Digest>& digests) override {
    for (const auto& d : digests) pins[d.hash()]--;
  }
  std::map<std::string, int> pins;
};

assay::v1::WorkerHello Hello(const std::string& id, int slots, std::vector<std::string> labels = {}) {
  assay::v1::WorkerHello hello;
  hello.set_worker_id(id);
  hello.set_slots(slots);
  for (auto& l : labels) hello.add_labels(l);
  return hello;
}

class DispatcherTest : public ::testing::Test {
 protected:
  // A prepared action whose one pinned blob is `name` (pinned here, as ActionBuilder does).
  Dispatcher::ReadyAction Action(const std::string& name) {
    Dispatcher::ReadyAction a;
    a.command.add_arguments(name);
    a.pins = {Digest::OfBytes(name)};
    pinner_.Pin(a.pins);
    return a;
  }
  int Pins(const std::string& name) { return pinner_.pins[Digest::OfBytes(name).hash()]; }

  FakeClock clock_;
  CountingPinner pinner_;
  std::unique_ptr<Dispatcher> dispatcher_ = std::make_unique<Dispatcher>(&clock_, absl::Seconds(10), &pinner_);
};

TEST_F(DispatcherTest, AQueuedTaskIsGrantedWithItsActionAndTheWorkersSession) {
  auto session = std::make_shared<WorkerSession>("w");
  EXPECT_TRUE(dispatcher_->Connect(Hello("w", 1), session).empty());
  dispatcher_->Queue({1, 0}, {}, Action("step-a"));
  dispatcher_->Queue({1, 1}, {}, Action("step-b"));
  auto grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 1u) << "one slot";
  EXPECT_EQ(grants[0].lease.task, (TaskKey{1, 0}));
  EXPECT_EQ(grants[0].session, session);
  ASSERT_NE(grants[0].action, nullptr);
  EXPECT_EQ(grants[0].action->command.arguments(0), "step-a");
  EXPECT_TRUE(dispatcher_->CheckLease({1, 0}, grants[0].lease.lease_id).ok());
  EXPECT_FALSE(dispatcher_->CheckLease({1, 0}, "another").ok());
  EXPECT_EQ(dispatcher_->queued(), 1u);
  EXPECT_TRUE(dispatcher_->Release({1, 0}, grants[0].lease.lease_id));
  EXPECT_EQ(dispatcher_->Dispatch().size(), 1u) << "the freed slot takes the next task";
}

TEST_F(DispatcherTest, PinsAreHeldFromQueueUntilForgottenAcrossRequeues) {
  dispatcher_->Queue({1, 0}, {}, Action("inputs"));
  EXPECT_EQ(Pins("inputs"), 1);
  auto session = std::make_shared<WorkerSession>("w");
  dispatcher_->Connect(Hello("w", 1), session);
  auto grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 1u);
  dispatcher_->Release({1, 0}, grants[0].lease.lease_id);
  dispatcher_->Requeue({1, 0}, {});  // a retry: same action, same pins
  EXPECT_EQ(Pins("inputs"), 1);
  grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 1u);
  ASSERT_NE(grants[0].action, nullptr) << "a requeued task keeps its action";
  dispatcher_->Forget({1, 0});
  EXPECT_EQ(Pins("inputs"), 0);
  EXPECT_EQ(dispatcher_->actions(), 0u);
}

TEST_F(DispatcherTest, DestroyingTheDispatcherLetsGoOfEveryPin) {
  dispatcher_->Queue({1, 0}, {}, Action("a"));
  dispatcher_->Queue({2, 0}, {}, Action("b"));
  dispatcher_.reset();
  EXPECT_EQ(Pins("a"), 0);
  EXPECT_EQ(Pins("b"), 0);
}

TEST_F(DispatcherTest, AReconnectingWorkerClosesItsOldSessionAndVoidsItsLeases) {
  auto old_session = std::make_shared<WorkerSession>("w");
  dispatcher_->Connect(Hello("w", 2), old_session);
  dispatcher_->Queue({1, 0}, {}, Action("a"));
  auto grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 1u);
  auto new_session = std::make_shared<WorkerSession>("w");
  auto displaced = dispatcher_->Connect(Hello("w", 2), new_session);
  ASSERT_EQ(displaced.size(), 1u);
  EXPECT_EQ(displaced[0].task, (TaskKey{1, 0}));
  EXPECT_TRUE(old_session->closed());
  EXPECT_FALSE(dispatcher_->CheckLease({1, 0}, grants[0].lease.lease_id).ok());
  EXPECT_EQ(dispatcher_->SessionOf("w"), new_session);
  // The old stream ending later changes nothing.
  std::vector<Lease> lost;
  EXPECT_FALSE(dispatcher_->Disconnect(old_session, &lost));
  EXPECT_TRUE(dispatcher_->workers().at("w").connected);
  EXPECT_TRUE(dispatcher_->Disconnect(new_session, &lost));
  EXPECT_FALSE(dispatcher_->workers().at("w").connected);
  EXPECT_EQ(dispatcher_->SessionOf("w"), nullptr);
}

TEST_F(DispatcherTest, HeartbeatsKeepLeasesAliveAndTheirAbsenceExpiresThem) {
  auto session = std::make_shared<WorkerSession>("w");
  dispatcher_->Connect(Hello("w", 2), session);
  dispatcher_->Queue({1, 0}, {}, Action("a"));
  dispatcher_->Queue({1, 1}, {}, Action("b"));
  auto grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 2u);
  clock_.Advance(absl::Seconds(8));
  dispatcher_->Heartbeat("w", {{grants[0].lease.task, grants[0].lease.lease_id}});
  EXPECT_EQ(dispatcher_->workers().at("w").last_seen_ms, UnixMillis(clock_.Now()));
  clock_.Advance(absl::Seconds(8));
  auto expired = dispatcher_->ExpireLeases();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].task, grants[1].lease.task) << "only the lease left out of the heartbeat expires";
  EXPECT_EQ(dispatcher_->RunningOn("w"), std::vector<TaskKey>{grants[0].lease.task});
}

TEST_F(DispatcherTest, AnUnresponsiveWorkerGetsNoNewTaskUntilItIsHeardFromAgain) {
  dispatcher_->Connect(Hello("silent", 1), std::make_shared<WorkerSession>("silent"));
  dispatcher_->Queue({1, 0}, {}, Action("a"));
  auto grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 1u);
  clock_.Advance(absl::Seconds(11));  // past the lease TTL without a heartbeat: a cut link
  ASSERT_EQ(dispatcher_->ExpireLeases().size(), 1u);
  dispatcher_->SetUnresponsive("silent");
  EXPECT_TRUE(dispatcher_->workers().at("silent").unresponsive);
  dispatcher_->Requeue({1, 0}, {});
  EXPECT_TRUE(dispatcher_->Dispatch().empty()) << "the slot the expired lease freed must not swallow the task again";
  // Another worker takes it; the silent one, once heard from, takes work again.
  dispatcher_->Connect(Hello("healthy", 1), std::make_shared<WorkerSession>("healthy"));
  grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].lease.worker, "healthy");
  dispatcher_->Heartbeat("silent", {});
  EXPECT_FALSE(dispatcher_->workers().at("silent").unresponsive);
  dispatcher_->Queue({1, 1}, {}, Action("b"));
  grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].lease.worker, "silent");
}

TEST_F(DispatcherTest, TasksGoOnlyToWorkersWithTheirLabels) {
  dispatcher_->Queue({1, 0}, {"qemu"}, Action("a"));
  EXPECT_FALSE(dispatcher_->AnyWorkerCouldRun({"qemu"}));
  dispatcher_->Connect(Hello("plain", 1), std::make_shared<WorkerSession>("plain"));
  EXPECT_TRUE(dispatcher_->Dispatch().empty());
  dispatcher_->Connect(Hello("emu", 1, {"qemu=8.0"}), std::make_shared<WorkerSession>("emu"));
  EXPECT_TRUE(dispatcher_->AnyWorkerCouldRun({"qemu"}));
  auto grants = dispatcher_->Dispatch();
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].lease.worker, "emu");
}

TEST_F(DispatcherTest, ATaskNoWorkerCanRunIsTakenAfterTheGraceNamingTheMissingLabels) {
  auto w1 = std::make_shared<WorkerSession>("w1");
  auto w2 = std::make_shared<WorkerSession>("w2");
  dispatcher_->Connect(Hello("w1", 1, {"os=linux", "qemu-system-arm=7.2"}), w1);
  dispatcher_->Connect(Hello("w2", 1, {"os=linux"}), w2);
  const absl::Duration grace = absl::Seconds(30);
  EXPECT_EQ(dispatcher_->WhyUnschedulable({"os=linux", "qemu-system-arm"}, grace), "");
  EXPECT_EQ(dispatcher_->WhyUnschedulable({"gpu", "qemu-system-arm"}, grace),
            "no worker has the labels gpu; closest: w1 (lacks gpu), w2 (lacks gpu, qemu-system-arm)");

  dispatcher_->Queue({1, 0}, {"gpu"}, Action("needs-gpu"));
  dispatcher_->Queue({1, 1}, {"qemu-system-arm"}, Action("runnable"));
  clock_.Advance(absl::Seconds(29));
  EXPECT_TRUE(dispatcher_->TakeUnschedulable(grace).empty()) << "within the grace period";
  clock_.Advance(absl::Seconds(2));
  auto taken = dispatcher_->TakeUnschedulable(grace);
  ASSERT_EQ(taken.size(), 1u);
  EXPECT_EQ(taken[0].first, (TaskKey{1, 0}));
  EXPECT_EQ(taken[0].second, "no worker has the labels gpu; closest: w1 (lacks gpu), w2 (lacks gpu)");
  EXPECT_EQ(dispatcher_->queued(), 1u) << "the runnable task stays queued";
  dispatcher_->Forget({1, 0});
  EXPECT_EQ(Pins("needs-gpu"), 0);
}

TEST_F(DispatcherTest, AWorkerSeenWithinTheGraceStillCounts) {
  auto w1 = std::make_shared<WorkerSession>("w1");
  dispatcher_->Connect(Hello("w1", 1, {"gpu"}), w1);
  std::vector<Lease> lost;
  ASSERT_TRUE(dispatcher_->Disconnect(w1, &lost));
  const absl::Duration grace = absl::Seconds(30);
  dispatcher_->Queue({1, 0}, {"gpu"}, Action("needs-gpu"));
  clock_.Advance(absl::Seconds(20));
  EXPECT_EQ(dispatcher_->WhyUnschedulable({"gpu"}, grace), "") << "w1 was seen 20 s ago: it may come back";
  clock_.Advance(absl::Seconds(20));
  EXPECT_EQ(dispatcher_->WhyUnschedulable({"gpu"}, grace), "no worker is connected or was seen in the last 30s (needed labels: gpu)");
  EXPECT_EQ(dispatcher_->TakeUnschedulable(grace).size(), 1u);
}

}  // namespace
}  // namespace assay
