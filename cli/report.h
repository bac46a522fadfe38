// Reports of a finished job for people and for CI servers (docs/ci.md): a table per cell, JUnit XML,
// JSON and Markdown, all from the same rows. Pure rendering over the job: no I/O.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "assay/v1/job.pb.h"

namespace assay::cli {

// One step of one cell, as every report shows it.
struct ReportRow {
  const assay::v1::Task* task = nullptr;
  std::string result;          // ok, cached, FAILED, TIMEOUT, skipped, cancelled, ...
  int64_t duration_ms = 0;
  int64_t emulator_ms = -1;    // a qemu step's emulator run time; -1 for other steps
  struct Size {
    assay::v1::FileSize now;
    const assay::v1::FileSize* baseline = nullptr;  // in the task's spec, when there is one
  };
  std::vector<Size> sizes;
  bool timed = false;          // its run time is checked (time_regression)
  int64_t run_ms = 0;          // how long its command or emulator ran; 0: cached or not run
  const assay::v1::TimeBaseline* time_baseline = nullptr;  // in the task's spec, when there is one
};

struct Report {
  const assay::v1::Job* job = nullptr;
  std::vector<std::string> cells;                     // in matrix order
  std::map<std::string, std::vector<ReportRow>> rows;  // by cell, in step order
  int tests = 0, failures = 0, skipped = 0, flaky = 0, cached = 0;
};

Report BuildReport(const assay::v1::Job& job);

// "rom 1280 B (+12 B, +0.9%)" parts for a size, against its baseline when it has one.
std::string SizeText(const ReportRow::Size& size);
// The table's sizes under a step: a row per file with its FILE size and, for an ELF file, TEXT, DATA,
// BSS, ROM and RAM; changes against the baseline beside the measures compared.
std::string SizeTable(const std::vector<ReportRow::Size>& sizes, absl::string_view indent);

// "2.41 s, +142% against the median 0.990 s of the last 5 runs" for a timed step (time_regression)
// that ran, "0.171 s, no earlier run to compare with" before it has a baseline, "cached: not timed";
// "" for a step that is not timed or did not run.
std::string RunTimeText(const ReportRow& row);

// The terminal table: a block per cell.
std::string ReportTable(const Report& report);
// JUnit XML (the Jenkins/Ant schema, tests/data/junit.xsd): a <testsuite> per cell, a <testcase>
// per step, failures with their message and log (`logs`: task id -> output).
std::string JUnitXml(const Report& report, const std::map<std::string, std::string>& logs);
// The same data as JSON; its "sizes" object is a baseline file for `size_regression.baseline`.
std::string ReportJson(const Report& report);
// GitHub-flavoured Markdown: a heading and a table per cell (a step summary or an MR comment).
std::string ReportMarkdown(const Report& report);

}  // namespace assay::cli
