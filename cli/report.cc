#include "cli/report.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "cli/render.h"
#include "common/task/firmware_size.h"
#include "common/task/run_time.h"
#include "common/task/task_states.h"

namespace assay::cli {

using assay::v1::FileSize;
using assay::v1::Task;

namespace {


struct Measure {
  const char* name;
  int64_t (*get)(const FileSize&);
};
// What a report shows of a file: ROM and RAM for an ELF file (what the chip holds), its size otherwise.
const Measure kElfMeasures[] = {{"rom", [](const FileSize& f) { return RomBytes(f); }},
                                {"ram", [](const FileSize& f) { return RamBytes(f); }}};
const Measure kFileMeasure = {"size", [](const FileSize& f) { return f.file(); }};

std::vector<Measure> MeasuresOf(const FileSize& f) {
  if (f.elf()) return {std::begin(kElfMeasures), std::end(kElfMeasures)};
  return {kFileMeasure};
}

// " (+100 B, +10.0%)": how measure `m` of a file changed since its baseline ("" without one).
std::string Change(const ReportRow::Size& size, const Measure& m) {
  if (size.baseline == nullptr || size.baseline->elf() != size.now.elf()) return "";
  const int64_t now = m.get(size.now), then = m.get(*size.baseline), delta = now - then;
  if (then <= 0) return absl::StrFormat(" (%+d B)", delta);
  return absl::StrFormat(" (%+d B, %+.1f%%)", delta, 100.0 * static_cast<double>(delta) / static_cast<double>(then));
}

std::string XmlEscape(const std::string& s) {
  std::string out = absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
  // Control characters other than tab and newline are not allowed in XML 1.0.
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') c = '?';
  }
  return out;
}

std::string Seconds(int64_t ms) { return absl::StrFormat("%.3f", static_cast<double>(std::max<int64_t>(ms, 0)) / 1000.0); }

std::string Flaky(const Task& t) {
  return t.flaky() ? absl::StrCat("yes (", t.failed_runs(), " failed run", t.failed_runs() == 1 ? "" : "s", ")") : "";
}

std::string Emulator(const ReportRow& row) { return row.emulator_ms < 0 ? "" : FormatSeconds(row.emulator_ms); }

// A timed step's run time against its baseline (`time_regression`), for the JSON report.
nlohmann::ordered_json TimeJson(const ReportRow& row) {
  nlohmann::ordered_json out;
  out["cached"] = row.task->cached();
  if (row.run_ms > 0) out["run_ms"] = row.run_ms;
  if (row.time_baseline != nullptr) {
    out["baseline_median_ms"] = row.time_baseline->median_ms();
    out["baseline_runs"] = row.time_baseline->runs();
    const auto& jobs = row.time_baseline->job_ids();
    out["baseline_jobs"] = std::vector<std::string>(jobs.begin(), jobs.end());
    if (row.run_ms > 0 && !row.task->cached()) {
      out["change_percent"] = TimeChangePercent(row.run_ms, row.time_baseline->median_ms());
    }
  }
  return out;
}

std::string Sizes(const ReportRow& row) {
  std::vector<std::string> parts;
  for (const auto& size : row.sizes) parts.push_back(absl::StrCat(size.now.path(), ": ", SizeText(size)));
  return absl::StrJoin(parts, "; ");
}

}  // namespace

Report BuildReport(const assay::v1::Job& job) {
  Report r;
  r.job = &job;
  for (const Task& t : job.tasks()) {
    if (std::find(r.cells.begin(), r.cells.end(), t.cell()) == r.cells.end()) r.cells.push_back(t.cell());
    ReportRow row;
    row.task = &t;
    row.result = ResultText(t);
    row.duration_ms = t.started_at_ms() > 0 && t.finished_at_ms() > 0 ? t.finished_at_ms() - t.started_at_ms() : 0;
    const auto& meta = t.result().execution_metadata();
    if (t.spec().has_qemu() && meta.has_execution_start_timestamp() && meta.has_execution_completed_timestamp()) {
      row.emulator_ms = TimestampMillis(meta.execution_completed_timestamp()) - TimestampMillis(meta.execution_start_timestamp());
    }
    row.timed = t.spec().has_time_regression();
    row.run_ms = t.run_ms();
    if (t.spec().has_time_baseline()) row.time_baseline = &t.spec().time_baseline();
    for (const FileSize& f : t.sizes()) {
      // Object files (from a job before the coordinator left them out) only when budgeted.
      const bool budgeted = std::any_of(t.spec().size_budgets().begin(), t.spec().size_budgets().end(),
                                        [&f](const assay::v1::SizeBudget& b) { return b.path() == f.path(); });
      if (f.elf() && f.elf_type() == 1 && !budgeted) continue;
      ReportRow::Size size{f, nullptr};
      if (auto it = t.spec().baseline().find(f.path()); it != t.spec().baseline().end()) size.baseline = &it->second;
      row.sizes.push_back(size);
    }
    ++r.tests;
    if (t.state() == assay::v1::TASK_FAILED) ++r.failures;
    if (t.state() == assay::v1::TASK_SKIPPED || t.state() == assay::v1::TASK_CANCELLED) ++r.skipped;
    if (t.flaky()) ++r.flaky;
    if (t.cached()) ++r.cached;
    r.rows[t.cell()].push_back(std::move(row));
  }
  return r;
}

