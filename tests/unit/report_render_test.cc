#include <gtest/gtest.h>

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

}  // namespace
}  // namespace assay::cli
