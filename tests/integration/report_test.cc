// Reports, size budgets and regressions, and releases, through a real farm and the real CLI: JUnit
// checked by xmllint against the JUnit schema, sizes of the example firmware built by the real
// cross toolchains, release folders checked with sha256sum.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "tests/integration/farm.h"

namespace assay::testing {
namespace {
namespace fs = std::filesystem;
using assay::v1::Job;
using assay::v1::Task;

// Runs a shell command in `dir`; returns its exit status and output.
std::pair<int, std::string> Shell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (p == nullptr) return {-1, ""};
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), p)) > 0) out.append(buffer, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string Slurp(const fs::path& p) {
  auto text = ReadFile(p);
  return text.value_or("");
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    farm_.StartCoordinator();
    farm_.StartWorker("w1", {}, 2);
  }
  // A copy of the example whose pipeline is `pipeline` (one cell: cortex-m3 debug).
  fs::path Firmware(const std::string& name, const std::string& pipeline) {
    fs::path copy = farm_.dir() / name;
    fs::copy(SourceDir() + "/examples/karatos-mini", copy, fs::copy_options::recursive);
    fs::remove_all(copy / "out");
    std::ofstream(copy / "assay.yaml") << pipeline;
    return copy;
  }
  // The firmware's boot line made longer by `extra` characters: its ROM grows by about as much.
  static void GrowFirmware(const fs::path& tree, int extra) {
    const fs::path main_c = tree / "src/main.c";
    std::string text = Slurp(main_c);
    const std::string from = "\" booting";
    ASSERT_TRUE(absl::StrContains(text, from));
    text = absl::StrReplaceAll(text, {{from, absl::StrCat(from, std::string(static_cast<size_t>(extra), '.'))}});
    std::ofstream(main_c) << text;
  }
  std::string SubmitAndWait(const fs::path& tree, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"submit", tree.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    RunResult r = farm_.Cli(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::string id(absl::StripAsciiWhitespace(r.out));
    auto job = farm_.WaitJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return id;
  }
  Task BuildTask(const std::string& job_id) {
    auto job = farm_.GetJob(job_id);
    EXPECT_TRUE(job.ok());
    const Task* t = job.ok() ? FindTask(*job, "cortex-m3/build") : nullptr;
    return t != nullptr ? *t : Task();
  }
  Farm farm_;
};

constexpr const char* kMatrix = R"(name: reports
matrix:
  n: [good, bad]
steps:
  - id: build
    run: |
      mkdir -p out && echo "image of ${{ matrix.n }}" > out/image.bin
      test ${{ matrix.n }} = good || { echo "the bad cell breaks"; exit 7; }
    outputs: [out/]
  - id: test
    needs: [build]
    run: cat out/image.bin
)";

