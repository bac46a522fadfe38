// A farm as a fleet: tasks no worker can run, fairness between jobs, priorities, max_parallel and
// fail_fast, and the admin's controls (cordon, drain, a worker's own drain on SIGTERM), with the
// real coordinator, workers and CLI on loopback.
#include <signal.h>
#include <sys/wait.h>

#include <regex>
#include <functional>
#include <set>
#include <thread>

#include <grpcpp/client_context.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/task/task_states.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {

namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

// A step that runs until the test creates `release` (a condition, not a sleep).
std::string WaitForFileStep(const fs::path& release) {
  return absl::StrCat("steps:\n  - id: hold\n    run: while [ ! -e ", release.string(),
                      " ]; do sleep 0.05; done; echo released\n    cache: false\n");
}

// Waits until `worker` is listed and `predicate` holds for it.
bool WaitForWorker(Farm& farm, const std::string& worker, const std::function<bool(const assay::v1::Worker&)>& predicate,
                   absl::Duration timeout = absl::Seconds(15)) {
  return WaitFor(
      [&]() {
        for (const auto& w : farm.Workers()) {
          if (w.id() == worker && predicate(w)) return true;
        }
        return false;
      },
      timeout);
}

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override { farm_.StartCoordinator(); }
  Farm farm_;
};

