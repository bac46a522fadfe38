#include "common/pipeline/pipeline.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/base/file_util.h"
#include "common/pipeline/line_pattern.h"
#include "common/pipeline/pipeline_parser.h"

namespace assay {
namespace pipeline_internal {

bool ValidId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

absl::StatusOr<Pipeline> Parser::Parse(absl::string_view text) {
  YAML::Node root;
  std::vector<std::string> expressions;
  try {
    root = YAML::Load(ShieldExpressions(text, &expressions));
    UnshieldExpressions(root, expressions);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(file_, ": invalid YAML: ", e.msg));
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(file_, ": a pipeline must be a mapping with 'steps'"));

  try {
    Pipeline pipeline;
    if (absl::Status s = CheckKeys(root, "pipeline",
                                   {"name", "env", "matrix", "steps", "size_regression", "max_parallel", "fail_fast",
                                    "image", "output_limit", "output_limit_fails", "caches", "notify",
                                    "time_regression"});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ParseSettings(root, &pipeline); !s.ok()) return s;
    if (root["matrix"]) {
      if (absl::Status s = ParseMatrix(root["matrix"], &pipeline); !s.ok()) return s;
    } else {
      pipeline.cells.emplace_back();
    }
    const YAML::Node steps = root["steps"];
    if (!steps) return absl::InvalidArgumentError(absl::StrCat(file_, ": the pipeline has no 'steps'"));
    if (!steps.IsSequence() || steps.size() == 0) return Error(steps, "steps must be a non-empty list");
    if (static_cast<int>(steps.size()) > limits_.max_steps) {
      return Error(steps, absl::StrCat("the pipeline has ", steps.size(), " steps, more than the limit of ",
                                       limits_.max_steps));
    }
    std::set<std::string> ids;
    for (size_t i = 0; i < steps.size(); ++i) {
      auto step = ParseStep(steps[i], i, ids);
      if (!step.ok()) return step.status();
      ResolveOutputLimit(steps[i], pipeline, &*step);
      if (!steps[i]["caches"] && !step->qemu) step->caches = pipeline.caches;
      ids.insert(step->id);
      pipeline.steps.push_back(std::move(*step));
    }
    if (root["time_regression"]) {
      if (absl::Status s = ParseTimeRegression(root["time_regression"], &pipeline); !s.ok()) return s;
    }
    if (absl::Status s = CheckCells(pipeline); !s.ok()) return s;
    return pipeline;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

absl::Status Parser::ParseSettings(const YAML::Node& root, Pipeline* pipeline) const {
  if (root["max_parallel"]) {
    int n = -1;
    if (!root["max_parallel"].IsScalar() || !absl::SimpleAtoi(root["max_parallel"].Scalar(), &n) || n < 1 || n > 100000) {
      return Error(root["max_parallel"], "max_parallel must be a whole number of tasks, at least 1");
    }
    pipeline->max_parallel = n;
  }
  if (root["fail_fast"]) {
    auto b = Bool(root["fail_fast"], "fail_fast");
    if (!b.ok()) return b.status();
    pipeline->fail_fast = *b;
  }
  if (root["size_regression"]) {
    if (absl::Status s = ParseSizeRegression(root["size_regression"], pipeline); !s.ok()) return s;
  }
  if (absl::Status s = ParseOutputLimit(root, "pipeline", &pipeline->output_limit, &pipeline->output_limit_fails);
      !s.ok()) {
    return s;
  }
  if (root["image"]) {
    auto image = Scalar(root["image"], "image");
    if (!image.ok()) return image.status();
    pipeline->image = *image;
  }
  if (root["name"]) {
    auto name = Scalar(root["name"], "name");
    if (!name.ok()) return name.status();
    pipeline->name = *name;
  }
  if (root["env"]) {
    auto env = StringMap(root["env"], "env");
    if (!env.ok()) return env.status();
    pipeline->env = *env;
  }
  if (root["caches"]) {
    auto caches = ParseCaches(root["caches"], "caches");
    if (!caches.ok()) return caches.status();
    pipeline->caches = std::move(*caches);
  }
  if (root["notify"]) {
    auto notify = ParseNotify(root["notify"]);
    if (!notify.ok()) return notify.status();
    pipeline->notify = std::move(*notify);
  }
  return absl::OkStatus();
}

absl::Status Parser::CheckCells(const Pipeline& pipeline) const {
  // Every expression must resolve in every cell; report the first that does not.
  for (const MatrixCell& cell : pipeline.cells) {
    std::map<std::string, Step> expanded_steps;
    for (const Step& step : pipeline.steps) {
      auto expanded = ExpandStep(pipeline, step, cell, file_);
      if (!expanded.ok()) return expanded.status();
      expanded_steps.emplace(step.id, std::move(*expanded));
    }
    if (absl::Status s = CheckKernels(pipeline, cell, expanded_steps); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Step> Parser::ParseStep(const YAML::Node& node, size_t index, const std::set<std::string>& earlier) const {
  std::string where = absl::StrCat("steps[", index, "]");
  if (!node.IsMap()) return Error(node, absl::StrCat(where, " must be a mapping with id and run"));
  if (absl::Status s = CheckKeys(node, where,
                                 {"id", "name", "run", "qemu", "needs", "inputs", "outputs", "env", "timeout", "requires",
                                  "cache", "cache_failures", "retry", "limits", "image", "network", "user",
                                  "output_limit", "output_limit_fails", "caches"});
      !s.ok()) {
    return s;
  }
  Step step;
  step.line = node.Mark().line + 1;
  if (!node["id"]) return Error(node, absl::StrCat(where, " has no 'id'"));
  auto id = Scalar(node["id"], absl::StrCat(where, ".id"));
  if (!id.ok()) return id.status();
  if (!ValidId(*id)) return Error(node["id"], absl::StrCat("step id '", *id, "' must be letters, digits, - or _"));
  if (earlier.contains(*id)) return Error(node["id"], absl::StrCat("step id '", *id, "' is used twice"));
  step.id = *id;
  where = absl::StrCat("step '", step.id, "'");
  if (absl::Status s = ParseStepCommand(node, where, &step); !s.ok()) return s;
  if (absl::Status s = ParseStepFiles(node, where, earlier, &step); !s.ok()) return s;
  if (absl::Status s = ParseStepCaches(node, where, &step); !s.ok()) return s;  // before `cache` (ParseStepOptions)
  if (absl::Status s = ParseStepOptions(node, where, &step); !s.ok()) return s;
  if (absl::Status s = ParseStepRetry(node, where, &step); !s.ok()) return s;
  if (absl::Status s = ParseStepLimits(node, where, &step); !s.ok()) return s;
  return step;
}

// `run`, or `qemu` for an emulator run: exactly one of them.
absl::Status Parser::ParseStepCommand(const YAML::Node& node, const std::string& where, Step* step) const {
  if (node["run"] && node["qemu"]) return Error(node["qemu"], absl::StrCat(where, " has both 'run' and 'qemu': choose one"));
  if (node["qemu"]) {
    auto qemu = ParseQemu(node["qemu"], where);
    if (!qemu.ok()) return qemu.status();
    step->qemu = std::move(*qemu);
    step->timeout = absl::Seconds(30);  // an emulator run's default; `timeout` below (or qemu.timeout) wins
    if (node["qemu"]["timeout"]) {
      auto t = Duration(node["qemu"]["timeout"], absl::StrCat(where, ".qemu.timeout"));
      if (!t.ok()) return t.status();
      step->timeout = *t;
    }
  } else {
    if (!node["run"]) return Error(node, absl::StrCat(where, " has no 'run' command (or 'qemu' emulator run)"));
    auto run = Scalar(node["run"], absl::StrCat(where, ".run"));
    if (!run.ok()) return run.status();
    if (absl::StripAsciiWhitespace(*run).empty()) return Error(node["run"], absl::StrCat(where, ".run is empty"));
    step->run = *run;
  }
  return absl::OkStatus();
}

// `needs` (earlier steps only), `outputs` and `inputs` (relative paths).
absl::Status Parser::ParseStepFiles(const YAML::Node& node, const std::string& where,
                                    const std::set<std::string>& earlier, Step* step) const {
  if (node["needs"]) {
    auto needs = StringList(node["needs"], absl::StrCat(where, ".needs"));
    if (!needs.ok()) return needs.status();
    for (const std::string& need : *needs) {
      if (!earlier.contains(need)) {
        return Error(node["needs"], absl::StrCat(where, " needs '", need,
                                                 need == step->id ? "', itself" : "', which is not an earlier step"));
      }
    }
    step->needs = *needs;
  }
  if (node["outputs"]) {
    auto outputs = StringList(node["outputs"], absl::StrCat(where, ".outputs"));
    if (!outputs.ok()) return outputs.status();
    for (const std::string& out : *outputs) {
      if (absl::Status s = CheckRelativePath(out, absl::StrCat(where, " output")); !s.ok()) {
        return Error(node["outputs"], s.message());
      }
    }
    step->outputs = *outputs;
  }
  if (node["inputs"]) {
    auto inputs = StringList(node["inputs"], absl::StrCat(where, ".inputs"));
    if (!inputs.ok()) return inputs.status();
    for (const std::string& in : *inputs) {
      if (absl::Status s = CheckRelativePath(in, absl::StrCat(where, " input")); !s.ok()) {
        return Error(node["inputs"], s.message());
      }
    }
    step->inputs = *inputs;
  }
  return absl::OkStatus();
}

// The optional fields of a step (image, network, user, output limit, env, timeout, requires, caching):
// parse when present, keep the default otherwise.
absl::Status Parser::ParseStepOptions(const YAML::Node& node, const std::string& where, Step* step) const {
  auto field = [&](const char* key, auto parse, auto* out) -> absl::Status {
    if (!node[key]) return absl::OkStatus();
    auto value = parse(node[key], absl::StrCat(where, ".", key));
    if (!value.ok()) return value.status();
    *out = std::move(*value);
    return absl::OkStatus();
  };
  auto string_map = [this](const YAML::Node& n, const std::string& w) { return StringMap(n, w); };
  auto duration = [this](const YAML::Node& n, const std::string& w) { return Duration(n, w); };
  auto string_list = [this](const YAML::Node& n, const std::string& w) { return StringList(n, w); };
  auto boolean = [this](const YAML::Node& n, const std::string& w) { return Bool(n, w); };
  auto scalar = [this](const YAML::Node& n, const std::string& w) { return Scalar(n, w); };
  for (absl::Status s : {field("image", scalar, &step->image), field("network", boolean, &step->network),
                         field("user", scalar, &step->user),
                         ParseOutputLimit(node, where, &step->output_limit, &step->output_limit_fails)}) {
    if (!s.ok()) return s;
  }
  for (absl::Status s : {field("env", string_map, &step->env), field("timeout", duration, &step->timeout),
                         field("requires", string_list, &step->requires_labels), field("cache", boolean, &step->cache),
                         field("cache_failures", boolean, &step->cache_failures)}) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// `retry: N`, or `retry: {max: N, when: [timeout, exit_code]}`.
absl::Status Parser::ParseStepRetry(const YAML::Node& node, const std::string& where, Step* step) const {
  if (!node["retry"]) return absl::OkStatus();
  const YAML::Node retry_node = node["retry"];
  // (yaml-cpp's Node assignment writes through to the node: pick `max` once, never reassign it.)
  const YAML::Node max = retry_node.IsMap() ? retry_node["max"] : retry_node;
  if (retry_node.IsMap()) {
    if (absl::Status s = CheckKeys(retry_node, absl::StrCat(where, ".retry"), {"max", "when"}); !s.ok()) return s;
    if (!max) return Error(retry_node, absl::StrCat(where, ".retry has no 'max'"));
    if (retry_node["when"]) {
      auto when = StringList(retry_node["when"], absl::StrCat(where, ".retry.when"));
      if (!when.ok()) return when.status();
      for (const std::string& w : *when) {
        if (w != "timeout" && w != "exit_code") {
          return Error(retry_node["when"], absl::StrCat(where, ".retry.when: '", w, "' is not timeout or exit_code"));
        }
      }
      step->retry_when = *when;
    }
  }
  int retry = -1;
  if (!max.IsScalar() || !absl::SimpleAtoi(max.Scalar(), &retry) || retry < 0 || retry > 10) {
    return Error(max, absl::StrCat(where, ".retry must be a whole number from 0 to 10"));
  }
  step->retry = retry;
  return absl::OkStatus();
}

// `limits`: resources (cpus, memory, pids) and size budgets of the step's outputs.
absl::Status Parser::ParseStepLimits(const YAML::Node& node, const std::string& where, Step* step) const {
  if (!node["limits"]) return absl::OkStatus();
  const YAML::Node limits = node["limits"];
  if (!limits.IsMap()) {
    return Error(limits, absl::StrCat(where, ".limits must be a mapping like {memory: 512MiB, size: {PATH: 32KiB}}"));
  }
  if (absl::Status s = CheckKeys(limits, absl::StrCat(where, ".limits"), {"size", "cpus", "memory", "pids"}); !s.ok()) {
    return s;
  }
  if (absl::Status s = ParseResourceLimits(limits, where, step); !s.ok()) return s;
  if (limits["size"]) {
    auto budgets = ParseBudgets(limits["size"], absl::StrCat(where, ".limits.size"));
    if (!budgets.ok()) return budgets.status();
    step->size_budgets = std::move(*budgets);
  }
  return absl::OkStatus();
}

}  // namespace pipeline_internal

absl::StatusOr<Pipeline> ParsePipeline(absl::string_view text, absl::string_view file_name, const PipelineLimits& limits) {
  return pipeline_internal::Parser(file_name, limits).Parse(text);
}

namespace {
// A cell name segment is used in task ids and artifact paths: never empty, ".", ".." or with '/'.
// An image reference as Docker and Podman take it: [registry/]name[:tag][@digest], no spaces, no
// leading '-' (it would be read as an option), at most 512 characters.
absl::Status CheckImageReference(const std::string& image) {
  static const std::regex kReference(R"([A-Za-z0-9][A-Za-z0-9._/:@+-]*)");
  if (image.size() > 512 || !std::regex_match(image, kReference)) {
    return absl::InvalidArgumentError(absl::StrCat("'", image, "' is not an image reference like debian:12 or "
                                                   "registry.example/toolchain@sha256:..."));
  }
  return absl::OkStatus();
}

std::string SafeSegment(const std::string& value) {
  std::string out = absl::StrReplaceAll(value, {{"/", "_"}, {std::string(1, '\0'), "_"}});
  if (out.empty() || out == "." || out == "..") out = absl::StrCat("_", out, "_");
  return out;
}
}  // namespace

std::string CellName(const Pipeline& pipeline, const MatrixCell& cell) {
  std::vector<std::string> parts;
  for (const std::string& axis : pipeline.axes) {
    for (const auto& [k, v] : cell) {
      if (k == axis) parts.push_back(SafeSegment(v));
    }
  }
  if (parts.empty()) {
    for (const auto& [k, v] : cell) parts.push_back(SafeSegment(v));
  }
  return absl::StrJoin(parts, "/");
}

absl::StatusOr<std::string> ExpandExpressions(absl::string_view text, const MatrixCell& cell,
                                              absl::string_view pipeline_name) {
  return pipeline_internal::Expand(text, cell, pipeline_name, nullptr);
}

absl::StatusOr<std::string> ExpandExpressions(absl::string_view text, const MatrixCell& cell,
                                              absl::string_view pipeline_name, const HashFilesFn& hash_files) {
  return pipeline_internal::Expand(text, cell, pipeline_name, &hash_files);
}

absl::StatusOr<std::string> pipeline_internal::Expand(absl::string_view text, const MatrixCell& cell,
                                                      absl::string_view pipeline_name, const HashFilesFn* hash_files) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t open = text.find("${{", pos);
    if (open == absl::string_view::npos) break;
    size_t close = text.find("}}", open + 3);
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("unterminated expression '", text.substr(open, 40), "'"));
    }
    absl::StrAppend(&out, text.substr(pos, open - pos));
    absl::string_view expr = absl::StripAsciiWhitespace(text.substr(open + 3, close - open - 3));
    if (absl::ConsumePrefix(&expr, "matrix.")) {
      const std::string* value = nullptr;
      for (const auto& [k, v] : cell) {
        if (k == expr) value = &v;
      }
      if (value == nullptr) {
        std::vector<std::string> known;
        for (const auto& [k, v] : cell) known.push_back(k);
        return absl::InvalidArgumentError(absl::StrCat("unknown matrix variable '", expr, "' (this cell has: ",
                                                       known.empty() ? "none" : absl::StrJoin(known, ", "), ")"));
      }
      out.append(*value);
    } else if (expr == "pipeline.name") {
      absl::StrAppend(&out, pipeline_name);
    } else if (absl::ConsumePrefix(&expr, "hashFiles(") && absl::ConsumeSuffix(&expr, ")")) {
      if (hash_files == nullptr) {
        return absl::InvalidArgumentError("hashFiles() is allowed only in a cache's key and restore_keys");
      }
      auto patterns = ParseHashFilesArguments(expr);
      if (!patterns.ok()) return patterns.status();
      auto hash = (*hash_files)(*patterns);
      if (!hash.ok()) return hash.status();
      absl::StrAppend(&out, *hash);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown expression '${{ ", expr,
                                                     " }}' (use matrix.NAME, pipeline.name or, in cache keys, "
                                                     "hashFiles('PATTERN', ...))"));
    }
    pos = close + 2;
  }
  absl::StrAppend(&out, text.substr(pos));
  return out;
}