TEST_F(ReportTest, JUnitMarkdownJsonAndTheTableAgreeAndValidate) {
  fs::path tree = farm_.WriteTree("matrix", {{"assay.yaml", kMatrix}});
  const fs::path junit = farm_.dir() / "junit.xml";
  const fs::path markdown = farm_.dir() / "summary.md";
  RunResult r = farm_.Cli({"submit", tree.string(), "--wait", "--junit", junit.string(), "--markdown", markdown.string()});
  EXPECT_EQ(r.exit_code, 1) << "a failed job: " << r.out << r.err;

  // JUnit: valid against the schema, one test case per cell x step, the right counts.
  auto [valid, xmllint] = Shell(absl::StrCat("xmllint --noout --schema ", SourceDir(), "/tests/data/junit.xsd ",
                                             junit.string()));
  EXPECT_EQ(valid, 0) << xmllint;
  const std::string xml = Slurp(junit);
  EXPECT_TRUE(absl::StrContains(xml, "<testsuites name=\"reports\" tests=\"4\" failures=\"1\" errors=\"0\"")) << xml;
  EXPECT_TRUE(absl::StrContains(xml, "<testsuite name=\"good\" id=\"0\" tests=\"2\" failures=\"0\" errors=\"0\" skipped=\"0\""))
      << xml;
  EXPECT_TRUE(absl::StrContains(xml, "<testsuite name=\"bad\" id=\"1\" tests=\"2\" failures=\"1\" errors=\"0\" skipped=\"1\""))
      << xml;
  EXPECT_TRUE(absl::StrContains(xml, "<failure type=\"failure\" message=\"exit code 7\">")) << xml;
  EXPECT_TRUE(absl::StrContains(xml, "the bad cell breaks")) << "the failure carries the step's output: " << xml;
  // The schema is really checked: a test case without its name is refused.
  std::ofstream(farm_.dir() / "broken.xml") << "<testsuites><testsuite name=\"x\" tests=\"1\"><testcase/></testsuite></testsuites>";
  EXPECT_NE(Shell(absl::StrCat("xmllint --noout --schema ", SourceDir(), "/tests/data/junit.xsd ",
                               (farm_.dir() / "broken.xml").string())).first, 0);

  // Markdown: a heading and a table per cell, each row with as many cells as the header.
  const std::string md = Slurp(markdown);
  for (const std::string cell : {"good", "bad"}) {
    EXPECT_TRUE(absl::StrContains(md, absl::StrCat("\n### ", cell, "\n\n| Step | Result | Time | Cached | Flaky | Emulator | Sizes |\n|---|")))
        << md;
  }
  int rows = 0;
  for (absl::string_view line : absl::StrSplit(md, '\n')) {
    if (!absl::StartsWith(line, "| ")) continue;
    EXPECT_EQ(std::count(line.begin(), line.end(), '|') - std::count(line.begin(), line.end(), '\\'), 8) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 2 * (1 + 2)) << md;
  EXPECT_TRUE(absl::StrContains(md, "| build | FAILED: exit code 7 |")) << md;

  // JSON and the table from `assay report`, global options after the subcommand too.
  const fs::path json_file = farm_.dir() / "report.json";
  RunResult report = farm_.Cli({"report", "1", "--json", json_file.string()});
  EXPECT_EQ(report.exit_code, 1) << report.err;
  EXPECT_TRUE(absl::StrContains(report.out, "job 1 (reports): failed; 4 steps, 1 failed, 1 skipped")) << report.out;
  EXPECT_TRUE(absl::StrContains(report.out, "\nbad\n  STEP")) << report.out;
  auto doc = nlohmann::json::parse(Slurp(json_file), nullptr, false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc["summary"]["steps"], 4);
  EXPECT_EQ(doc["summary"]["failed"], 1);
  ASSERT_EQ(doc["cells"].size(), 2u);
  EXPECT_EQ(doc["cells"][1]["cell"], "bad");
  EXPECT_EQ(doc["cells"][1]["steps"][0]["exit_code"], 7);
  EXPECT_EQ(doc["cells"][1]["steps"][1]["state"], "skipped");

  // `--output json` prints that JSON instead of the table.
  RunResult printed = farm_.Cli({"report", "1", "--output", "json"});
  EXPECT_EQ(printed.exit_code, 1) << printed.err;
  auto out = nlohmann::json::parse(printed.out, nullptr, false);
  ASSERT_FALSE(out.is_discarded()) << printed.out;
  EXPECT_EQ(out, doc);
}

constexpr const char* kBudget = R"(name: fw
matrix:
  target: [cortex-m3]
steps:
  - id: build
    run: make TARGET=cortex-m3 PROFILE=debug
    outputs: [out/cortex-m3-debug/]
    limits:
      size:
        out/cortex-m3-debug/karatos.elf: {rom: 512B, ram: 1KiB}
)";

TEST_F(ReportTest, AnExceededSizeBudgetFailsTheCellAndSaysByHowMuch) {
  fs::path tree = Firmware("budget", kBudget);
  const std::string id = SubmitAndWait(tree);
  Task build = BuildTask(id);
  EXPECT_EQ(build.state(), assay::v1::TASK_FAILED);
  // The ROM binutils' size prints for the same ELF, built here from the same tree (builds are reproducible).
  auto [ok, size_out] = Shell(absl::StrCat("cd ", tree.string(), " && make -s TARGET=cortex-m3 PROFILE=debug >/dev/null",
                                           " && arm-none-eabi-size out/cortex-m3-debug/karatos.elf"));
  ASSERT_EQ(ok, 0) << size_out;
  std::vector<std::string> lines = absl::StrSplit(size_out, '\n');
  ASSERT_GE(lines.size(), 2u) << size_out;
  std::vector<std::string> fields = absl::StrSplit(lines[lines.size() - 2], absl::ByAnyChar(" \t"), absl::SkipWhitespace());
  ASSERT_GE(fields.size(), 3u) << size_out;
  const int64_t rom = std::stoll(fields[0]) + std::stoll(fields[1]);
  EXPECT_TRUE(absl::StrContains(build.message(), absl::StrCat("size budget exceeded: out/cortex-m3-debug/karatos.elf rom is ",
                                                              rom, " bytes, ", rom - 512, " over its budget of 512")))
      << build.message();
  EXPECT_FALSE(absl::StrContains(build.message(), "ram")) << "RAM is within its budget: " << build.message();
  ASSERT_EQ(build.sizes_size(), 1);
  EXPECT_EQ(build.sizes(0).text() + build.sizes(0).data(), rom);
}