std::string SizeText(const ReportRow::Size& size) {
  std::vector<std::string> parts;
  for (const Measure& m : MeasuresOf(size.now)) parts.push_back(absl::StrCat(m.name, " ", m.get(size.now), " B", Change(size, m)));
  return absl::StrJoin(parts, ", ");
}

std::string SizeTable(const std::vector<ReportRow::Size>& sizes, absl::string_view indent) {
  // One row a file: its size, and for an ELF file its sections and what the chip holds; a measure
  // compared with the baseline carries its change.
  std::vector<std::vector<std::string>> rows = {{"SIZES", "FILE", "TEXT", "DATA", "BSS", "ROM", "RAM"}};
  for (const ReportRow::Size& size : sizes) {
    const FileSize& f = size.now;
    std::vector<std::string> row = {f.path(), absl::StrCat(f.file())};
    if (f.elf()) {
      for (int64_t v : {f.text(), f.data(), f.bss()}) row.push_back(absl::StrCat(v));
      row.push_back(absl::StrCat(RomBytes(f), Change(size, kElfMeasures[0])));
      row.push_back(absl::StrCat(RamBytes(f), Change(size, kElfMeasures[1])));
    } else {
      absl::StrAppend(&row[1], Change(size, kFileMeasure));
      row.insert(row.end(), 5, "-");
    }
    rows.push_back(std::move(row));
  }
  std::vector<size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line(indent);
    for (size_t i = 0; i < row.size(); ++i) absl::StrAppend(&line, absl::StrFormat("%-*s", width[i] + 2, row[i]));
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

std::string RunTimeText(const ReportRow& row) {
  if (!row.timed) return "";
  if (row.task->cached()) return "cached: not timed";
  if (row.run_ms <= 0) return "";
  const std::string ran = FormatRunTime(row.run_ms);
  if (row.time_baseline == nullptr || row.time_baseline->median_ms() <= 0) {
    return absl::StrCat(ran, ", no earlier run to compare with");
  }
  const int runs = row.time_baseline->runs();
  return absl::StrFormat("%s, %+.0f%% against the median %s of the last %d run%s", ran,
                         TimeChangePercent(row.run_ms, row.time_baseline->median_ms()),
                         FormatRunTime(row.time_baseline->median_ms()), runs, runs == 1 ? "" : "s");
}

std::string ReportTable(const Report& report) {
  const auto& job = *report.job;
  std::string out = absl::StrCat("job ", job.id(), job.name().empty() ? "" : absl::StrCat(" (", job.name(), ")"), ": ",
                                 StateName(job.state()), "; ", report.tests, " steps, ", report.failures, " failed, ",
                                 report.skipped, " skipped, ", report.cached, " cached, ", report.flaky, " flaky\n");
  for (const std::string& cell : report.cells) {
    const auto& rows = report.rows.at(cell);
    absl::StrAppend(&out, "\n", cell.empty() ? "(no matrix)" : cell, "\n");
    size_t step_width = 4;
    for (const auto& row : rows) step_width = std::max(step_width, row.task->step().size());
    const int w = static_cast<int>(step_width) + 2;
    absl::StrAppend(&out, absl::StrFormat("  %-*s%-10s%-9s%-8s%-16s%s\n", w, "STEP", "RESULT", "TIME", "CACHED",
                                          "FLAKY", "EMULATOR"));
    for (const auto& row : rows) {
      const Task& t = *row.task;
      absl::StrAppend(&out, absl::StrFormat("  %-*s%-10s%-9s%-8s%-16s%s\n", w, t.step(), row.result,
                                            row.duration_ms > 0 ? FormatSeconds(row.duration_ms) : "-",
                                            t.cached() ? "yes" : "no", t.flaky() ? Flaky(t) : "-",
                                            row.emulator_ms >= 0 ? Emulator(row) : "-"));
      if (!row.sizes.empty()) absl::StrAppend(&out, SizeTable(row.sizes, "    "));
      if (t.state() == assay::v1::TASK_FAILED && !t.message().empty()) {
        // The first line of why it failed (the log has the rest).
        absl::StrAppend(&out, "    ", t.message().substr(0, t.message().find('\n')), "\n");
      }
      const std::string run_time = RunTimeText(row);
      if (!run_time.empty()) absl::StrAppend(&out, "    run time: ", run_time, "\n");
      for (const std::string& w2 : t.warnings()) absl::StrAppend(&out, "    warning: ", w2, "\n");
    }
  }
  return out;
}

std::string JUnitXml(const Report& report, const std::map<std::string, std::string>& logs) {
  const auto& job = *report.job;
  const int64_t job_ms = job.finished_at_ms() > 0 ? job.finished_at_ms() - job.created_at_ms() : 0;
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  absl::StrAppend(&out, "<testsuites name=\"", XmlEscape(job.name().empty() ? "assay" : job.name()), "\" tests=\"",
                  report.tests, "\" failures=\"", report.failures, "\" errors=\"0\" time=\"", Seconds(job_ms), "\">\n");
  int id = 0;
  for (const std::string& cell : report.cells) {
    const auto& rows = report.rows.at(cell);
    int failures = 0, skipped = 0;
    int64_t ms = 0;
    for (const auto& row : rows) {
      if (row.task->state() == assay::v1::TASK_FAILED) ++failures;
      if (row.task->state() == assay::v1::TASK_SKIPPED || row.task->state() == assay::v1::TASK_CANCELLED) ++skipped;
      ms += row.duration_ms;
    }
    const std::string suite = cell.empty() ? (job.name().empty() ? "assay" : job.name()) : cell;
    absl::StrAppend(&out, "  <testsuite name=\"", XmlEscape(suite), "\" id=\"", id++, "\" tests=\"", rows.size(),
                    "\" failures=\"", failures, "\" errors=\"0\" skipped=\"", skipped, "\" time=\"", Seconds(ms),
                    "\">\n");
    for (const auto& row : rows) {
      const Task& t = *row.task;
      absl::StrAppend(&out, "    <testcase classname=\"", XmlEscape(suite), "\" name=\"", XmlEscape(t.step()),
                      "\" time=\"", Seconds(row.duration_ms), "\">\n");
      if (t.state() == assay::v1::TASK_SKIPPED || t.state() == assay::v1::TASK_CANCELLED) {
        absl::StrAppend(&out, "      <skipped message=\"", XmlEscape(t.message()), "\"/>\n");
      } else if (t.state() == assay::v1::TASK_FAILED) {
        auto log = logs.find(t.id());
        absl::StrAppend(&out, "      <failure type=\"", t.timed_out() ? "timeout" : "failure", "\" message=\"",
                        XmlEscape(t.message()), "\">", XmlEscape(log != logs.end() ? log->second : t.message()),
                        "</failure>\n");
      }
      std::vector<std::string> notes;
      if (t.cached()) notes.push_back("cached: the result of an earlier identical run");
      if (t.flaky()) notes.push_back(absl::StrCat("flaky: passed on attempt ", t.attempt(), " after ", t.failed_runs(),
                                                  " failed run(s)"));
      if (row.emulator_ms >= 0) notes.push_back(absl::StrCat("emulator: ", Emulator(row)));
      for (const auto& size : row.sizes) notes.push_back(absl::StrCat("size: ", size.now.path(), ": ", SizeText(size)));
      const std::string run_time = RunTimeText(row);
      if (!run_time.empty()) notes.push_back(absl::StrCat("run time: ", run_time));
      for (const std::string& w : t.warnings()) notes.push_back(absl::StrCat("warning: ", w));
      if (!notes.empty()) {
        absl::StrAppend(&out, "      <system-out>", XmlEscape(absl::StrJoin(notes, "\n")), "</system-out>\n");
      }
      absl::StrAppend(&out, "    </testcase>\n");
    }
    absl::StrAppend(&out, "  </testsuite>\n");
  }
  absl::StrAppend(&out, "</testsuites>\n");
  return out;
}

std::string ReportJson(const Report& report) {
  const auto& job = *report.job;
  nlohmann::ordered_json doc;
  doc["job"] = job.id();
  doc["name"] = job.name();
  doc["state"] = StateName(job.state());
  doc["labels"] = nlohmann::ordered_json::object();
  std::map<std::string, std::string> labels(job.labels().begin(), job.labels().end());
  for (const auto& [k, v] : labels) doc["labels"][k] = v;
  doc["summary"] = {{"steps", report.tests}, {"failed", report.failures}, {"skipped", report.skipped},
                    {"cached", report.cached}, {"flaky", report.flaky}};
  doc["cells"] = nlohmann::ordered_json::array();
  doc["sizes"] = nlohmann::ordered_json::object();
  for (const std::string& cell : report.cells) {
    nlohmann::ordered_json c;
    c["cell"] = cell;
    c["steps"] = nlohmann::ordered_json::array();
    for (const auto& row : report.rows.at(cell)) {
      const Task& t = *row.task;
      nlohmann::ordered_json s;
      s["step"] = t.step();
      s["task"] = t.id();
      s["result"] = row.result;
      s["state"] = StateName(t.state());
      s["duration_ms"] = row.duration_ms;
      s["cached"] = t.cached();
      s["flaky"] = t.flaky();
      s["attempts"] = t.attempt();
      s["exit_code"] = t.exit_code();
      s["timed_out"] = t.timed_out();
      if (row.emulator_ms >= 0) s["emulator_ms"] = row.emulator_ms;
      if (row.run_ms > 0) s["run_ms"] = row.run_ms;
      if (row.timed) s["time"] = TimeJson(row);
      if (!t.message().empty()) s["message"] = t.message();
      s["warnings"] = std::vector<std::string>(t.warnings().begin(), t.warnings().end());
      s["sizes"] = nlohmann::ordered_json::array();
      for (const auto& size : row.sizes) {
        nlohmann::ordered_json f;
        f["path"] = size.now.path();
        f["file"] = size.now.file();
        if (size.now.elf()) {
          f["text"] = size.now.text();
          f["data"] = size.now.data();
          f["bss"] = size.now.bss();
          f["rom"] = RomBytes(size.now);
          f["ram"] = RamBytes(size.now);
        }
        if (size.baseline != nullptr) {
          nlohmann::ordered_json delta;
          for (const Measure& m : MeasuresOf(size.now)) delta[m.name] = m.get(size.now) - m.get(*size.baseline);
          f["delta"] = delta;
        }
        // The baseline shape (coordinator/baseline.h): measured values only.
        nlohmann::ordered_json base;
        base["file"] = size.now.file();
        if (size.now.elf()) {
          base["text"] = size.now.text();
          base["data"] = size.now.data();
          base["bss"] = size.now.bss();
        }
        doc["sizes"][t.id()][size.now.path()] = base;
        s["sizes"].push_back(f);
      }
      c["steps"].push_back(s);
    }
    doc["cells"].push_back(c);
  }
  return doc.dump(2) + "\n";
}

std::string ReportMarkdown(const Report& report) {
  const auto& job = *report.job;
  auto cell_text = [](std::string s) {
    s = absl::StrReplaceAll(s, {{"|", "\\|"}, {"\n", " "}, {"\r", " "}});
    for (char& c : s) {
      if (static_cast<unsigned char>(c) < 0x20) c = '?';  // a control character would break the table
    }
    return s.empty() ? std::string("-") : s;
  };
  const bool ok = job.state() == assay::v1::JOB_SUCCEEDED;
  std::string out = absl::StrCat("## ", ok ? "✅" : "❌", " ", job.name().empty() ? "assay" : job.name(), " (job ",
                                 job.id(), "): ", StateName(job.state()), "\n\n", report.tests, " steps: ",
                                 report.tests - report.failures - report.skipped, " passed, ", report.failures,
                                 " failed, ", report.skipped, " skipped, ", report.cached, " cached, ", report.flaky,
                                 " flaky\n");
  for (const std::string& cell : report.cells) {
    absl::StrAppend(&out, "\n### ", cell.empty() ? "(no matrix)" : cell, "\n\n");
    absl::StrAppend(&out, "| Step | Result | Time | Cached | Flaky | Emulator | Sizes |\n");
    absl::StrAppend(&out, "|---|---|---:|---|---|---:|---|\n");
    for (const auto& row : report.rows.at(cell)) {
      const Task& t = *row.task;
      std::string result = row.result;
      if (t.state() == assay::v1::TASK_FAILED && !t.message().empty()) {
        absl::StrAppend(&result, ": ", t.message().substr(0, std::min<size_t>(t.message().find('\n'), 200)));
      }
      const std::string run_time = RunTimeText(row);
      if (!run_time.empty()) absl::StrAppend(&result, " ⏱️ run time ", run_time);
      for (const std::string& w : t.warnings()) absl::StrAppend(&result, " ⚠️ ", w);
      absl::StrAppend(&out, "| ", cell_text(t.step()), " | ", cell_text(result), " | ",
                      cell_text(row.duration_ms > 0 ? FormatSeconds(row.duration_ms) : ""), " | ",
                      t.cached() ? "yes" : "no", " | ", cell_text(Flaky(t)), " | ", cell_text(Emulator(row)), " | ",
                      cell_text(Sizes(row)), " |\n");
    }
  }
  return out;
}

}  // namespace assay::cli
