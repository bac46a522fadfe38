#include "coordinator/baseline.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/task/task_states.h"

namespace assay {

absl::StatusOr<BaselineSizes> ParseBaselineFile(absl::string_view text, absl::string_view file_name) {
  auto fail = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ": not a size baseline: ", what));
  };
  nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return fail("invalid JSON");
  if (!doc.is_object() || !doc.contains("sizes") || !doc["sizes"].is_object()) {
    return fail("no \"sizes\" object (write one with `assay report JOB --json FILE`)");
  }
  BaselineSizes out;
  for (const auto& [task, paths] : doc["sizes"].items()) {
    if (!paths.is_object()) return fail(absl::StrCat("sizes.\"", task, "\" must be an object of paths"));
    for (const auto& [path, size] : paths.items()) {
      if (!size.is_object()) return fail(absl::StrCat("sizes.\"", task, "\".\"", path, "\" must be an object"));
      assay::v1::FileSize f;
      f.set_path(path);
      for (const auto& [key, value] : size.items()) {
        if (!value.is_number_integer() || value.get<int64_t>() < 0) {
          return fail(absl::StrCat("sizes.\"", task, "\".\"", path, "\".", key, " must be a whole number of bytes"));
        }
        const int64_t n = value.get<int64_t>();
        if (key == "file") {
          f.set_file(n);
        } else if (key == "text" || key == "data" || key == "bss") {
          f.set_elf(true);
          if (key == "text") f.set_text(n);
          if (key == "data") f.set_data(n);
          if (key == "bss") f.set_bss(n);
        } else if (key != "rom" && key != "ram") {  // derived; accepted as a report writes them
          return fail(absl::StrCat("sizes.\"", task, "\".\"", path, "\": unknown key '", key,
                                   "' (expected file, text, data, bss, rom, ram)"));
        }
      }
      out[task][path] = f;
    }
  }
  return out;
}

BaselineSizes BaselineFromJob(const assay::v1::Job& job) {
  BaselineSizes out;
  for (const auto& task : job.tasks()) {
    for (const auto& size : task.sizes()) out[task.id()][size.path()] = size;
  }
  return out;
}

const assay::v1::Job* FindBaselineJob(const std::vector<assay::v1::Job>& jobs, const std::string& name,
                                      const std::string& branch) {
  for (const auto& job : jobs) {
    if (job.state() != assay::v1::JOB_SUCCEEDED || job.name() != name) continue;
    if (BranchOf(job) == branch) return &job;
  }
  return nullptr;
}

}  // namespace assay