constexpr const char* kRegression = R"(name: fw
matrix:
  target: [cortex-m3]
size_regression: {warn: 1%, fail: 5%}
steps:
  - id: build
    run: make TARGET=cortex-m3 PROFILE=debug
    outputs: [out/cortex-m3-debug/]
)";

TEST_F(ReportTest, SizeRegressionsAgainstThePreviousJobOfTheBranchWarnOrFail) {
  fs::path tree = Firmware("regress", kRegression);
  const std::string first = SubmitAndWait(tree, {"--label", "branch=main"});
  Task base = BuildTask(first);
  ASSERT_EQ(base.state(), assay::v1::TASK_SUCCEEDED) << base.message();
  ASSERT_EQ(base.sizes_size(), 1);
  const int64_t rom = base.sizes(0).text() + base.sizes(0).data();

  // About 2% more ROM: a warning, the cell still passes.
  GrowFirmware(tree, static_cast<int>(rom / 50) + 4);
  const std::string warned = SubmitAndWait(tree, {"--label", "branch=main"});
  Task w = BuildTask(warned);
  EXPECT_EQ(w.state(), assay::v1::TASK_SUCCEEDED) << w.message();
  ASSERT_EQ(w.warnings_size(), 1) << w.DebugString();
  EXPECT_TRUE(absl::StrContains(w.warnings(0), "out/cortex-m3-debug/karatos.elf rom grew +")) << w.warnings(0);
  EXPECT_TRUE(absl::StrContains(w.warnings(0), "against the baseline, more than 1%")) << w.warnings(0);

  // Another 10% on top of the last successful job of main: the cell fails, naming the growth.
  GrowFirmware(tree, static_cast<int>(rom / 10) + 4);
  const std::string failed = SubmitAndWait(tree, {"--label", "branch=main"});
  Task f = BuildTask(failed);
  EXPECT_EQ(f.state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(std::regex_search(f.message(), std::regex("size regression: out/cortex-m3-debug/karatos\\.elf rom grew "
                                                        "\\+[0-9.]+% \\([0-9]+ -> [0-9]+ bytes\\) against the baseline, "
                                                        "more than 5%")))
      << f.message();
  // Another branch has no baseline yet: the same tree passes there.
  const std::string other = SubmitAndWait(tree, {"--label", "branch=feature"});
  EXPECT_EQ(BuildTask(other).state(), assay::v1::TASK_SUCCEEDED) << BuildTask(other).message();

  // The report shows sizes with deltas against the baseline.
  RunResult report = farm_.Cli({"report", warned});
  // SIZES FILE TEXT DATA BSS ROM RAM, the ROM and RAM with their change.
  EXPECT_TRUE(std::regex_search(report.out, std::regex("out/cortex-m3-debug/karatos\\.elf +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +"
                                                       "[0-9]+ \\(\\+[0-9]+ B, \\+[0-9.]+%\\) +136 \\(\\+0 B, \\+0\\.0%\\)")))
      << report.out;
}

TEST_F(ReportTest, ABaselineFileInTheTreeIsAReportsJson) {
  fs::path tree = Firmware("baseline", kRegression);
  const std::string first = SubmitAndWait(tree);
  ASSERT_EQ(BuildTask(first).state(), assay::v1::TASK_SUCCEEDED);
  // The saved report of the first job is the baseline file of the next ones.
  ASSERT_EQ(farm_.Cli({"report", first, "--json", (tree / "sizes.json").string()}).exit_code, 0);
  std::ofstream(tree / "assay.yaml") << absl::StrReplaceAll(kRegression, {{"{warn: 1%, fail: 5%}",
                                                                          "{fail: 5%, baseline: sizes.json}"}});
  GrowFirmware(tree, static_cast<int>(BuildTask(first).sizes(0).text() / 8));
  const std::string grown = SubmitAndWait(tree, {"--label", "branch=elsewhere"});  // no job baseline on this branch
  Task t = BuildTask(grown);
  EXPECT_EQ(t.state(), assay::v1::TASK_FAILED);
  EXPECT_TRUE(absl::StrContains(t.message(), "size regression: out/cortex-m3-debug/karatos.elf rom grew")) << t.message();

  // A baseline file that is not one is refused at submit, naming it.
  std::ofstream(tree / "sizes.json") << "{\"not\": \"sizes\"}";
  RunResult bad = farm_.Cli({"submit", tree.string()});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(bad.err, "sizes.json: not a size baseline: no \"sizes\" object")) << bad.err;
}