TEST_F(FleetTest, AStepNoWorkerCanRunIsWarnedAtSubmitAndFailsAfterTheGrace) {
  farm_.StopCoordinator(SIGTERM);
  farm_.StartCoordinator({"--unschedulable-grace-seconds", "2"});
  farm_.StartWorker("w1");
  auto tree = farm_.WriteTree("labels", {{"assay.yaml", R"(
steps:
  - id: ordinary
    run: echo fine
  - id: needs-gpu
    requires: [gpu]
    run: echo never
)"}});
  const absl::Time submitted = absl::Now();
  RunResult r = farm_.Cli({"submit", tree.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.err, "warning: no worker has the labels gpu; closest: w1 (lacks gpu); such steps "
                                       "fail in 2s unless a worker that has them connects"))
      << r.err;
  auto job = farm_.WaitJob(std::string(absl::StripAsciiWhitespace(r.out)), absl::Seconds(30));
  ASSERT_TRUE(job.ok()) << job.status();
  const absl::Duration took = absl::Now() - submitted;
  EXPECT_EQ(job->state(), assay::v1::JOB_FAILED);
  EXPECT_EQ(FindTask(*job, "ordinary")->state(), assay::v1::TASK_SUCCEEDED);
  const Task* gpu = FindTask(*job, "needs-gpu");
  EXPECT_EQ(gpu->state(), assay::v1::TASK_FAILED);
  EXPECT_EQ(gpu->message(), "no worker has the labels gpu; closest: w1 (lacks gpu) (waited 2s)");
  EXPECT_GE(took, absl::Seconds(2));
  EXPECT_LT(took, absl::Seconds(10)) << "failed soon after its 2 s grace, not left waiting";
}

TEST_F(FleetTest, ASmallJobSubmittedBehindABigOneStartsWhenTheNextSlotFrees) {
  farm_.StartWorker("w1", {}, 2);
  constexpr int kStepMs = 400;
  auto big = farm_.WriteTree("big", {{"assay.yaml", absl::StrCat(R"(name: big
matrix:
  n: [)", [] {
    std::string values;
    for (int i = 0; i < 200; ++i) absl::StrAppend(&values, i == 0 ? "" : ", ", i);
    return values;
  }(), R"(]
steps:
  - id: work
    run: sleep 0.4
    cache: false
)")}});
  auto small = farm_.WriteTree("small", {{"assay.yaml", "name: small\nsteps:\n  - id: a\n    run: 'true'\n    cache: false\n"
                                                         "  - id: b\n    run: 'true'\n    cache: false\n"}});
  auto big_id = farm_.Submit(big);
  ASSERT_TRUE(big_id.ok());
  // Every slot busy with the big job, then the small job comes. The precondition is asserted: w1
  // holds three of the big job's tasks, one in each of its two slots and one it fetched ahead.
  int running = 0;
  ASSERT_TRUE(WaitFor(
      [&]() {
        auto job = farm_.GetJob(*big_id);
        running = 0;
        if (!job.ok()) return false;
        for (const Task& t : job->tasks()) running += t.state() == assay::v1::TASK_RUNNING;
        return running == 3;
      },
      absl::Seconds(30)))
      << "both slots were never busy with the big job: " << running << " of its tasks running";
  auto small_id = farm_.Submit(small);
  ASSERT_TRUE(small_id.ok());
  auto done = farm_.WaitJob(*small_id, absl::Seconds(30));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), assay::v1::JOB_SUCCEEDED);
  const Task* a = FindTask(*done, "a");
  // The slot that frees first after the small job was queued goes to it (or the first one takes the
  // big job's task the worker held, and the small job is held for the second; both slots' steps
  // started before the small job came): at most one step of the big job (400 ms) later, not after
  // the big job's remaining ~198 steps (some 40 s). The bound allows a second step's time for a
  // loaded machine: under ASan with another test beside it, one run waited 892 ms.
  const int64_t waited_ms = a->started_at_ms() - a->queued_at_ms();
  EXPECT_LE(waited_ms, 2 * kStepMs + 150) << "the small job waited " << waited_ms << " ms for a slot";
  auto big_job = farm_.GetJob(*big_id);
  ASSERT_TRUE(big_job.ok());
  EXPECT_LT(big_job->tasks_done(), 20) << "the big job was still running";
  ASSERT_EQ(farm_.Cli({"cancel", *big_id}).exit_code, 0);
}

TEST_F(FleetTest, AHigherPriorityJobTakesTheNextFreeSlotAheadOfEarlierOnes) {
  // Strict priority order: a worker without prefetch (with it, the normal job's task would already be
  // held by the worker when the urgent one comes: FleetTest.AHeldTask...).
  farm_.StartWorker("w1", {}, 1, {"--prefetch", "0"});
  const fs::path release = farm_.dir() / "release";
  auto holder = farm_.Submit(farm_.WriteTree("holder", {{"assay.yaml", WaitForFileStep(release)}}));
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.busy() == 1; }));
  // Queued behind it, in this order: a normal job, then an urgent one.
  auto quick = [&](const std::string& name) {
    return farm_.WriteTree(name, {{"assay.yaml", "steps:\n  - id: s\n    run: echo " + name + "\n    cache: false\n"}});
  };
  RunResult normal = farm_.Cli({"submit", quick("normal").string()});
  ASSERT_EQ(normal.exit_code, 0) << normal.err;
  RunResult urgent = farm_.Cli({"submit", quick("urgent").string(), "--priority", "10"});
  ASSERT_EQ(urgent.exit_code, 0) << urgent.err;
  ASSERT_TRUE(WriteFile(release, "").ok());
  auto normal_job = farm_.WaitJob(std::string(absl::StripAsciiWhitespace(normal.out)), absl::Seconds(30));
  auto urgent_job = farm_.WaitJob(std::string(absl::StripAsciiWhitespace(urgent.out)), absl::Seconds(30));
  ASSERT_TRUE(normal_job.ok() && urgent_job.ok());
  EXPECT_EQ(urgent_job->priority(), 10);
  EXPECT_LE(urgent_job->tasks(0).finished_at_ms(), normal_job->tasks(0).started_at_ms())
      << "the urgent job, submitted last, ran first";
}

