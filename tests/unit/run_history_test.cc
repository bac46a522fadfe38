#include "coordinator/run_history.h"

#include <gtest/gtest.h>

namespace assay {
namespace {

assay::v1::Job MatrixJob(const std::string& name) {
  // Two cells (a, b), each: build, then test and lint needing build.
  assay::v1::Job job;
  job.set_name(name);
  job.set_pipeline_path("assay.yaml");
  int index = 0;
  for (const std::string cell : {"a", "b"}) {
    for (const std::string step : {"build", "test", "lint"}) {
      auto* t = job.add_tasks();
      t->set_index(index++);
      t->set_id(cell + "/" + step);
      if (step != "build") t->add_needs(cell + "/build");
    }
  }
  return job;
}

build::bazel::remote::execution::v2::ExecutedActionMetadata Ran(int64_t ms) {
  build::bazel::remote::execution::v2::ExecutedActionMetadata run;
  run.mutable_execution_start_timestamp()->set_seconds(50);
  run.mutable_execution_completed_timestamp()->set_seconds(50 + ms / 1000);
  run.mutable_execution_completed_timestamp()->set_nanos(static_cast<int32_t>(ms % 1000) * 1'000'000);
  return run;
}

TEST(RunHistoryTest, ATaskIsExpectedToTakeItsLastRunPlusTheLongestChainWaitingForIt) {
  RunHistory history;
  const assay::v1::Job job = MatrixJob("fw");
  const auto dependents = RunHistory::Dependents(job);
  ASSERT_EQ(dependents[0], (std::vector<int32_t>{1, 2}));
  EXPECT_TRUE(dependents[1].empty());
  EXPECT_EQ(history.Expected(job, 0, dependents), 0) << "never ran";

  history.Record(job, job.tasks(0), Ran(40));
  history.Record(job, job.tasks(1), Ran(1500));
  history.Record(job, job.tasks(2), Ran(7));
  EXPECT_EQ(history.Expected(job, 0, dependents), 40 + 1500) << "build plus its longest dependent";
  EXPECT_EQ(history.Expected(job, 2, dependents), 7);
  EXPECT_EQ(history.Expected(job, 3, dependents), 0) << "cell b never ran";

  // The same task ids of another pipeline are another history; a later run replaces the last one.
  const assay::v1::Job other = MatrixJob("other");
  EXPECT_EQ(history.Last(other, "a/build"), 0);
  history.Record(job, job.tasks(0), Ran(60));
  EXPECT_EQ(history.Last(job, "a/build"), 60);
  // A run without timestamps (it never started) is not noted.
  history.Record(job, job.tasks(3), build::bazel::remote::execution::v2::ExecutedActionMetadata());
  EXPECT_EQ(history.Last(job, "b/build"), 0);
}

}  // namespace
}  // namespace assay
