// PlanJob: pipeline -> tasks, without a coordinator.
#include "coordinator/planner.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace assay {
namespace {

using assay::v1::Job;
using assay::v1::Task;

Job Plan(const std::string& yaml) {
  auto pipeline = ParsePipeline(yaml, "ci/assay.yaml");
  EXPECT_TRUE(pipeline.ok()) << pipeline.status();
  PlanInput input;
  input.pipeline_path = "ci/assay.yaml";
  input.source_root.set_hash(std::string(64, 'a'));
  input.source_root.set_size_bytes(10);
  input.labels = {{"branch", "main"}};
  input.request_id = "req-1";
  input.created_at_ms = 1234;
  auto job = PlanJob(*pipeline, input);
  EXPECT_TRUE(job.ok()) << job.status();
  return job.value_or(Job());
}

TEST(PlannerTest, OneTaskPerCellAndStepInCellMajorOrderWithNeedsResolvedWithinTheCell) {
  Job job = Plan(R"(
name: fw
env: {A: pipeline, B: pipeline}
matrix:
  board: [m3, rv]
  profile: [debug, release]
steps:
  - id: build
    run: make BOARD=${{ matrix.board }}
    env: {B: step}
    outputs: ["out/${{ matrix.board }}.elf"]
    timeout: 2m
    requires: [qemu]
    retry: 2
  - id: test
    needs: [build]
    run: ./test.sh
    cache: false
)");
  EXPECT_EQ(job.name(), "fw");
  EXPECT_EQ(job.state(), assay::v1::JOB_QUEUED);
  EXPECT_EQ(job.pipeline_path(), "ci/assay.yaml");
  EXPECT_EQ(job.labels().at("branch"), "main");
  EXPECT_EQ(job.submit_request_id(), "req-1");
  EXPECT_EQ(job.created_at_ms(), 1234);
  ASSERT_EQ(job.tasks_size(), 8);
  EXPECT_EQ(job.task_count(), 8);
  std::vector<std::string> ids;
  for (const Task& t : job.tasks()) {
    EXPECT_EQ(t.index(), static_cast<int>(ids.size()));
    EXPECT_EQ(t.state(), assay::v1::TASK_PENDING);
    ids.push_back(t.id());
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"m3/debug/build", "m3/debug/test", "m3/release/build", "m3/release/test",
                                           "rv/debug/build", "rv/debug/test", "rv/release/build", "rv/release/test"}));
  const Task& build = job.tasks(4);
  EXPECT_EQ(build.cell(), "rv/debug");
  EXPECT_EQ(build.step(), "build");
  EXPECT_EQ(build.matrix().at("board"), "rv");
  EXPECT_EQ(build.spec().run(), "make BOARD=rv");
  EXPECT_EQ(build.spec().env().at("A"), "pipeline");
  EXPECT_EQ(build.spec().env().at("B"), "step") << "a step's env overrides the pipeline's";
  ASSERT_EQ(build.spec().outputs_size(), 1);
  EXPECT_EQ(build.spec().outputs(0), "out/rv.elf");
  EXPECT_EQ(build.spec().timeout_ms(), 120000);
  ASSERT_EQ(build.spec().required_labels_size(), 1);
  EXPECT_EQ(build.spec().retry(), 2);
  EXPECT_TRUE(build.spec().cache());
  const Task& test = job.tasks(5);
  ASSERT_EQ(test.needs_size(), 1);
  EXPECT_EQ(test.needs(0), "rv/debug/build") << "a need names the step of the same cell";
  EXPECT_FALSE(test.spec().cache());
}

TEST(PlannerTest, WithoutAMatrixTaskIdsAreStepIds) {
  Job job = Plan("steps:\n  - id: a\n    run: 'true'\n  - id: b\n    needs: [a]\n    run: 'true'\n");
  ASSERT_EQ(job.tasks_size(), 2);
  EXPECT_EQ(job.tasks(0).id(), "a");
  EXPECT_EQ(job.tasks(0).cell(), "");
  EXPECT_EQ(job.tasks(1).needs(0), "a");
}

TEST(PlannerTest, AnExpressionACellCannotFillIsAnErrorNamingTheFileAndLine) {
  // The parser refuses such a file already; PlanJob checks again for pipelines built in code.
  Pipeline pipeline;
  pipeline.axes = {"board"};
  pipeline.cells = {{{"os", "haiku"}}};
  Step step;
  step.id = "build";
  step.run = "make BOARD=${{ matrix.board }}";
  step.line = 7;
  pipeline.steps = {step};
  PlanInput input;
  input.pipeline_path = "assay.yaml";
  auto job = PlanJob(pipeline, input);
  ASSERT_FALSE(job.ok());
  EXPECT_EQ(job.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(job.status().message(), "assay.yaml:7")) << job.status();
  EXPECT_TRUE(absl::StrContains(job.status().message(), "'board'")) << job.status();
}

}  // namespace
}  // namespace assay
