#include "coordinator/size_rules.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "coordinator/baseline.h"
#include "coordinator/task_rules.h"

namespace assay {
namespace {

using assay::v1::FileSize;

FileSize Elf(const std::string& path, int64_t text, int64_t data, int64_t bss, int64_t file = 9000) {
  FileSize f;
  f.set_path(path);
  f.set_file(file);
  f.set_elf(true);
  f.set_text(text);
  f.set_data(data);
  f.set_bss(bss);
  return f;
}

FileSize Plain(const std::string& path, int64_t file) {
  FileSize f;
  f.set_path(path);
  f.set_file(file);
  return f;
}

build::bazel::remote::execution::v2::ActionResult ResultWith(const std::vector<FileSize>& files) {
  build::bazel::remote::execution::v2::ActionResult r;
  assay::v1::OutputSizes sizes;
  for (const auto& f : files) *sizes.add_files() = f;
  r.mutable_execution_metadata()->add_auxiliary_metadata()->PackFrom(sizes);
  return r;
}

TEST(SizeRulesTest, WithinItsBudgetsAStepPassesAndItsSizesAreKept) {
  assay::v1::TaskSpec spec;
  auto* b = spec.add_size_budgets();
  b->set_path("out/fw.elf");
  b->set_rom(2048);
  b->set_ram(256);
  auto v = CheckSizes(spec, ResultWith({Elf("out/fw.elf", 1280, 0, 136), Plain("out/fw.bin", 1280), Plain("log", 3)}));
  EXPECT_EQ(v.failure, "");
  ASSERT_EQ(v.sizes.size(), 1u) << "ELF files and budgeted paths only";
  EXPECT_EQ(v.sizes[0].path(), "out/fw.elf");
}

TEST(SizeRulesTest, ObjectFilesAreShownOnlyWhenBudgeted) {
  FileSize object = Elf("build/main.o", 300, 4, 8);
  object.set_elf_type(1);  // ET_REL
  FileSize budgeted = Elf("build/boot.o", 100, 0, 0);
  budgeted.set_elf_type(1);
  FileSize firmware = Elf("build/fw.elf", 1280, 0, 136);
  firmware.set_elf_type(2);  // ET_EXEC
  assay::v1::TaskSpec spec;
  spec.add_size_budgets()->set_path("build/boot.o");
  auto v = CheckSizes(spec, ResultWith({object, budgeted, firmware}));
  ASSERT_EQ(v.sizes.size(), 2u);
  EXPECT_EQ(v.sizes[0].path(), "build/boot.o");
  EXPECT_EQ(v.sizes[1].path(), "build/fw.elf");
}

TEST(SizeRulesTest, AnExceededBudgetFailsAndSaysByHowMuch) {
  assay::v1::TaskSpec spec;
  auto* b = spec.add_size_budgets();
  b->set_path("out/fw.elf");
  b->set_text(1024);
  b->set_ram(512);
  auto* bin = spec.add_size_budgets();
  bin->set_path("out/fw.bin");
  bin->set_file(1000);
  auto v = CheckSizes(spec, ResultWith({Elf("out/fw.elf", 1280, 0, 136), Plain("out/fw.bin", 1280)}));
  EXPECT_TRUE(absl::StrContains(v.failure, "out/fw.elf text is 1280 bytes, 256 over its budget of 1024 (1 KiB)"))
      << v.failure;
  EXPECT_TRUE(absl::StrContains(v.failure, "out/fw.bin file is 1280 bytes, 280 over its budget of 1000")) << v.failure;
  EXPECT_FALSE(absl::StrContains(v.failure, "ram")) << "136 bytes of RAM are within 512";
}

TEST(SizeRulesTest, ABudgetForAMissingOrNonElfFileIsAFailure) {
  assay::v1::TaskSpec spec;
  auto* b = spec.add_size_budgets();
  b->set_path("out/missing.elf");
  b->set_file(10);
  b->set_line(12);
  auto* text = spec.add_size_budgets();
  text->set_path("out/fw.bin");
  text->set_text(10);
  auto v = CheckSizes(spec, ResultWith({Plain("out/fw.bin", 5)}));
  EXPECT_TRUE(absl::StrContains(v.failure, "out/missing.elf: no such output file to measure (line 12)")) << v.failure;
  EXPECT_TRUE(absl::StrContains(v.failure, "out/fw.bin: a text budget needs an ELF file")) << v.failure;
}

TEST(SizeRulesTest, RegressionsAgainstTheBaselineWarnOrFailByTheirThresholds) {
  assay::v1::TaskSpec spec;
  spec.mutable_size_regression()->set_warn_percent(1);
  spec.mutable_size_regression()->set_fail_percent(5);
  (*spec.mutable_baseline())["out/fw.elf"] = Elf("out/fw.elf", 1000, 0, 100);
  (*spec.mutable_baseline())["out/fw.bin"] = Plain("out/fw.bin", 1000);
  // ROM +2% (warn), RAM unchanged, the .bin +10% (fail).
  auto v = CheckSizes(spec, ResultWith({Elf("out/fw.elf", 1020, 0, 100), Plain("out/fw.bin", 1100)}));
  EXPECT_TRUE(absl::StrContains(v.failure, "size regression: out/fw.bin file grew +10.00% (1000 -> 1100 bytes) against "
                                           "the baseline, more than 5%"))
      << v.failure;
  ASSERT_EQ(v.warnings.size(), 1u);
  EXPECT_TRUE(absl::StrContains(v.warnings[0], "out/fw.elf rom grew +2.00% (1000 -> 1020 bytes)")) << v.warnings[0];
  // Shrinking is never a regression.
  auto smaller = CheckSizes(spec, ResultWith({Elf("out/fw.elf", 900, 0, 90), Plain("out/fw.bin", 900)}));
  EXPECT_EQ(smaller.failure, "");
  EXPECT_TRUE(smaller.warnings.empty());
}

TEST(SizeRulesTest, DecideResultFailsASuccessfulRunOverBudgetAndStillCachesIt) {
  assay::v1::Task task;
  task.set_attempt(1);
  task.mutable_spec()->set_cache(true);
  auto* b = task.mutable_spec()->add_size_budgets();
  b->set_path("fw.elf");
  b->set_rom(100);
  assay::v1::TaskResult result;
  *result.mutable_result() = ResultWith({Elf("fw.elf", 150, 0, 0)});
  ResultDecision d = DecideResult(task, result);
  EXPECT_TRUE(absl::StrContains(d.failure, "size budget exceeded: fw.elf rom is 150 bytes, 50 over")) << d.failure;
  EXPECT_FALSE(d.retry) << "a size is not flaky";
  EXPECT_TRUE(d.cacheable) << "the build itself succeeded";
  ResultDecision cached = DecideCachedResult(task, result.result());
  EXPECT_EQ(cached.failure, d.failure) << "a cached result is held to the same budget";
}

TEST(BaselineTest, AReportsSizesAreABaselineAndBadFilesAreNamed) {
  auto b = ParseBaselineFile(
      R"({"job": "7", "sizes": {"cortex-m3/debug/build": {"out/fw.elf": {"file": 9000, "text": 1280, "data": 0, "bss": 136, "rom": 1280, "ram": 136}}}})",
      "sizes.json");
  ASSERT_TRUE(b.ok()) << b.status();
  const FileSize& f = b->at("cortex-m3/debug/build").at("out/fw.elf");
  EXPECT_TRUE(f.elf());
  EXPECT_EQ(f.text(), 1280);
  EXPECT_EQ(f.bss(), 136);
  for (const auto& [text, message] : std::vector<std::pair<std::string, std::string>>{
           {"{", "sizes.json: not a size baseline: invalid JSON"},
           {"{}", "sizes.json: not a size baseline: no \"sizes\" object"},
           {R"({"sizes": {"t": {"p": {"text": "big"}}}})", "sizes.\"t\".\"p\".text must be a whole number of bytes"},
           {R"({"sizes": {"t": {"p": {"flash": 1}}}})", "unknown key 'flash'"}}) {
    auto bad = ParseBaselineFile(text, "sizes.json");
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_TRUE(absl::StrContains(bad.status().message(), message)) << bad.status();
  }
}

TEST(BaselineTest, ThePreviousSuccessfulJobOfTheSamePipelineAndBranch) {
  std::vector<assay::v1::Job> jobs(4);  // newest first
  jobs[0].set_id("9");
  jobs[0].set_name("fw");
  jobs[0].set_state(assay::v1::JOB_FAILED);
  jobs[1].set_id("8");
  jobs[1].set_name("fw");
  jobs[1].set_state(assay::v1::JOB_SUCCEEDED);
  (*jobs[1].mutable_labels())["branch"] = "feature";
  jobs[2].set_id("7");
  jobs[2].set_name("other");
  jobs[2].set_state(assay::v1::JOB_SUCCEEDED);
  jobs[3].set_id("6");
  jobs[3].set_name("fw");
  jobs[3].set_state(assay::v1::JOB_SUCCEEDED);
  (*jobs[3].mutable_labels())["branch"] = "main";
  ASSERT_NE(FindBaselineJob(jobs, "fw", "main"), nullptr);
  EXPECT_EQ(FindBaselineJob(jobs, "fw", "main")->id(), "6");
  EXPECT_EQ(FindBaselineJob(jobs, "fw", "feature")->id(), "8");
  EXPECT_EQ(FindBaselineJob(jobs, "fw", ""), nullptr);
}

}  // namespace
}  // namespace assay
