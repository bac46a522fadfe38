// `time_regression` of a pipeline file: which steps' run times are checked, against how many earlier
// runs, and the percentages that warn and fail (docs/pipeline.md, "Time regressions").
#include "common/pipeline/pipeline_parser.h"

namespace assay::pipeline_internal {

absl::Status Parser::ParseTimeRegression(const YAML::Node& node, Pipeline* pipeline) const {
  if (!node.IsMap()) {
    return Error(node, "time_regression must be a mapping like {warn: 25%, fail: 100%, steps: [test], runs: 5}");
  }
  if (absl::Status s = CheckKeys(node, "time_regression", {"warn", "fail", "steps", "runs"}); !s.ok()) return s;
  TimeRegression& rule = pipeline->time_regression;
  for (const auto& [key, field] : {std::pair{"warn", &rule.warn_percent}, std::pair{"fail", &rule.fail_percent}}) {
    if (!node[key]) continue;
    auto p = node[key].IsScalar() ? ParsePercent(node[key].Scalar()) : absl::InvalidArgumentError("must be a percentage");
    if (!p.ok()) return Error(node[key], absl::StrCat("time_regression.", key, ": ", p.status().message()));
    *field = *p;
  }
  if (rule.warn_percent <= 0 && rule.fail_percent <= 0) {
    return Error(node, "time_regression needs a 'warn' or a 'fail' percentage above 0, like {warn: 25%, fail: 100%}");
  }
  if (const YAML::Node runs = node["runs"]) {
    int n = 0;
    if (!runs.IsScalar() || !absl::SimpleAtoi(runs.Scalar(), &n) || n < 1 || n > kMaxTimeRegressionRuns) {
      return Error(runs, absl::StrCat("time_regression.runs must be a whole number of earlier runs from 1 to ",
                                      kMaxTimeRegressionRuns, ", like 5"));
    }
    rule.runs = n;
  }
  if (const YAML::Node steps = node["steps"]) {
    auto ids = StringList(steps, "time_regression.steps");
    if (!ids.ok()) return ids.status();
    std::vector<std::string> known;
    for (const Step& step : pipeline->steps) known.push_back(step.id);
    for (size_t i = 0; i < ids->size(); ++i) {
      const std::string& id = (*ids)[i];
      if (std::find(known.begin(), known.end(), id) != known.end()) continue;
      return Error(steps.IsSequence() ? steps[i] : steps,
                   absl::StrCat("time_regression.steps: '", id, "' is not a step of this pipeline (its steps: ",
                                absl::StrJoin(known, ", "), ")"));
    }
    if (ids->empty()) return Error(steps, "time_regression.steps is empty: leave it out to time every step");
    rule.steps = std::move(*ids);
  }
  rule.enabled = true;
  return absl::OkStatus();
}

}  // namespace assay::pipeline_internal
