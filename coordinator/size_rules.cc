#include "coordinator/size_rules.h"

#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/base/byte_size.h"
#include "common/task/firmware_size.h"

namespace assay {

using assay::v1::FileSize;

std::vector<FileSize> MeasuredSizes(const build::bazel::remote::execution::v2::ActionResult& result) {
  std::vector<FileSize> out;
  for (const auto& any : result.execution_metadata().auxiliary_metadata()) {
    assay::v1::OutputSizes sizes;
    if (any.Is<assay::v1::OutputSizes>() && any.UnpackTo(&sizes)) out.assign(sizes.files().begin(), sizes.files().end());
  }
  return out;
}

namespace {

struct Measure {
  const char* name;
  int64_t value;
  bool needs_elf;
};

std::vector<Measure> Measures(const FileSize& f) {
  return {{"file", f.file(), false},
          {"text", f.text(), true},
          {"data", f.data(), true},
          {"bss", f.bss(), true},
          {"rom", RomBytes(f), true},
          {"ram", RamBytes(f), true}};
}

int64_t BudgetFor(const assay::v1::SizeBudget& b, const std::string& measure) {
  if (measure == "file") return b.file();
  if (measure == "text") return b.text();
  if (measure == "data") return b.data();
  if (measure == "bss") return b.bss();
  if (measure == "rom") return b.rom();
  return b.ram();
}

}  // namespace

// ELF's e_type of an object file (.o), FileSize.elf_type.
constexpr int kElfRelocatable = 1;

SizeVerdict CheckSizes(const assay::v1::TaskSpec& spec, const build::bazel::remote::execution::v2::ActionResult& result) {
  SizeVerdict v;
  std::map<std::string, FileSize> by_path;
  for (FileSize& f : MeasuredSizes(result)) by_path[f.path()] = std::move(f);
  std::map<std::string, bool> shown;  // paths that go into the task's sizes
  for (const auto& [path, f] : by_path) {
    if (f.elf() && f.elf_type() != kElfRelocatable) shown[path] = true;  // object files only when budgeted
  }
  std::vector<std::string> over;
  for (const auto& budget : spec.size_budgets()) {
    auto it = by_path.find(budget.path());
    if (it == by_path.end()) {
      over.push_back(absl::StrCat(budget.path(), ": no such output file to measure (line ", budget.line(), ")"));
      continue;
    }
    shown[budget.path()] = true;
    for (const Measure& m : Measures(it->second)) {
      const int64_t limit = BudgetFor(budget, m.name);
      if (limit <= 0) continue;
      if (m.needs_elf && !it->second.elf()) {
        over.push_back(absl::StrCat(budget.path(), ": a ", m.name, " budget needs an ELF file"));
      } else if (m.value > limit) {
        over.push_back(absl::StrFormat("%s %s is %d bytes, %d over its budget of %d (%s)", budget.path(), m.name,
                                       m.value, m.value - limit, limit, FormatBytes(limit)));
      }
    }
  }
  if (!over.empty()) v.failure = absl::StrCat("size budget exceeded: ", absl::StrJoin(over, "; "));

  const auto& regression = spec.size_regression();
  std::vector<std::string> fails;
  for (const auto& [path, base] : spec.baseline()) {
    auto it = by_path.find(path);
    if (it == by_path.end()) continue;
    shown[path] = true;
    const std::vector<Measure> now = Measures(it->second);
    const std::vector<Measure> then = Measures(base);
    for (size_t i = 0; i < now.size(); ++i) {
      // ELF files are compared by what the chip holds (ROM, RAM), other files by their size.
      const std::string name = now[i].name;
      const bool elf = it->second.elf() && base.elf();
      if (elf ? (name != "rom" && name != "ram") : name != "file") continue;
      if (then[i].value <= 0) continue;
      const double percent = 100.0 * static_cast<double>(now[i].value - then[i].value) / static_cast<double>(then[i].value);
      const std::string what = absl::StrFormat("%s %s grew %+.2f%% (%d -> %d bytes) against the baseline", path,
                                               now[i].name, percent, then[i].value, now[i].value);
      if (regression.fail_percent() > 0 && percent > regression.fail_percent()) {
        fails.push_back(absl::StrFormat("%s, more than %g%%", what, regression.fail_percent()));
      } else if (regression.warn_percent() > 0 && percent > regression.warn_percent()) {
        v.warnings.push_back(absl::StrFormat("size regression: %s, more than %g%%", what, regression.warn_percent()));
      }
    }
  }
  if (!fails.empty()) {
    absl::StrAppend(&v.failure, v.failure.empty() ? "" : "; ", "size regression: ", absl::StrJoin(fails, "; "));
  }
  for (const auto& [path, yes] : shown) v.sizes.push_back(by_path[path]);
  return v;
}

}  // namespace assay
