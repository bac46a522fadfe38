// `time_regression` in the pipeline file: what it accepts, its defaults, and each mistake refused at
// its FILE:LINE:COL (docs/pipeline.md, "Time regressions").
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/pipeline/pipeline.h"

namespace assay {
namespace {

constexpr char kSteps[] = "steps:\n  - id: build\n    run: make\n  - id: test\n    needs: [build]\n    run: ./t\n";

TEST(PipelineTimeTest, TheKeyGivesPercentagesRunsAndSteps) {
  auto p = ParsePipeline(absl::StrCat("time_regression: {warn: 25%, fail: 100%, steps: [test], runs: 3}\n", kSteps),
                         "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  const TimeRegression& time = p->time_regression;
  EXPECT_TRUE(time.enabled);
  EXPECT_DOUBLE_EQ(time.warn_percent, 25);
  EXPECT_DOUBLE_EQ(time.fail_percent, 100);
  EXPECT_EQ(time.runs, 3);
  EXPECT_EQ(time.steps, std::vector<std::string>{"test"});
  EXPECT_TRUE(time.Times("test"));
  EXPECT_FALSE(time.Times("build"));
}

TEST(PipelineTimeTest, WithoutStepsEveryStepIsTimedOverFiveRuns) {
  auto p = ParsePipeline(absl::StrCat("time_regression: {fail: 50%}\n", kSteps), "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->time_regression.runs, 5);
  EXPECT_DOUBLE_EQ(p->time_regression.warn_percent, 0) << "no warn: never warns";
  EXPECT_TRUE(p->time_regression.Times("build"));
  EXPECT_TRUE(p->time_regression.Times("test"));
}

TEST(PipelineTimeTest, WithoutTheKeyNothingIsTimed) {
  auto p = ParsePipeline(kSteps, "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->time_regression.enabled);
  EXPECT_FALSE(p->time_regression.Times("test"));
}

struct TimeErrorCase {
  const char* setting;  // the first line of the file, before kSteps
  const char* message;
};

class PipelineTimeErrorTest : public ::testing::TestWithParam<TimeErrorCase> {};

TEST_P(PipelineTimeErrorTest, NamesFileLineAndProblem) {
  auto p = ParsePipeline(absl::StrCat(GetParam().setting, kSteps), "assay.yaml");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(p.status().message(), GetParam().message))
      << "got: " << p.status().message() << "\nwant: " << GetParam().message;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, PipelineTimeErrorTest,
    ::testing::Values(
        TimeErrorCase{"time_regression: 25%\n",
                      "assay.yaml:1:18: time_regression must be a mapping like {warn: 25%, fail: 100%"},
        TimeErrorCase{"time_regression: {warn: 25%, median: 3}\n",
                      "assay.yaml:1:30: unknown key 'median' in time_regression (expected one of: warn, fail, steps, runs)"},
        TimeErrorCase{"time_regression: {warn: slow}\n", "assay.yaml:1:25: time_regression.warn: 'slow' is not a percentage"},
        TimeErrorCase{"time_regression: {fail: -5%}\n", "assay.yaml:1:25: time_regression.fail: '-5%' is not a percentage"},
        TimeErrorCase{"time_regression: {fail: [1]}\n", "assay.yaml:1:25: time_regression.fail: must be a percentage"},
        TimeErrorCase{"time_regression: {runs: 3}\n",
                      "assay.yaml:1:18: time_regression needs a 'warn' or a 'fail' percentage above 0"},
        TimeErrorCase{"time_regression: {fail: 50%, runs: 0}\n",
                      "assay.yaml:1:36: time_regression.runs must be a whole number of earlier runs from 1 to 50"},
        TimeErrorCase{"time_regression: {fail: 50%, runs: 51}\n", "assay.yaml:1:36: time_regression.runs must be"},
        TimeErrorCase{"time_regression: {fail: 50%, runs: many}\n", "assay.yaml:1:36: time_regression.runs must be"},
        TimeErrorCase{"time_regression: {fail: 50%, steps: {test: 1}}\n",
                      "assay.yaml:1:37: time_regression.steps must be a list of strings"},
        TimeErrorCase{"time_regression: {fail: 50%, steps: []}\n",
                      "assay.yaml:1:37: time_regression.steps is empty: leave it out to time every step"},
        TimeErrorCase{"time_regression:\n  fail: 50%\n  steps:\n    - test\n    - tset\n",
                      "assay.yaml:5:7: time_regression.steps: 'tset' is not a step of this pipeline (its steps: build, "
                      "test)"},
        TimeErrorCase{"time_regression: {fail: 50%, steps: lint}\n",
                      "assay.yaml:1:37: time_regression.steps: 'lint' is not a step of this pipeline"}));

}  // namespace
}  // namespace assay
