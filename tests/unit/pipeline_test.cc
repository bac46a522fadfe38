#include "common/pipeline.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"

namespace assay {
namespace {

std::vector<std::string> CellNames(const Pipeline& p) {
  std::vector<std::string> out;
  for (const auto& c : p.cells) out.push_back(CellName(p, c));
  return out;
}

TEST(PipelineTest, ParsesStepsAndTheMatrixCrossProduct) {
  auto p = ParsePipeline(R"(
name: demo
matrix:
  target: [arm, riscv]
  profile: [debug, release]
steps:
  - id: build
    run: make ${{ matrix.target }}
    outputs: [out/]
    timeout: 90s
    env: {CC: gcc}
    requires: [toolchain]
  - id: test
    needs: build
    run: ./test
    retry: 2
    cache: false
)", "assay.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->name, "demo");
  EXPECT_EQ(CellNames(*p), (std::vector<std::string>{"arm/debug", "arm/release", "riscv/debug", "riscv/release"}));
  ASSERT_EQ(p->steps.size(), 2u);
  EXPECT_EQ(p->steps[0].timeout, absl::Seconds(90));
  EXPECT_EQ(p->steps[0].env.at("CC"), "gcc");
  EXPECT_EQ(p->steps[0].requires_labels, std::vector<std::string>{"toolchain"});
  EXPECT_EQ(p->steps[1].needs, std::vector<std::string>{"build"});
  EXPECT_EQ(p->steps[1].retry, 2);
  EXPECT_FALSE(p->steps[1].cache);
  auto step = ExpandStep(*p, p->steps[0], p->cells[2], "assay.yaml");
  ASSERT_TRUE(step.ok());
  EXPECT_EQ(step->run, "make riscv");
}

TEST(PipelineTest, ExcludeRemovesAndIncludeExtendsOrAdds) {
  auto p = ParsePipeline(R"(
matrix:
  os: [linux, bsd]
  cpu: [arm, x86]
  exclude:
    - {os: bsd, cpu: x86}
  include:
    - {os: linux, extra: yes}
    - {os: haiku, cpu: x86}
steps:
  - id: s
    run: echo
)", "p.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(CellNames(*p), (std::vector<std::string>{"linux/arm", "linux/x86", "bsd/arm", "haiku/x86"}));
  EXPECT_EQ(p->cells[0].back(), (std::pair<std::string, std::string>{"extra", "yes"}));
  EXPECT_EQ(p->cells[2].size(), 2u);
}

TEST(PipelineTest, CellNamesAreSafePathSegments) {
  auto p = ParsePipeline("matrix:\n  a: ['..', 'x/y', '.']\nsteps:\n  - id: s\n    run: x\n", "f.yaml");
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(CellNames(*p), (std::vector<std::string>{"_.._", "x_y", "_._"}));
}

TEST(PipelineTest, MatrixLargerThanTheCapIsRefusedBeforeExpanding) {
  PipelineLimits limits;
  limits.max_cells = 4;
  auto p = ParsePipeline("matrix:\n  a: [1,2,3]\n  b: [1,2]\nsteps:\n  - id: s\n    run: x\n", "f.yaml", limits);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::StrContains(p.status().message(), "f.yaml:2:3: the matrix has 6 cells, more than the limit of 4"))
      << p.status();
}

struct ErrorCase {
  const char* yaml;
  const char* message;
};

class PipelineErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(PipelineErrorTest, NamesFileLineAndProblem) {
  auto p = ParsePipeline(GetParam().yaml, "assay.yaml");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StrContains(p.status().message(), GetParam().message))
      << "got: " << p.status().message() << "\nwant: " << GetParam().message;
}

INSTANTIATE_TEST_SUITE_P(
    Errors, PipelineErrorTest,
    ::testing::Values(
        ErrorCase{"- just\n- a list\n", "assay.yaml: a pipeline must be a mapping"},
        ErrorCase{"name: x\n", "assay.yaml: the pipeline has no 'steps'"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    bogus: 1\n", "assay.yaml:4:5: unknown key 'bogus' in steps[0]"},
        ErrorCase{"steps:\n  - run: x\n", "assay.yaml:2:5: steps[0] has no 'id'"},
        ErrorCase{"steps:\n  - id: a b\n    run: x\n", "assay.yaml:2:9: step id 'a b' must be letters"},
        ErrorCase{"steps:\n  - id: a\n", "assay.yaml:2:5: step 'a' has no 'run' command"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    needs: [a]\n", "step 'a' needs 'a', itself"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    retry: 99\n", "assay.yaml:4:12: step 'a'.retry must be a whole number"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    timeout: 0s\n", "step 'a'.timeout must be positive"},
        ErrorCase{"steps:\n  - id: a\n    run: x\n    outputs: [/etc]\n", "output '/etc' must be relative"},
        ErrorCase{"matrix:\n  a: []\nsteps:\n  - id: s\n    run: x\n", "assay.yaml:2:6: matrix.a must be a non-empty list"},
        ErrorCase{"matrix:\n  a: [1]\n  exclude:\n    - {b: 1}\nsteps:\n  - id: s\n    run: x\n",
                  "matrix.exclude names 'b', which is not a matrix axis"},
        ErrorCase{"matrix:\n  a: [1]\n  exclude:\n    - {a: 1}\nsteps:\n  - id: s\n    run: x\n",
                  "the matrix has no cells left after exclude"},
        ErrorCase{"steps:\n  - id: a\n    run: echo ${{ secrets.x }}\n", "unknown expression '${{ secrets.x }}'"},
        ErrorCase{"steps:\n  - id: a\n    run: echo ${{ matrix.x\n", "unterminated expression"},
        ErrorCase{"steps: [\n", "assay.yaml:2:1: invalid YAML"}));

TEST(ExpressionTest, ExpandsMatrixValuesAndToleratesSpaces) {
  MatrixCell cell = {{"target", "arm"}, {"profile", "debug"}};
  EXPECT_EQ(ExpandExpressions("make ${{matrix.target}}-${{  matrix.profile }}", cell, "p").value(), "make arm-debug");
  EXPECT_EQ(ExpandExpressions("no expressions", cell, "p").value(), "no expressions");
  EXPECT_EQ(ExpandExpressions("${{ pipeline.name }}", cell, "demo").value(), "demo");
  EXPECT_FALSE(ExpandExpressions("${{ matrix.cpu }}", cell, "p").ok());
}

}  // namespace
}  // namespace assay
