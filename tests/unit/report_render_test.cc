#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "cli/report.h"

namespace assay::cli {
namespace {

using assay::v1::Job;
using assay::v1::Task;

Job SampleJob() {
  Job job;
  job.set_id("4");
  job.set_name("fw");
  job.set_state(assay::v1::JOB_FAILED);
  auto add = [&](const std::string& cell, const std::string& step, assay::v1::TaskState state) {
    Task* t = job.add_tasks();
    t->set_cell(cell);
    t->set_step(step);
    t->set_id(cell + "/" + step);
    t->set_state(state);
    t->set_started_at_ms(1000);
    t->set_finished_at_ms(3500);
    return t;
  };
  Task* build = add("m3", "build", assay::v1::TASK_SUCCEEDED);
  assay::v1::FileSize* elf = build->add_sizes();
  elf->set_path("out/fw.elf");
  elf->set_elf(true);
  elf->set_text(1100);
  elf->set_bss(100);
  assay::v1::FileSize* object = build->add_sizes();  // from a job of before object files were left out
  object->set_path("obj/main.o");
  object->set_elf(true);
  object->set_elf_type(1);
  object->set_text(50);
  assay::v1::FileSize base = *elf;
  base.set_text(1000);
  (*build->mutable_spec()->mutable_baseline())["out/fw.elf"] = base;
  build->add_warnings("size regression: out/fw.elf rom grew +10.00%");
  Task* test = add("m3", "test", assay::v1::TASK_SUCCEEDED);
  test->set_flaky(true);
  test->set_failed_runs(1);
  test->set_attempt(2);
  test->mutable_spec()->mutable_qemu()->set_system("qemu-system-arm");
  test->mutable_result()->mutable_execution_metadata()->mutable_execution_start_timestamp()->set_seconds(10);
  test->mutable_result()->mutable_execution_metadata()->mutable_execution_completed_timestamp()->set_seconds(12);
  Task* bad = add("rv|32", "build", assay::v1::TASK_FAILED);
  bad->set_message("exit code 2: <oops> | \x01 bell");
  add("rv|32", "test", assay::v1::TASK_SKIPPED)->set_message("needs rv|32/build, which failed");
  return job;
}

TEST(ReportRenderTest, RowsCountsSizesAndEmulatorTime) {
  const Job job = SampleJob();
  const Report r = BuildReport(job);
  EXPECT_EQ(r.cells, (std::vector<std::string>{"m3", "rv|32"}));
  EXPECT_EQ(r.tests, 4);
  EXPECT_EQ(r.failures, 1);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.flaky, 1);
  const ReportRow& build = r.rows.at("m3")[0];
  ASSERT_EQ(build.sizes.size(), 1u);
  EXPECT_EQ(SizeText(build.sizes[0]), "rom 1100 B (+100 B, +10.0%), ram 100 B (+0 B, +0.0%)");
  EXPECT_EQ(SizeTable(build.sizes, "  "),
            "  SIZES       FILE  TEXT  DATA  BSS  ROM                    RAM\n"
            "  out/fw.elf  0     1100  0     100  1100 (+100 B, +10.0%)  100 (+0 B, +0.0%)\n");
  EXPECT_EQ(build.emulator_ms, -1);
  EXPECT_EQ(r.rows.at("m3")[1].emulator_ms, 2000);
  const std::string table = ReportTable(r);
  EXPECT_TRUE(absl::StrContains(table, "job 4 (fw): failed; 4 steps, 1 failed, 1 skipped, 0 cached, 1 flaky")) << table;
  EXPECT_TRUE(absl::StrContains(table, "yes (1 failed run)")) << table;
  EXPECT_TRUE(absl::StrContains(table, "    warning: size regression")) << table;
}

TEST(ReportRenderTest, JUnitEscapesWhatItQuotes) {
  const std::string xml = JUnitXml(BuildReport(SampleJob()), {{"rv|32/build", "log line <b>\n"}});
  EXPECT_TRUE(absl::StrContains(xml, "message=\"exit code 2: &lt;oops&gt; | ? bell\">log line &lt;b&gt;\n</failure>"))
      << xml;
  EXPECT_TRUE(absl::StrContains(xml, "<skipped message=\"needs rv|32/build, which failed\"/>")) << xml;
  EXPECT_TRUE(absl::StrContains(xml, "flaky: passed on attempt 2 after 1 failed run(s)")) << xml;
  EXPECT_TRUE(absl::StrContains(xml, "<testsuites name=\"fw\" tests=\"4\" failures=\"1\"")) << xml;
}

TEST(ReportRenderTest, MarkdownTablesKeepTheirColumns) {
  const std::string md = ReportMarkdown(BuildReport(SampleJob()));
  EXPECT_TRUE(absl::StrContains(md, "\n### rv|32\n")) << md;
  EXPECT_TRUE(absl::StrContains(md, "| build | FAILED: exit code 2: <oops> \\| ? bell |")) << md;
  EXPECT_TRUE(absl::StrContains(md, "⚠️ size regression")) << md;
}

// A job of one cell whose steps are timed (time_regression): one compared with a baseline of five
// runs, one first run, one cached, one that failed before it ran to its end.
Job TimedJob() {
  Job job;
  job.set_id("9");
  job.set_name("fw");
  job.set_state(assay::v1::JOB_FAILED);
  auto add = [&](const std::string& step, assay::v1::TaskState state, int64_t run_ms) {
    Task* t = job.add_tasks();
    t->set_step(step);
    t->set_id(step);
    t->set_state(state);
    t->set_run_ms(run_ms);
    t->mutable_spec()->mutable_time_regression()->set_fail_percent(100);
    return t;
  };
  Task* slow = add("test", assay::v1::TASK_FAILED, 2410);
  slow->mutable_spec()->mutable_time_baseline()->set_median_ms(990);
  slow->mutable_spec()->mutable_time_baseline()->set_runs(5);
  slow->mutable_spec()->mutable_time_baseline()->add_job_ids("8");
  slow->set_message("time regression: test ran 2.41 s, +143% against the median 0.990 s of the last 5 runs, more than 100%");
  add("first", assay::v1::TASK_SUCCEEDED, 171);
  Task* cached = add("cached", assay::v1::TASK_SUCCEEDED, 0);
  cached->set_cached(true);
  cached->mutable_spec()->mutable_time_baseline()->set_median_ms(500);
  cached->mutable_spec()->mutable_time_baseline()->set_runs(1);
  add("broken", assay::v1::TASK_FAILED, 0);
  Task* untimed = add("lint", assay::v1::TASK_SUCCEEDED, 40);
  untimed->mutable_spec()->clear_time_regression();
  return job;
}

TEST(ReportRenderTest, ATimedStepShowsItsRunTimeAgainstItsBaseline) {
  const Job job = TimedJob();
  const Report r = BuildReport(job);
  const auto& rows = r.rows.at("");
  EXPECT_EQ(RunTimeText(rows[0]), "2.41 s, +143% against the median 0.990 s of the last 5 runs");
  EXPECT_EQ(RunTimeText(rows[1]), "0.171 s, no earlier run to compare with");
  EXPECT_EQ(RunTimeText(rows[2]), "cached: not timed");
  EXPECT_EQ(RunTimeText(rows[3]), "") << "it did not run to its end";
  EXPECT_EQ(RunTimeText(rows[4]), "") << "not timed";
  const std::string table = ReportTable(r);
  EXPECT_TRUE(absl::StrContains(table, "\n    time regression: test ran 2.41 s, +143%")) << table;
  EXPECT_TRUE(absl::StrContains(table, "\n    run time: 2.41 s, +143% against the median 0.990 s of the last 5 runs\n"))
      << table;
  EXPECT_TRUE(absl::StrContains(table, "\n    run time: cached: not timed\n")) << table;
  const std::string xml = JUnitXml(r, {});
  EXPECT_TRUE(absl::StrContains(xml, "run time: 0.171 s, no earlier run to compare with")) << xml;
  const std::string md = ReportMarkdown(r);
  EXPECT_TRUE(absl::StrContains(md, "⏱️ run time 2.41 s, +143% against the median 0.990 s of the last 5 runs")) << md;
}

TEST(ReportRenderTest, TheJsonReportCarriesTheRunTimeAndTheBaseline) {
  const Job job = TimedJob();
  auto doc = nlohmann::json::parse(ReportJson(BuildReport(job)), nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  const auto& steps = doc["cells"][0]["steps"];
  EXPECT_EQ(steps[0]["run_ms"], 2410);
  EXPECT_EQ(steps[0]["time"]["baseline_median_ms"], 990);
  EXPECT_EQ(steps[0]["time"]["baseline_runs"], 5);
  EXPECT_EQ(steps[0]["time"]["baseline_jobs"], nlohmann::json::array({"8"}));
  EXPECT_NEAR(steps[0]["time"]["change_percent"].get<double>(), 143.43, 0.01);
  EXPECT_EQ(steps[2]["time"]["cached"], true);
  EXPECT_FALSE(steps[2].contains("run_ms")) << "a cached result did not run";
  EXPECT_FALSE(steps[2]["time"].contains("change_percent"));
  EXPECT_FALSE(steps[4].contains("time")) << "not timed";
  EXPECT_EQ(steps[4]["run_ms"], 40);
}

}  // namespace
}  // namespace assay::cli