TEST_F(FleetTest, AHeldTaskIsHandedBackWhenAnotherWorkerFreesUp) {
  // w1 has one slot and holds one task ahead (the default --prefetch 1).
  farm_.StartWorker("w1", {}, 1);
  const fs::path release = farm_.dir() / "release";
  auto tree = farm_.WriteTree("two", {{"assay.yaml", absl::StrCat(R"(matrix:
  i: [1, 2]
steps:
  - id: s
    run: test ${{ matrix.i }} = 2 || while [ ! -e )", release.string(), R"( ]; do sleep 0.05; done
    cache: false
)")}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok()) << id.status();
  // Both tasks are on w1: i=1 runs (until released), i=2 waits there for the slot.
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.running_size() == 2; }));
  auto job = farm_.GetJob(*id);
  ASSERT_TRUE(job.ok());
  for (const Task& t : job->tasks()) {
    EXPECT_EQ(t.state(), assay::v1::TASK_RUNNING) << t.id();
    EXPECT_EQ(t.worker(), "w1") << t.id();
  }
  // A second worker frees up with nothing queued: w1 hands the held task back and w2 runs it, while
  // w1's first task still runs.
  farm_.StartWorker("w2");
  const Task* second = nullptr;
  ASSERT_TRUE(WaitFor(
      [&]() {
        job = farm_.GetJob(*id);
        second = job.ok() ? FindTask(*job, "2/s") : nullptr;
        return second != nullptr && second->state() == assay::v1::TASK_SUCCEEDED;
      },
      absl::Seconds(30)));
  EXPECT_EQ(second->worker(), "w2");
  EXPECT_EQ(second->attempt(), 1) << "a task handed back unstarted did not use up an attempt";
  EXPECT_EQ(FindTask(*job, "1/s")->state(), assay::v1::TASK_RUNNING);
  EXPECT_TRUE(absl::StrContains(farm_.Log(*id, "2/s"), "worker w1 handed the task back before starting it"))
      << farm_.Log(*id, "2/s");
  ASSERT_TRUE(WriteFile(release, "").ok());
  auto done = farm_.WaitJob(*id, absl::Seconds(30));
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), assay::v1::JOB_SUCCEEDED);
}

TEST_F(FleetTest, AnUrgentJobWaitsBehindOneHeldTaskAtMost) {
  // w1 has one slot and holds one task ahead (the default --prefetch 1).
  farm_.StartWorker("w1", {}, 1);
  const fs::path release = farm_.dir() / "release";
  auto holder = farm_.Submit(farm_.WriteTree("holder", {{"assay.yaml", WaitForFileStep(release)}}));
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.busy() == 1; }));
  // Strict priority is bounded by the prefetch: with w1 busy and holding a normal job's task, an
  // urgent job runs right after it, not after the rest of the normal job.
  auto normal = farm_.Submit(farm_.WriteTree("normal", {{"assay.yaml", R"(name: normal
matrix:
  n: [1, 2, 3, 4]
steps:
  - id: s
    run: 'true'
    cache: false
)"}}));
  ASSERT_TRUE(normal.ok());
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.running_size() == 2; }));
  RunResult urgent = farm_.Cli({"submit", farm_.WriteTree("urgent", {{"assay.yaml", "steps:\n  - id: u\n    run: 'true'\n    cache: false\n"}}).string(),
                                "--priority", "10"});
  ASSERT_EQ(urgent.exit_code, 0) << urgent.err;
  const std::string urgent_id(absl::StripAsciiWhitespace(urgent.out));
  ASSERT_TRUE(WaitFor(
      [&]() {
        auto u = farm_.GetJob(urgent_id);
        return u.ok() && u->tasks_size() == 1 && u->tasks(0).state() == assay::v1::TASK_QUEUED;
      },
      absl::Seconds(30)));
  ASSERT_TRUE(WriteFile(release, "").ok());
  auto normal_job = farm_.WaitJob(*normal, absl::Seconds(30));
  auto urgent_job = farm_.WaitJob(urgent_id, absl::Seconds(30));
  ASSERT_TRUE(normal_job.ok() && urgent_job.ok());
  // The order w1 ran them in, by its own clock: the coordinator's started_at of a task a worker held
  // is an estimate from when its result came (each result's latency differs by a few ms).
  auto ran_at = [](const Task& t) { return TimestampMillis(t.result().execution_metadata().execution_start_timestamp()); };
  const int64_t urgent_ran_at = ran_at(urgent_job->tasks(0));
  ASSERT_GT(urgent_ran_at, 0);
  int normal_before_urgent = 0;
  for (const Task& t : normal_job->tasks()) {
    ASSERT_GT(ran_at(t), 0) << t.id();
    normal_before_urgent += ran_at(t) < urgent_ran_at;
  }
  EXPECT_LE(normal_before_urgent, 1) << "only the task w1 held ran ahead of the urgent job";
  auto first = farm_.WaitJob(*holder, absl::Seconds(30));
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->state(), assay::v1::JOB_SUCCEEDED);
}