absl::StatusOr<Step> ExpandStep(const Pipeline& pipeline, const Step& step, const MatrixCell& cell,
                                absl::string_view file_name, const HashFilesFn* hash_files) {
  auto fail = [&](const absl::Status& s, absl::string_view field) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ":", step.line, ": step '", step.id, "' ", field, ": ",
                                                   s.message()));
  };
  Step out = step;
  if (out.image.empty()) out.image = pipeline.image;
  if (!out.image.empty()) {
    auto image = ExpandExpressions(out.image, cell, pipeline.name);
    if (!image.ok()) return fail(image.status(), "image");
    if (absl::Status s = CheckImageReference(*image); !s.ok()) return fail(s, "image");
    out.image = *image;
  } else if (out.network || !out.user.empty()) {
    return fail(absl::InvalidArgumentError("network and user apply to steps with an image"),
                out.network ? "network" : "user");
  }
  auto run = ExpandExpressions(step.run, cell, pipeline.name);
  if (!run.ok()) return fail(run.status(), "run");
  out.run = *run;
  for (auto& [k, v] : out.env) {
    auto value = ExpandExpressions(v, cell, pipeline.name);
    if (!value.ok()) return fail(value.status(), absl::StrCat("env.", k));
    v = *value;
  }
  for (std::string& o : out.outputs) {
    auto value = ExpandExpressions(o, cell, pipeline.name);
    if (!value.ok()) return fail(value.status(), "outputs");
    if (absl::Status s = CheckRelativePath(*value, "output"); !s.ok()) return fail(s, "outputs");
    o = *value;
  }
  for (std::string& in : out.inputs) {
    auto value = ExpandExpressions(in, cell, pipeline.name);
    if (!value.ok()) return fail(value.status(), "inputs");
    if (absl::Status s = CheckRelativePath(*value, "input"); !s.ok()) return fail(s, "inputs");
    in = *value;
  }
  if (absl::Status s = pipeline_internal::ExpandCaches(pipeline, cell, file_name, hash_files, &out); !s.ok()) return s;
  for (std::string& r : out.requires_labels) {
    auto value = ExpandExpressions(r, cell, pipeline.name);
    if (!value.ok()) return fail(value.status(), "requires");
    r = *value;
  }
  for (SizeBudget& b : out.size_budgets) {
    auto value = ExpandExpressions(b.path, cell, pipeline.name);
    if (!value.ok()) return fail(value.status(), "limits.size");
    if (absl::Status s = CheckRelativePath(*value, "size budget path"); !s.ok()) return fail(s, "limits.size");
    b.path = *value;
  }
  if (out.qemu) {
    QemuStep& q = *out.qemu;
    for (auto [field, value] : {std::pair{"qemu.system", &q.system}, std::pair{"qemu.machine", &q.machine},
                                std::pair{"qemu.cpu", &q.cpu}, std::pair{"qemu.kernel", &q.kernel}}) {
      auto expanded = ExpandExpressions(*value, cell, pipeline.name);
      if (!expanded.ok()) return fail(expanded.status(), field);
      *value = *expanded;
    }
    if (absl::Status s = pipeline_internal::CheckEmulatorName(q.system); !s.ok()) return fail(s, "qemu.system");
    if (absl::Status s = CheckRelativePath(q.kernel, "kernel"); !s.ok()) return fail(s, "qemu.kernel");
    for (auto [field, list] : {std::pair{"qemu.args", &q.args}, std::pair{"qemu.expect", &q.expect},
                               std::pair{"qemu.fail_on", &q.fail_on}}) {
      for (std::string& item : *list) {
        auto expanded = ExpandExpressions(item, cell, pipeline.name);
        if (!expanded.ok()) return fail(expanded.status(), field);
        // A literal pattern was checked where it is written (ParseQemu); an expanded one is checked here.
        const bool changed = *expanded != item;
        item = *expanded;
        if (list == &q.args || !changed) continue;
        if (auto pattern = LinePattern::Compile(item); !pattern.ok()) return fail(pattern.status(), field);
      }
    }
    std::vector<std::string> quoted;
    for (const std::string& arg : QemuCommandLine(q)) quoted.push_back(pipeline_internal::ShellQuote(arg));
    out.run = absl::StrJoin(quoted, " ");
  }
  return out;
}

}  // namespace assay
