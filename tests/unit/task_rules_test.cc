// The task state machine's rules, on hand-built jobs.
#include "coordinator/task_rules.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace assay {
namespace {

using assay::v1::Job;
using assay::v1::Task;
using assay::v1::TaskState;

// A job whose tasks are given as (id, state, needs).
struct JobBuilder {
  Job job;
  absl::flat_hash_map<std::string, int32_t> index_of;
  JobBuilder& Add(const std::string& id, TaskState state, std::vector<std::string> needs = {}) {
    Task* t = job.add_tasks();
    t->set_index(job.tasks_size() - 1);
    t->set_id(id);
    t->set_state(state);
    for (auto& n : needs) t->add_needs(n);
    index_of[id] = t->index();
    return *this;
  }
};

constexpr auto P = assay::v1::TASK_PENDING;
constexpr auto OK = assay::v1::TASK_SUCCEEDED;
constexpr auto FAIL = assay::v1::TASK_FAILED;
constexpr auto RUN = assay::v1::TASK_RUNNING;

Settlement SettleAll(const JobBuilder& b, bool cancel = false, std::set<int32_t> preparing = {}) {
  return Settle(b.job, b.index_of, cancel, [&](int32_t i) { return preparing.contains(i); });
}

TEST(SettleTest, ATaskIsReadyOnlyWhenEveryNeedSucceeded) {
  JobBuilder b;
  b.Add("a", OK).Add("b", RUN).Add("c", P, {"a"}).Add("d", P, {"a", "b"}).Add("e", P);
  Settlement s = SettleAll(b);
  EXPECT_EQ(s.ready, (std::vector<int32_t>{2, 4}));
  EXPECT_TRUE(s.skipped.empty());
  EXPECT_TRUE(s.cancelled.empty());
}

TEST(SettleTest, AFailedNeedSkipsEverythingDownstreamInOneCallNamingTheNeed) {
  JobBuilder b;
  b.Add("build", FAIL).Add("test", P, {"build"}).Add("package", P, {"test"}).Add("other", P);
  Settlement s = SettleAll(b);
  ASSERT_EQ(s.skipped.size(), 2u);
  EXPECT_EQ(s.skipped[0].first, 1);
  EXPECT_EQ(s.skipped[0].second, "skipped: needs build, which did not succeed");
  EXPECT_EQ(s.skipped[1].first, 2);
  EXPECT_EQ(s.skipped[1].second, "skipped: needs test, which did not succeed");
  EXPECT_EQ(s.ready, std::vector<int32_t>{3});
}

TEST(SettleTest, TasksBeingPreparedAreLeftAloneAndCancelTakesEveryPendingTask) {
  JobBuilder b;
  b.Add("a", P).Add("b", P).Add("c", RUN);
  EXPECT_EQ(SettleAll(b, false, {0}).ready, std::vector<int32_t>{1});
  Settlement cancel = SettleAll(b, true, {0});
  EXPECT_EQ(cancel.cancelled, (std::vector<int32_t>{0, 1})) << "a task being prepared is cancelled too";
  EXPECT_TRUE(cancel.ready.empty());
}

TEST(SettleTest, AnUnknownNeedNeverRunsTheTask) {
  JobBuilder b;
  b.Add("a", P, {"nowhere"});
  Settlement s = SettleAll(b);
  EXPECT_TRUE(s.ready.empty());
  ASSERT_EQ(s.skipped.size(), 1u);
  EXPECT_TRUE(absl::StrContains(s.skipped[0].second, "nowhere"));
}

TEST(WorkerWithInputsTest, TheWorkerThatMadeTheLargestNeededOutputs) {
  JobBuilder b;
  b.Add("fw/build", OK).Add("docs/build", OK).Add("cached/build", OK).Add("fw/test", P, {"docs/build", "fw/build", "cached/build"});
  auto outputs = [&](int index, const std::string& worker, int64_t bytes, bool cached = false) {
    Task* t = b.job.mutable_tasks(index);
    t->set_worker(worker);
    t->set_cached(cached);
    t->mutable_result()->add_output_files()->mutable_digest()->set_size_bytes(bytes);
  };
  outputs(0, "w1", 6000);
  outputs(1, "w2", 900);
  outputs(2, "w3", 1 << 20, /*cached=*/true);  // from the action cache: on no worker's disk
  EXPECT_EQ(WorkerWithInputs(b.job, b.index_of, b.job.tasks(3)), "w1");
  EXPECT_EQ(WorkerWithInputs(b.job, b.index_of, b.job.tasks(0)), "") << "needs nothing";
}

TEST(OutcomeTest, AJobIsOverWhenEveryTaskIsFinal) {
  JobBuilder b;
  b.Add("a", OK).Add("b", RUN);
  JobOutcome running = Outcome(b.job, false);
  EXPECT_EQ(running.done, 1);
  EXPECT_FALSE(running.final_state.has_value());
  b.job.mutable_tasks(1)->set_state(OK);
  EXPECT_EQ(Outcome(b.job, false).final_state, assay::v1::JOB_SUCCEEDED);
  b.job.mutable_tasks(1)->set_state(assay::v1::TASK_SKIPPED);
  EXPECT_EQ(Outcome(b.job, false).final_state, assay::v1::JOB_FAILED);
  b.job.mutable_tasks(1)->set_state(assay::v1::TASK_CANCELLED);
  EXPECT_EQ(Outcome(b.job, true).final_state, assay::v1::JOB_CANCELLED);
  EXPECT_EQ(Outcome(b.job, true).done, 2);
}

Task Running(int attempt, int retry, bool cache = true, bool cache_failures = false) {
  Task t;
  t.set_state(RUN);
  t.set_attempt(attempt);
  t.mutable_spec()->set_retry(retry);
  t.mutable_spec()->set_cache(cache);
  t.mutable_spec()->set_cache_failures(cache_failures);
  t.mutable_spec()->set_timeout_ms(90'000);
  return t;
}

assay::v1::TaskResult Exit(int code) {
  assay::v1::TaskResult r;
  r.mutable_result()->set_exit_code(code);
  return r;
}

TEST(DecideResultTest, SuccessIsCachedUnlessTheStepSaysNot) {
  ResultDecision d = DecideResult(Running(1, 0), Exit(0));
  EXPECT_TRUE(d.failure.empty());
  EXPECT_FALSE(d.retry);
  EXPECT_TRUE(d.cacheable);
  EXPECT_FALSE(DecideResult(Running(1, 0, /*cache=*/false), Exit(0)).cacheable);
}

TEST(DecideResultTest, AFailureIsRetriedWhileTriesAreLeftThenFinal) {
  ResultDecision first = DecideResult(Running(1, 1), Exit(2));
  EXPECT_EQ(first.failure, "exit code 2");
  EXPECT_TRUE(first.retry);
  EXPECT_FALSE(first.cacheable);
  ResultDecision second = DecideResult(Running(2, 1), Exit(2));
  EXPECT_TRUE(second.retry == false && second.failure == "exit code 2");
  EXPECT_FALSE(second.cacheable) << "failures are cached only with cache_failures";
  EXPECT_TRUE(DecideResult(Running(1, 0, true, /*cache_failures=*/true), Exit(2)).cacheable);
}

TEST(DecideResultTest, AnExitCodeAboveOneHundredAndTwentyEightNamesItsSignal) {
  EXPECT_EQ(DecideResult(Running(1, 0), Exit(139)).failure, "exit code 139 (signal 11, SIGSEGV)");
  EXPECT_EQ(DecideResult(Running(1, 0), Exit(143)).failure, "exit code 143 (signal 15, SIGTERM)");
  EXPECT_EQ(DescribeExitCode(137), "exit code 137 (signal 9, SIGKILL)");
  EXPECT_EQ(DescribeExitCode(128), "exit code 128");
  EXPECT_EQ(DescribeExitCode(255), "exit code 255") << "no signal 127";
  EXPECT_EQ(DescribeExitCode(1), "exit code 1");
}

TEST(DecideResultTest, TimeoutsAndWorkerErrorsSayWhatHappenedAndAreNeverCached) {
  assay::v1::TaskResult timed_out = Exit(0);
  timed_out.set_timed_out(true);
  ResultDecision t = DecideResult(Running(1, 0, true, true), timed_out);
  EXPECT_EQ(t.failure, "timed out after 1m30s; process tree killed");
  EXPECT_FALSE(t.cacheable);
  assay::v1::TaskResult error = Exit(0);
  error.set_error("fetching inputs: disk full");
  ResultDecision e = DecideResult(Running(1, 0, true, true), error);
  EXPECT_EQ(e.failure, "worker error: fetching inputs: disk full");
  EXPECT_FALSE(e.cacheable);
}

TEST(DecideLostTest, ALostTaskRunsAgainUntilItsAttemptsAreUsed) {
  EXPECT_FALSE(DecideLost(Running(1, 0), "worker w disconnected", 3).give_up);
  EXPECT_EQ(DecideLost(Running(2, 0), "worker w disconnected", 3).message, "worker w disconnected");
  LostDecision last = DecideLost(Running(3, 0), "worker w disconnected", 3);
  EXPECT_TRUE(last.give_up);
  EXPECT_EQ(last.message, "worker w disconnected; gave up after 3 attempts");
  EXPECT_FALSE(DecideLost(Running(3, 1), "lease expired", 3).give_up) << "the step's retries add attempts";
}

}  // namespace
}  // namespace assay