TEST_F(FleetTest, CordoningAWorkerTakesBackTheTaskItHeldAndLetsItsRunningOneFinish) {
  farm_.StartWorker("w1");
  const fs::path release = farm_.dir() / "release";
  auto id = farm_.Submit(farm_.WriteTree("two", {{"assay.yaml", absl::StrCat(R"(matrix:
  i: [1, 2]
steps:
  - id: s
    run: test ${{ matrix.i }} = 2 || while [ ! -e )", release.string(), R"( ]; do sleep 0.05; done
    cache: false
)")}}));
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.running_size() == 2; }));
  ASSERT_EQ(farm_.Cli({"cordon", "w1"}).exit_code, 0);
  ASSERT_TRUE(WaitFor(
      [&]() {
        auto job = farm_.GetJob(*id);
        return job.ok() && FindTask(*job, "2/s")->state() == assay::v1::TASK_QUEUED &&
               FindTask(*job, "2/s")->attempt() == 0 && FindTask(*job, "1/s")->state() == assay::v1::TASK_RUNNING;
      },
      absl::Seconds(15)));
  ASSERT_TRUE(WriteFile(release, "").ok());
  ASSERT_EQ(farm_.Cli({"uncordon", "w1"}).exit_code, 0);
  auto job = farm_.WaitJob(*id, absl::Seconds(30));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(FindTask(*job, "1/s")->attempt(), 1) << "the running task was not interrupted";
  EXPECT_EQ(FindTask(*job, "2/s")->attempt(), 1);
}

TEST_F(FleetTest, FailFastCancelsTheRest) {
  farm_.StartWorker("w1", {}, 3);
  auto tree = farm_.WriteTree("ff", {{"assay.yaml", R"(name: ff
fail_fast: true
max_parallel: 2
matrix:
  n: [bad, slow1, slow2, slow3]
steps:
  - id: run
    run: test ${{ matrix.n }} != bad || exit 1; sleep 1
    cache: false
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  auto job = farm_.WaitJob(*id, absl::Seconds(30));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_FAILED);
  EXPECT_EQ(FindTask(*job, "bad/run")->state(), assay::v1::TASK_FAILED);
  int cancelled = 0;
  for (const Task& t : job->tasks()) {
    if (t.state() != assay::v1::TASK_CANCELLED) continue;
    ++cancelled;
    EXPECT_EQ(t.message(), "cancelled by fail_fast: bad/run failed") << t.id();
  }
  EXPECT_GE(cancelled, 2) << "with at most 2 running, at least two cells had not finished";
}

TEST_F(FleetTest, MaxParallelCapsRunningTasks) {
  farm_.StartWorker("w1", {}, 3);
  auto tree = farm_.WriteTree("capped", {{"assay.yaml", R"(name: capped
max_parallel: 2
matrix:
  n: [1, 2, 3, 4]
steps:
  - id: run
    run: sleep 0.5
    cache: false
)"}});
  auto id = farm_.Submit(tree);
  ASSERT_TRUE(id.ok());
  auto job = farm_.WaitJob(*id, absl::Seconds(30));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  // max_parallel 2 on a 3-slot worker: no moment with 3 tasks running.
  for (const Task& t : job->tasks()) {
    if (t.started_at_ms() == 0) continue;
    int overlapping = 0;
    for (const Task& u : job->tasks()) {
      if (u.started_at_ms() != 0 && u.started_at_ms() <= t.started_at_ms() &&
          (u.finished_at_ms() == 0 || u.finished_at_ms() > t.started_at_ms())) {
        ++overlapping;
      }
    }
    EXPECT_LE(overlapping, 2) << t.id();
  }
}

TEST_F(FleetTest, CordonKeepsNewTasksAwayAndSurvivesACoordinatorRestart) {
  farm_.StartWorker("w1");
  farm_.StartWorker("w2");
  RunResult unknown = farm_.Cli({"cordon", "nope"});
  EXPECT_NE(unknown.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(unknown.err, "unknown worker 'nope' (known: w1, w2)")) << unknown.err;

  RunResult cordon = farm_.Cli({"cordon", "w1"});
  ASSERT_EQ(cordon.exit_code, 0) << cordon.err;
  EXPECT_TRUE(absl::StrContains(cordon.out, "worker w1 is cordoned")) << cordon.out;
  auto tree = farm_.WriteTree("spread", {{"assay.yaml", "matrix:\n  n: [1, 2, 3, 4]\nsteps:\n  - id: s\n"
                                                          "    run: 'true'\n    cache: false\n"}});
  auto on_workers = [&](const std::string& id) {
    std::set<std::string> workers;
    auto job = farm_.WaitJob(id);
    EXPECT_TRUE(job.ok() && job->state() == assay::v1::JOB_SUCCEEDED);
    if (job.ok()) {
      for (const Task& t : job->tasks()) workers.insert(t.worker());
    }
    return workers;
  };
  auto first = farm_.Submit(tree);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(on_workers(*first), std::set<std::string>{"w2"}) << "a cordoned worker gets no new task";

  // The cordon is kept in the store: it holds after the coordinator restarts and w1 reconnects.
  farm_.StopCoordinator(SIGTERM);
  farm_.StartCoordinator();
  ASSERT_TRUE(WaitFor([&]() { return farm_.ConnectedWorkers() == 2; }, absl::Seconds(15)))
      << "the workers did not reconnect after the restart";
  RunResult listed = farm_.Cli({"workers"});
  EXPECT_TRUE(std::regex_search(listed.out, std::regex("w1 +[^ ]+ +connected +cordoned"))) << listed.out;
  auto second = farm_.Submit(tree);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(on_workers(*second), std::set<std::string>{"w2"});
  ASSERT_EQ(farm_.Cli({"uncordon", "w1"}).exit_code, 0);
}

TEST_F(FleetTest, DrainLetsTheRunningTaskFinishThenShowsTheWorkerDrained) {
  farm_.StartWorker("w1");
  farm_.StartWorker("w2");
  // w1's running task finishes (it is not interrupted), then w1 shows drained.
  auto slow = farm_.WriteTree("slow", {{"assay.yaml", "matrix:\n  n: [1, 2]\nsteps:\n  - id: s\n"
                                                      "    run: sleep 1\n    cache: false\n"}});
  auto id = farm_.Submit(slow);
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.busy() > 0; }));
  RunResult drain = farm_.Cli({"drain", "w1", "--wait"});
  EXPECT_EQ(drain.exit_code, 0) << drain.err;
  EXPECT_TRUE(absl::StrContains(drain.out, "worker w1 is draining (1 task(s) running)")) << drain.out;
  EXPECT_TRUE(absl::StrContains(drain.out, "worker w1 is drained")) << drain.out;
  auto job = farm_.WaitJob(*id);
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED) << "the drained worker's task finished";
}

TEST_F(FleetTest, SigtermDrainsAWorkerItsTaskFinishesThereAndItExitsZero) {
  farm_.StartWorker("w1");
  const fs::path release = farm_.dir() / "release";
  auto held = farm_.Submit(farm_.WriteTree("held", {{"assay.yaml", WaitForFileStep(release)}}));
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.busy() == 1; }));
  // The next job's task: w1 holds it for its slot (its prefetch).
  auto next = farm_.Submit(farm_.WriteTree("next", {{"assay.yaml", "steps:\n  - id: quick\n    run: echo quick\n"
                                                                    "    cache: false\n"}}));
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.busy() == 2; }));

  farm_.SignalWorker("w1", SIGTERM);
  ASSERT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return w.connected() && w.stopping(); }));
  // The task it had not started goes back at once (there is no other worker yet), its attempt unused.
  ASSERT_TRUE(WaitFor(
      [&]() {
        auto j = farm_.GetJob(*next);
        return j.ok() && j->tasks(0).state() == assay::v1::TASK_QUEUED && j->tasks(0).attempt() == 0;
      },
      absl::Seconds(15)));
  RunResult listed = farm_.Cli({"workers"});
  EXPECT_TRUE(std::regex_search(listed.out, std::regex("w1 +[^ ]+ +stopping +active +1/1"))) << listed.out;
  EXPECT_TRUE(absl::StrContains(listed.out, "running " + *held + "/hold")) << listed.out;

  // A stopping worker takes no new task: the next job waits for w2.
  farm_.StartWorker("w2");
  auto quick = farm_.WaitJob(*next, absl::Seconds(30));
  ASSERT_TRUE(quick.ok());
  EXPECT_EQ(quick->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(quick->tasks(0).worker(), "w2");
  EXPECT_FALSE(farm_.WaitWorkerExit("w1", absl::ZeroDuration()).has_value()) << "w1 left before its task ended";

  // Its running task is not interrupted: it finishes on w1, in its first attempt; then w1 exits 0.
  ASSERT_TRUE(WriteFile(release, "").ok());
  auto job = farm_.WaitJob(*held, absl::Seconds(30));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED);
  EXPECT_EQ(job->tasks(0).worker(), "w1");
  EXPECT_EQ(job->tasks(0).attempt(), 1);
  const absl::Time released = absl::Now();
  std::optional<int> status = farm_.WaitWorkerExit("w1", absl::Seconds(15));
  ASSERT_TRUE(status.has_value()) << "w1 did not exit after its task";
  EXPECT_LT(absl::Now() - released, absl::Seconds(3)) << ReadFile(farm_.dir() / "worker-w1.log").value_or("");
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  EXPECT_TRUE(WaitForWorker(farm_, "w1", [](const auto& w) { return !w.connected(); }));
}

