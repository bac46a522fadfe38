// `time_regression` through a real farm: firmware built by the real cross toolchain and booted in
// the real QEMU, made slower on purpose (a busy loop whose count is a -D define of the build step, so
// each job's kernel, and so the emulator's action, is new), its run time checked against the median
// of the earlier runs of the pipeline and branch (docs/pipeline.md, "Time regressions").
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/task/run_time.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;
using assay::v1::Task;

// The guest prints, spins SPIN times (60 to 200 million a second in QEMU on this host's cores, after
// some 30-50 ms of emulator start-up), prints and exits through semihosting.
constexpr const char* kSpinMain = R"(#include "board.h"
#include "kernel.h"

int main(void) {
  kputs("spin start\n");
  for (volatile unsigned long i = 0; i < SPIN; ++i) {
  }
  kputs("spin done\n");
  board_exit(0);
}
)";

// Warn beyond +50% (1.5 times the baseline), fail beyond +500% (6 times): the runs below take about 3
// and 9-21 times as long as the first ones (emulator start-up included; seen: 2.9-3.7 times, and 21
// times on an idle machine but 8.7 on a loaded one, where start-up weighs more), so a loaded machine
// that slows one run half as much again as another cannot change a verdict.
constexpr const char* kPipeline = R"(name: spin
time_regression: {warn: 50%, fail: 500%, steps: [test], runs: 3}
steps:
  - id: build
    run: make TARGET=cortex-m3 PROFILE=debug DEFS=-DSPIN=@SPIN@
    outputs: [out/cortex-m3-debug/]
  - id: test
    needs: [build]
    qemu:
      system: qemu-system-arm
      machine: lm3s6965evb
      kernel: out/cortex-m3-debug/karatos.elf
      args: [-bios, none]
      expect: ["spin start", "spin done"]
      timeout: 60s
)";

class TimeRegressionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    farm_.StartCoordinator();
    farm_.StartWorker("w1", {}, 1);
    tree_ = farm_.dir() / "spin";
    fs::copy(SourceDir() + "/examples/karatos-mini", tree_, fs::copy_options::recursive);
    fs::remove_all(tree_ / "out");
    std::ofstream(tree_ / "src/main.c") << kSpinMain;
  }

  // Submits the firmware spinning `spin` times on branch "perf" and waits for the job.
  std::string Run(int64_t spin) {
    std::string yaml = kPipeline;
    yaml.replace(yaml.find("@SPIN@"), 6, std::to_string(spin));
    std::ofstream(tree_ / "assay.yaml") << yaml;
    RunResult r = farm_.Cli({"submit", tree_.string(), "--label", "branch=perf"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id(absl::StripAsciiWhitespace(r.out));
    auto job = farm_.WaitJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return id;
  }

  Task TestTask(const std::string& job_id) {
    auto job = farm_.GetJob(job_id);
    EXPECT_TRUE(job.ok()) << job.status();
    const Task* t = job.ok() ? FindTask(*job, "test") : nullptr;
    return t != nullptr ? *t : Task();
  }

  static std::string Describe(const Task& t) {
    return absl::StrCat(t.id(), ": ", assay::v1::TaskState_Name(t.state()), ", ran ", t.run_ms(), " ms, cached ",
                        t.cached(), ", message: ", t.message(), ", warnings: ", absl::StrJoin(t.warnings(), " | "),
                        ", baseline: ", t.spec().time_baseline().ShortDebugString());
  }

  // What a verdict says of `t` against its baseline (of `runs` runs) when beyond `limit` percent.
  static std::string Verdict(const Task& t, int runs, const char* limit) {
    const auto& base = t.spec().time_baseline();
    return absl::StrFormat("time regression: test ran %s, %+.0f%% against the median %s of the last %d runs, more than %s",
                           FormatRunTime(t.run_ms()), TimeChangePercent(t.run_ms(), base.median_ms()),
                           FormatRunTime(base.median_ms()), runs, limit);
  }

  Farm farm_;
  fs::path tree_;
};

std::vector<std::string> JobIds(const Task& t) {
  return {t.spec().time_baseline().job_ids().begin(), t.spec().time_baseline().job_ids().end()};
}

TEST_F(TimeRegressionTest, ASlowerEmulatorRunWarnsAMuchSlowerOneFailsAndCachedRunsAreNeverTimed) {
  // The first run has nothing to compare with: it passes.
  const std::string a1 = Run(10'000'000);
  const Task first = TestTask(a1);
  ASSERT_EQ(first.state(), assay::v1::TASK_SUCCEEDED) << Describe(first);
  EXPECT_GT(first.run_ms(), 0);
  EXPECT_TRUE(first.spec().has_time_regression());
  EXPECT_FALSE(first.spec().has_time_baseline()) << Describe(first);
  EXPECT_EQ(first.warnings_size(), 0) << Describe(first);

  // The same tree again: a cache hit, neither timed nor a run for later baselines.
  const std::string cached_job = Run(10'000'000);
  const Task cached = TestTask(cached_job);
  ASSERT_EQ(cached.state(), assay::v1::TASK_SUCCEEDED) << Describe(cached);
  EXPECT_TRUE(cached.cached());
  EXPECT_EQ(cached.run_ms(), 0);
  EXPECT_EQ(cached.warnings_size(), 0) << Describe(cached);

  // A new kernel of the same speed: compared with the one real run (the cached one is not counted).
  const std::string a2 = Run(10'000'001);
  const Task second = TestTask(a2);
  ASSERT_EQ(second.state(), assay::v1::TASK_SUCCEEDED) << Describe(second);
  EXPECT_EQ(second.spec().time_baseline().runs(), 1) << Describe(second);
  EXPECT_EQ(second.spec().time_baseline().median_ms(), first.run_ms());
  EXPECT_EQ(JobIds(second), std::vector<std::string>{a1});

  // Six times the loop: beyond warn (50%), within fail (500%): a warning, and the step passes.
  const std::string b = Run(60'000'000);
  const Task slower = TestTask(b);
  ASSERT_EQ(slower.state(), assay::v1::TASK_SUCCEEDED) << Describe(slower);
  EXPECT_EQ(slower.spec().time_baseline().median_ms(), (first.run_ms() + second.run_ms()) / 2) << Describe(slower);
  EXPECT_EQ(JobIds(slower), (std::vector<std::string>{a2, a1}));
  ASSERT_EQ(slower.warnings_size(), 1) << Describe(slower);
  EXPECT_EQ(slower.warnings(0), Verdict(slower, 2, "50%"));
  EXPECT_TRUE(absl::StrContains(farm_.Log(b, "test"), absl::StrCat("warning: ", slower.warnings(0)))) << farm_.Log(b, "test");
  EXPECT_EQ(farm_.GetJob(b)->state(), assay::v1::JOB_SUCCEEDED);

  // Fifty times the loop: beyond fail. The median of the last three runs is the slower of the
  // first two: one slow run in the history does not move it.
  const std::string c = Run(500'000'000);
  const Task slowest = TestTask(c);
  ASSERT_EQ(slowest.state(), assay::v1::TASK_FAILED) << Describe(slowest);
  EXPECT_EQ(slowest.spec().time_baseline().median_ms(), std::max(first.run_ms(), second.run_ms())) << Describe(slowest);
  EXPECT_EQ(JobIds(slowest), (std::vector<std::string>{b, a2, a1}));
  EXPECT_EQ(slowest.message(), Verdict(slowest, 3, "500%"));
  EXPECT_EQ(farm_.GetJob(c)->state(), assay::v1::JOB_FAILED);
  // The build step is not among time_regression.steps: measured, never judged.
  auto job = farm_.GetJob(c);
  ASSERT_TRUE(job.ok());
  const Task* build = FindTask(*job, "build");
  ASSERT_NE(build, nullptr);
  EXPECT_EQ(build->state(), assay::v1::TASK_SUCCEEDED);
  EXPECT_GT(build->run_ms(), 0);
  EXPECT_FALSE(build->spec().has_time_regression());

  // The report shows the figures: the table, and the JSON.
  RunResult table = farm_.Cli({"report", b});
  EXPECT_EQ(table.exit_code, 0) << table.err;
  EXPECT_TRUE(absl::StrContains(table.out, absl::StrCat("    run time: ", FormatRunTime(slower.run_ms()), ", +")))
      << table.out;
  EXPECT_TRUE(absl::StrContains(table.out, absl::StrCat("    warning: ", slower.warnings(0)))) << table.out;
  const fs::path json_file = farm_.dir() / "report.json";
  RunResult json = farm_.Cli({"report", c, "--json", json_file.string()});
  EXPECT_EQ(json.exit_code, 1) << "a failed job: " << json.err;
  EXPECT_TRUE(absl::StrContains(json.out, slowest.message())) << json.out;
  auto doc = nlohmann::json::parse(ReadFile(json_file).value_or(""), nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  const auto& step = doc["cells"][0]["steps"][1];
  EXPECT_EQ(step["step"], "test");
  EXPECT_EQ(step["run_ms"], slowest.run_ms());
  EXPECT_EQ(step["time"]["baseline_median_ms"], slowest.spec().time_baseline().median_ms());
  EXPECT_EQ(step["time"]["baseline_runs"], 3);
  EXPECT_GT(step["time"]["change_percent"].get<double>(), 500.0);
}

}  // namespace
}  // namespace assay::testing
