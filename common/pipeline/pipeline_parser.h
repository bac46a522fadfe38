// Internal to the pipeline parser (common/pipeline*.cc): the YAML reader with its FILE:LINE:COL
// errors, shared by the parts of the pipeline file in pipeline.cc, pipeline_matrix.cc and
// pipeline_firmware.cc.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/pipeline/pipeline.h"

namespace assay::pipeline_internal {

class Parser {
 public:
  Parser(absl::string_view file, const PipelineLimits& limits) : file_(file), limits_(limits) {}

  absl::StatusOr<Pipeline> Parse(absl::string_view text);

 private:
  absl::Status Error(const YAML::Node& node, absl::string_view message) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(file_, ": ", message));
    return absl::InvalidArgumentError(absl::StrCat(file_, ":", mark.line + 1, ":", mark.column + 1, ": ", message));
  }

  absl::Status CheckKeys(const YAML::Node& map, absl::string_view what, const std::vector<std::string>& allowed) const {
    for (const auto& kv : map) {
      std::string key = kv.first.Scalar();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        return Error(kv.first, absl::StrCat("unknown key '", key, "' in ", what, " (expected one of: ",
                                            absl::StrJoin(allowed, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Scalar(const YAML::Node& node, absl::string_view what) const {
    if (!node.IsScalar()) return Error(node, absl::StrCat(what, " must be a string"));
    return node.Scalar();
  }

  absl::StatusOr<std::vector<std::string>> StringList(const YAML::Node& node, absl::string_view what) const {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(node.Scalar());
      return out;
    }
    if (!node.IsSequence()) return Error(node, absl::StrCat(what, " must be a list of strings"));
    for (const auto& item : node) {
      if (!item.IsScalar()) return Error(item, absl::StrCat(what, " must be a list of strings"));
      out.push_back(item.Scalar());
    }
    return out;
  }

  absl::StatusOr<std::map<std::string, std::string>> StringMap(const YAML::Node& node, absl::string_view what) const {
    std::map<std::string, std::string> out;
    if (!node.IsMap()) return Error(node, absl::StrCat(what, " must be a mapping of names to strings"));
    for (const auto& kv : node) {
      if (!kv.second.IsScalar()) return Error(kv.second, absl::StrCat(what, ".", kv.first.Scalar(), " must be a string"));
      out[kv.first.Scalar()] = kv.second.Scalar();
    }
    return out;
  }

  absl::StatusOr<absl::Duration> Duration(const YAML::Node& node, absl::string_view what) const {
    if (!node.IsScalar()) return Error(node, absl::StrCat(what, " must be a duration like 30s or 5m"));
    const std::string& text = node.Scalar();
    int64_t seconds = 0;
    absl::Duration d;
    if (absl::SimpleAtoi(text, &seconds)) {
      d = absl::Seconds(seconds);
    } else if (!absl::ParseDuration(text, &d)) {
      return Error(node, absl::StrCat(what, " '", text, "' is not a duration like 30s, 5m or 1h30m"));
    }
    if (d <= absl::ZeroDuration()) return Error(node, absl::StrCat(what, " must be positive"));
    if (d > absl::Hours(24)) return Error(node, absl::StrCat(what, " must be at most 24h"));
    return d;
  }

  absl::StatusOr<bool> Bool(const YAML::Node& node, absl::string_view what) const {
    std::string v = node.IsScalar() ? absl::AsciiStrToLower(node.Scalar()) : "";
    if (v == "true" || v == "yes" || v == "on") return true;
    if (v == "false" || v == "no" || v == "off") return false;
    return Error(node, absl::StrCat(what, " must be true or false"));
  }

  // The pipeline's top-level settings: max_parallel, fail_fast, size_regression, output limit, image, name,
  // env, caches, notify.
  absl::Status ParseSettings(const YAML::Node& root, Pipeline* pipeline) const;
  // Every expression must resolve in every cell, and every kernel must check out.
  absl::Status CheckCells(const Pipeline& pipeline) const;

  // The matrix (pipeline_matrix.cc): its axes, their cross product, then exclude and include.
  absl::Status ParseMatrix(const YAML::Node& node, Pipeline* pipeline) const;
  absl::Status ParseMatrixAxes(const YAML::Node& node, Pipeline* pipeline,
                               std::vector<std::vector<std::string>>* values, YAML::Node* include,
                               YAML::Node* exclude) const;
  absl::StatusOr<std::vector<MatrixCell>> MatrixProduct(const YAML::Node& node, const Pipeline& pipeline,
                                                        const std::vector<std::vector<std::string>>& values) const;
  absl::StatusOr<std::vector<MatrixCell>> ParseMatrixEntries(const YAML::Node& list, absl::string_view what) const;
  absl::Status ApplyMatrixExclude(const YAML::Node& exclude, const Pipeline& pipeline,
                                  std::vector<MatrixCell>* cells) const;
  absl::Status ApplyMatrixInclude(const YAML::Node& include, const Pipeline& pipeline,
                                  std::vector<MatrixCell>* cells) const;

  absl::StatusOr<Step> ParseStep(const YAML::Node& node, size_t index, const std::set<std::string>& earlier) const;
  // The parts of a step, in the order ParseStep reads them; `where` is "step 'ID'".
  absl::Status ParseStepCommand(const YAML::Node& node, const std::string& where, Step* step) const;
  absl::Status ParseStepFiles(const YAML::Node& node, const std::string& where, const std::set<std::string>& earlier,
                              Step* step) const;
  absl::Status ParseStepOptions(const YAML::Node& node, const std::string& where, Step* step) const;
  absl::Status ParseStepRetry(const YAML::Node& node, const std::string& where, Step* step) const;
  absl::Status ParseStepLimits(const YAML::Node& node, const std::string& where, Step* step) const;
  absl::StatusOr<QemuStep> ParseQemu(const YAML::Node& node, const std::string& step) const;
  absl::Status CheckPatterns(const YAML::Node& node, const std::string& where, const QemuStep& qemu) const;
  absl::StatusOr<std::vector<SizeBudget>> ParseBudgets(const YAML::Node& node, const std::string& where) const;
  absl::Status ParseSizeRegression(const YAML::Node& node, Pipeline* pipeline) const;
  // `time_regression` (pipeline_time.cc), read once the steps are known: its `steps` must name them.
  absl::Status ParseTimeRegression(const YAML::Node& node, Pipeline* pipeline) const;
  // limits.cpus, limits.memory, limits.pids of a step.
  absl::Status ParseResourceLimits(const YAML::Node& limits, const std::string& where, Step* step) const;
  // `output_limit` and `output_limit_fails` of a step or of the pipeline (pipeline_output.cc).
  absl::Status ParseOutputLimit(const YAML::Node& node, const std::string& where, int64_t* limit, bool* fails) const;
  // A step's output limit: its own, else the pipeline's, else the coordinator's default.
  void ResolveOutputLimit(const YAML::Node& node, const Pipeline& pipeline, Step* step) const;
  // `caches:` of a step or of the pipeline (pipeline_caches.cc); `cache:` given a list is refused there.
  absl::StatusOr<std::vector<StepCache>> ParseCaches(const YAML::Node& node, const std::string& where) const;
  absl::Status ParseStepCaches(const YAML::Node& node, const std::string& where, Step* step) const;
  // `notify:` of the pipeline (pipeline_notify.cc): the target names are checked at submit, against the
  // coordinator's configuration.
  absl::StatusOr<std::vector<NotifySpec>> ParseNotify(const YAML::Node& node) const;
  absl::Status CheckKernels(const Pipeline& pipeline, const MatrixCell& cell,
                            const std::map<std::string, Step>& expanded) const;

  std::string file_;
  PipelineLimits limits_;
};

// A step id or matrix name: 1 to 64 letters, digits, '-' or '_'.
bool ValidId(absl::string_view id);
// 'text' for a POSIX shell, left bare when it is plainly safe: the command line shown for a qemu step.
std::string ShellQuote(const std::string& text);
// The system is run by name from the worker's PATH: a bare program name, never a path.
absl::Status CheckEmulatorName(const std::string& system);

// `${{ ... }}` hidden from the YAML reader (expression_shield.cc): each becomes a placeholder of its
// length, listed in `expressions`; UnshieldExpressions puts them back in every scalar of the tree.
std::string ShieldExpressions(absl::string_view text, std::vector<std::string>* expressions);
void UnshieldExpressions(YAML::Node node, const std::vector<std::string>& expressions);

// ExpandExpressions, with hashFiles() when `hash_files` is not null.
absl::StatusOr<std::string> Expand(absl::string_view text, const MatrixCell& cell, absl::string_view pipeline_name,
                                   const HashFilesFn* hash_files);
// A step's caches expanded for one cell, each key and path checked (pipeline_caches.cc).
absl::Status ExpandCaches(const Pipeline& pipeline, const MatrixCell& cell, absl::string_view file_name,
                          const HashFilesFn* hash_files, Step* step);

}  // namespace assay::pipeline_internal