TEST_F(FleetTest, ASigtermedWorkerHandsBackWhatOutlastsItsGracePeriod) {
  farm_.StartWorker("w1", {}, 1, {"--drain-grace-seconds", "1"});
  const fs::path release = farm_.dir() / "release", started = farm_.dir() / "started";
  // The step says when it runs: a task the coordinator counts as busy may still be waiting on the
  // worker, and a worker hands such a task back at once, with no grace period to give.
  auto held = farm_.Submit(farm_.WriteTree(
      "held", {{"assay.yaml", absl::StrCat("steps:\n  - id: hold\n    run: touch ", started.string(), "; while [ ! -e ",
                                           release.string(), " ]; do sleep 0.05; done; echo released\n    cache: false\n")}}));
  ASSERT_TRUE(held.ok()) << held.status();
  ASSERT_TRUE(WaitFor([&] { return fs::exists(started); }, absl::Seconds(15))) << "the step did not start";

  const absl::Time signalled = absl::Now();
  farm_.SignalWorker("w1", SIGTERM);
  std::optional<int> status = farm_.WaitWorkerExit("w1", absl::Seconds(15));
  ASSERT_TRUE(status.has_value()) << "w1 did not exit after its grace period";
  const absl::Duration took = absl::Now() - signalled;
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
  EXPECT_GE(took, absl::Seconds(1)) << "w1 did not give its task the grace period";
  EXPECT_LT(took, absl::Seconds(5)) << "w1 took " << took << " to hand its task back";

  // The task went back to the queue, and runs to the end on the next worker.
  auto queued = farm_.GetJob(*held);
  ASSERT_TRUE(queued.ok());
  EXPECT_EQ(queued->tasks(0).state(), assay::v1::TASK_QUEUED) << queued->tasks(0).message();
  farm_.StartWorker("w2");
  ASSERT_TRUE(WriteFile(release, "").ok());
  auto job = farm_.WaitJob(*held, absl::Seconds(30));
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED) << job->tasks(0).message();
  EXPECT_EQ(job->tasks(0).worker(), "w2");
}