TEST_F(ReportTest, ReleasesAreByteIdenticalAndTheirChecksumsVerify) {
  fs::path tree = Firmware("release", kRegression);
  const std::string id = SubmitAndWait(tree, {"--label", "version=1.2.3"});
  const fs::path a = farm_.dir() / "release-a";
  const fs::path b = farm_.dir() / "release-b";
  RunResult ra = farm_.Cli({"release", id, "--out", a.string()});
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  ASSERT_EQ(farm_.Cli({"release", id, "--out", b.string()}).exit_code, 0);
  auto [same, diff] = Shell(absl::StrCat("diff -r ", a.string(), " ", b.string()));
  EXPECT_EQ(same, 0) << diff;
  auto [tar_same, tars] = Shell(absl::StrCat("cd ", a.string(), " && tar --sort=name -cf - . | sha256sum; cd ", b.string(),
                                             " && tar --sort=name -cf - . | sha256sum"));
  std::vector<std::string> sums = absl::StrSplit(tars, '\n', absl::SkipEmpty());
  ASSERT_EQ(sums.size(), 2u) << tars;
  EXPECT_EQ(sums[0], sums[1]) << "even archives of the two folders (times included) are identical";
  auto [check, checked] = Shell(absl::StrCat("cd ", a.string(), " && sha256sum -c SHA256SUMS"));
  EXPECT_EQ(check, 0) << checked;
  EXPECT_TRUE(absl::StrContains(checked, "cortex-m3/build/out/cortex-m3-debug/karatos.elf: OK")) << checked;
  auto manifest = nlohmann::json::parse(Slurp(a / "manifest.json"), nullptr, false);
  ASSERT_FALSE(manifest.is_discarded());
  EXPECT_EQ(manifest["job"], id);
  EXPECT_EQ(manifest["labels"]["version"], "1.2.3");
  ASSERT_EQ(manifest["artifacts"].size(), 3u) << manifest.dump(2);  // .elf, .bin, size.txt
  for (const auto& artifact : manifest["artifacts"]) {
    EXPECT_EQ(artifact["cell"], "cortex-m3");
    EXPECT_EQ(artifact["step"], "build");
    EXPECT_EQ(artifact["sha256"].get<std::string>().size(), 64u);
    EXPECT_EQ(artifact["size"].get<int64_t>(), static_cast<int64_t>(fs::file_size(a / artifact["path"].get<std::string>())));
  }

  // --artifacts chooses by glob; an existing folder with files is refused and left alone.
  const fs::path elf_only = farm_.dir() / "elf-only";
  ASSERT_EQ(farm_.Cli({"release", id, "--out", elf_only.string(), "--artifacts", "*.elf"}).exit_code, 0);
  auto elf_manifest = nlohmann::json::parse(Slurp(elf_only / "manifest.json"), nullptr, false);
  ASSERT_EQ(elf_manifest["artifacts"].size(), 1u);
  EXPECT_EQ(elf_manifest["artifacts"][0]["path"], "cortex-m3/build/out/cortex-m3-debug/karatos.elf");
  RunResult again = farm_.Cli({"release", id, "--out", a.string()});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(again.err, "is not empty")) << again.err;
}

}  // namespace
}  // namespace assay::testing
