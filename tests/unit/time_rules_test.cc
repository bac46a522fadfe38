// Time regressions (`time_regression`): the median, the baseline gathered from earlier jobs, and the
// verdict on a run, on hand-built protos; and how the task rules apply that verdict.
#include "coordinator/time_rules.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "common/task/run_time.h"
#include "coordinator/task_rules.h"

namespace assay {
namespace {

using assay::v1::Job;
using assay::v1::Task;
using build::bazel::remote::execution::v2::ActionResult;

// A result whose command ran `ms` milliseconds (the worker's execution timestamps).
ActionResult RanFor(int64_t ms) {
  ActionResult r;
  auto* meta = r.mutable_execution_metadata();
  meta->mutable_execution_start_timestamp()->set_seconds(1000);
  meta->mutable_execution_completed_timestamp()->set_seconds(1000 + ms / 1000);
  meta->mutable_execution_completed_timestamp()->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
  // Queueing, fetching and uploading are outside the run: they must not count.
  meta->mutable_worker_start_timestamp()->set_seconds(900);
  meta->mutable_worker_completed_timestamp()->set_seconds(2000);
  return r;
}

// A timed task "test" (warn 25%, fail 100%) whose baseline is `median_ms` over `runs` runs (none for 0).
Task Timed(int64_t median_ms, int runs) {
  Task t;
  t.set_id("test");
  t.set_step("test");
  t.set_attempt(1);
  auto* rule = t.mutable_spec()->mutable_time_regression();
  rule->set_warn_percent(25);
  rule->set_fail_percent(100);
  rule->set_runs(5);
  t.mutable_spec()->set_cache(true);
  if (runs > 0) {
    t.mutable_spec()->mutable_time_baseline()->set_median_ms(median_ms);
    t.mutable_spec()->mutable_time_baseline()->set_runs(runs);
  }
  return t;
}

TEST(RunTimeTest, ARunIsTheCommandsExecutionTimeAloneAndNothingWithoutTimestamps) {
  EXPECT_EQ(RunMillis(RanFor(2410)), 2410);
  EXPECT_EQ(RunMillis(ActionResult()), 0);
  EXPECT_EQ(FormatRunTime(2410), "2.41 s");
  EXPECT_EQ(FormatRunTime(990), "0.990 s");
  EXPECT_EQ(FormatRunTime(12'500), "12.5 s");
  EXPECT_EQ(FormatRunTime(125'000), "125 s");
  EXPECT_DOUBLE_EQ(TimeChangePercent(1500, 1000), 50.0);
  EXPECT_DOUBLE_EQ(TimeChangePercent(1500, 0), 0.0);
}

TEST(TimeRulesTest, TheMedianIsTheMiddleRunOrTheMeanOfTheMiddleTwo) {
  EXPECT_EQ(MedianMillis({}), 0);
  EXPECT_EQ(MedianMillis({700}), 700);
  EXPECT_EQ(MedianMillis({900, 100, 5000}), 900) << "one slow run does not move it";
  EXPECT_EQ(MedianMillis({400, 100, 300, 200}), 250);
}

TEST(TimeRulesTest, WithinWarnARunPassesAndItsTimeIsKept) {
  TimeVerdict v = CheckTime(Timed(1000, 5), RanFor(1250));
  EXPECT_EQ(v.run_ms, 1250);
  EXPECT_EQ(v.failure, "");
  EXPECT_EQ(v.warning, "") << "+25% is not beyond warn: 25%";
}

TEST(TimeRulesTest, BeyondWarnARunWarnsNamingTheStepTheTimeAndTheBaseline) {
  TimeVerdict v = CheckTime(Timed(990, 5), RanFor(1500));
  EXPECT_EQ(v.failure, "");
  EXPECT_EQ(v.warning, "time regression: test ran 1.50 s, +52% against the median 0.990 s of the last 5 runs, more than 25%");
}

TEST(TimeRulesTest, BeyondFailARunFails) {
  TimeVerdict v = CheckTime(Timed(990, 5), RanFor(2410));
  EXPECT_EQ(v.failure,
            "time regression: test ran 2.41 s, +143% against the median 0.990 s of the last 5 runs, more than 100%");
  EXPECT_EQ(v.warning, "") << "a failure is not also a warning";
}

TEST(TimeRulesTest, ABaselineOfOneRunIsNamedAsThatRun) {
  TimeVerdict v = CheckTime(Timed(1000, 1), RanFor(3000));
  EXPECT_EQ(v.failure, "time regression: test ran 3.00 s, +200% against the last run's 1.00 s, more than 100%");
}

TEST(TimeRulesTest, AFirstRunHasNoBaselineAndPassesAndAnUntimedStepIsNeverChecked) {
  TimeVerdict first = CheckTime(Timed(0, 0), RanFor(60'000));
  EXPECT_EQ(first.run_ms, 60'000);
  EXPECT_EQ(first.failure, "");
  EXPECT_EQ(first.warning, "");
  Task untimed = Timed(10, 5);
  untimed.mutable_spec()->clear_time_regression();
  TimeVerdict v = CheckTime(untimed, RanFor(60'000));
  EXPECT_EQ(v.run_ms, 60'000) << "measured for the report all the same";
  EXPECT_EQ(v.failure, "");
  EXPECT_EQ(v.warning, "");
}

TEST(TimeRulesTest, FasterRunsAndZeroPercentagesNeverWarnOrFail) {
  EXPECT_EQ(CheckTime(Timed(5000, 5), RanFor(100)).warning, "");
  Task only_fail = Timed(1000, 5);
  only_fail.mutable_spec()->mutable_time_regression()->set_warn_percent(0);
  TimeVerdict v = CheckTime(only_fail, RanFor(1900));
  EXPECT_EQ(v.warning, "");
  EXPECT_EQ(v.failure, "");
}

// An earlier job of pipeline "p" on `branch`, whose task "test" ended in `state` after `ms`.
Job Earlier(const std::string& id, int64_t ms, assay::v1::TaskState state = assay::v1::TASK_SUCCEEDED,
            bool cached = false, const std::string& branch = "main") {
  Job job;
  job.set_id(id);
  job.set_name("p");
  job.set_state(assay::v1::JOB_SUCCEEDED);
  (*job.mutable_labels())["branch"] = branch;
  Task* t = job.add_tasks();
  t->set_id("test");
  t->set_state(state);
  t->set_cached(cached);
  t->set_run_ms(ms);
  return job;
}

TEST(TimeBaselineTest, OnlyFinishedJobsOfTheSamePipelineAndBranchAreSearched) {
  EXPECT_TRUE(IsTimeBaselineJob(Earlier("1", 10), "p", "main"));
  EXPECT_FALSE(IsTimeBaselineJob(Earlier("1", 10), "other", "main"));
  EXPECT_FALSE(IsTimeBaselineJob(Earlier("1", 10, assay::v1::TASK_SUCCEEDED, false, "dev"), "p", "main"));
  Job running = Earlier("1", 10);
  running.set_state(assay::v1::JOB_RUNNING);
  EXPECT_FALSE(IsTimeBaselineJob(running, "p", "main"));
  Job failed = Earlier("1", 10);
  failed.set_state(assay::v1::JOB_FAILED);
  EXPECT_TRUE(IsTimeBaselineJob(failed, "p", "main")) << "its task may have succeeded all the same";
}

TEST(TimeBaselineTest, TheLastRunsThatSucceededAndRanCountNewestFirst) {
  TimeBaselineCollector collector({{"test", 3}, {"lint", 2}});
  EXPECT_FALSE(collector.Full());
  collector.Add(Earlier("9", 5000, assay::v1::TASK_FAILED));        // failed (e.g. too slow): no
  collector.Add(Earlier("8", 7, assay::v1::TASK_SUCCEEDED, true));  // cached: not a run
  collector.Add(Earlier("7", 1200));
  collector.Add(Earlier("6", 1000));
  EXPECT_FALSE(collector.Full());
  collector.Add(Earlier("5", 900));
  collector.Add(Earlier("4", 1));  // beyond the 3 runs wanted
  const auto baselines = collector.Baselines();
  ASSERT_EQ(baselines.size(), 1u) << "no baseline for a task without runs";
  const assay::v1::TimeBaseline& b = baselines.at("test");
  EXPECT_EQ(b.median_ms(), 1000);
  EXPECT_EQ(b.runs(), 3);
  EXPECT_EQ(std::vector<std::string>(b.job_ids().begin(), b.job_ids().end()), (std::vector<std::string>{"7", "6", "5"}));
  EXPECT_FALSE(collector.Full()) << "lint has no runs yet";
}

TEST(TimeBaselineTest, ATaskFromBeforeRunMsWasKeptIsTimedFromItsResult) {
  Job old = Earlier("3", 0);
  *old.mutable_tasks(0)->mutable_result() = RanFor(800);
  TimeBaselineCollector collector({{"test", 1}});
  collector.Add(old);
  EXPECT_TRUE(collector.Full());
  EXPECT_EQ(collector.Baselines().at("test").median_ms(), 800);
}

assay::v1::TaskResult Passed(int64_t ms) {
  assay::v1::TaskResult r;
  *r.mutable_result() = RanFor(ms);
  return r;
}

TEST(TimeDecisionTest, TooSlowFailsTheTaskAndIsNotCachedWhileAWarningPassesAndIsCached) {
  ResultDecision fail = DecideResult(Timed(1000, 5), Passed(2500));
  EXPECT_TRUE(absl::StartsWith(fail.failure, "time regression: test ran 2.50 s")) << fail.failure;
  EXPECT_FALSE(fail.cacheable) << "a cache hit is not timed: it would pass the next job unchecked";
  EXPECT_FALSE(fail.retry);
  EXPECT_EQ(fail.run_ms, 2500);
  ResultDecision warn = DecideResult(Timed(1000, 5), Passed(1500));
  EXPECT_EQ(warn.failure, "");
  EXPECT_TRUE(warn.cacheable);
  ASSERT_EQ(warn.warnings.size(), 1u);
  EXPECT_TRUE(absl::StartsWith(warn.warnings[0], "time regression: test ran 1.50 s, +50%")) << warn.warnings[0];
}

TEST(TimeDecisionTest, AFailingRunKeepsItsOwnFailureAndACachedResultIsNotTimed) {
  assay::v1::TaskResult exit2 = Passed(9000);
  exit2.mutable_result()->set_exit_code(2);
  ResultDecision failed = DecideResult(Timed(1000, 5), exit2);
  EXPECT_EQ(failed.failure, "exit code 2");
  ResultDecision cached = DecideCachedResult(Timed(1000, 5), RanFor(9000));
  EXPECT_EQ(cached.failure, "");
  EXPECT_TRUE(cached.warnings.empty());
  EXPECT_EQ(cached.run_ms, 0) << "a cached result did not run now";
}

}  // namespace
}  // namespace assay