TEST_F(FleetTest, TenSubmittersOfAHundredTasksOverEightSlotsLoseAndDoubleNothing) {
  farm_.StartWorker("w1", {}, 4);
  farm_.StartWorker("w2", {}, 4);
  constexpr int kSubmitters = 10, kTasks = 100;
  // Every run of every task appends a line to the ledger (O_APPEND: whole lines, from any process).
  const fs::path ledger = farm_.dir() / "ledger";
  std::string values;
  for (int n = 0; n < kTasks; ++n) absl::StrAppend(&values, n == 0 ? "" : ", ", n);
  std::vector<fs::path> trees;
  for (int i = 0; i < kSubmitters; ++i) {
    trees.push_back(farm_.WriteTree(absl::StrCat("load", i), {{"assay.yaml", absl::StrCat(
        "name: load", i, "\nmatrix:\n  n: [", values, "]\nsteps:\n  - id: s\n    run: echo ", i,
        "-${{ matrix.n }} >> ", ledger.string(), "\n    cache: false\n")}}));
  }
  std::vector<absl::StatusOr<std::string>> ids(kSubmitters, absl::UnknownError("not submitted"));
  {
    std::vector<std::thread> submitters;
    for (int i = 0; i < kSubmitters; ++i) submitters.emplace_back([&, i]() { ids[i] = farm_.Submit(trees[i]); });
    for (auto& t : submitters) t.join();
  }
  int total = 0;
  for (int i = 0; i < kSubmitters; ++i) {
    ASSERT_TRUE(ids[i].ok()) << ids[i].status();
    auto job = farm_.WaitJob(*ids[i], absl::Seconds(300));
    ASSERT_TRUE(job.ok()) << job.status();
    EXPECT_EQ(job->state(), assay::v1::JOB_SUCCEEDED) << "job " << *ids[i];
    ASSERT_EQ(job->tasks_size(), kTasks);
    for (const Task& t : job->tasks()) {
      EXPECT_EQ(t.state(), assay::v1::TASK_SUCCEEDED) << *ids[i] << " " << t.id() << ": " << t.message();
      EXPECT_EQ(t.attempt(), 1) << *ids[i] << " " << t.id();
      ++total;
    }
  }
  EXPECT_EQ(total, kSubmitters * kTasks);
  std::vector<std::string> lines = absl::StrSplit(ReadFile(ledger).value_or(""), '\n', absl::SkipEmpty());
  std::set<std::string> unique(lines.begin(), lines.end());
  EXPECT_EQ(lines.size(), static_cast<size_t>(kSubmitters * kTasks)) << "a task ran twice, or not at all";
  EXPECT_EQ(unique.size(), static_cast<size_t>(kSubmitters * kTasks));
  std::set<std::string> distinct_ids;
  for (const auto& id : ids) distinct_ids.insert(*id);
  EXPECT_EQ(distinct_ids.size(), static_cast<size_t>(kSubmitters)) << "two submissions got one id";
}

}  // namespace
}  // namespace assay::testing
