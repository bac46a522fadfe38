#include "common/pipeline.h"

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
#include "common/file_util.h"

namespace assay {
namespace {

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

  absl::Status ParseMatrix(const YAML::Node& node, Pipeline* pipeline) const;
  absl::StatusOr<Step> ParseStep(const YAML::Node& node, size_t index, const std::set<std::string>& earlier) const;
  absl::StatusOr<QemuStep> ParseQemu(const YAML::Node& node, const std::string& step) const;
  absl::StatusOr<std::vector<SizeBudget>> ParseBudgets(const YAML::Node& node, const std::string& where) const;
  absl::Status ParseSizeRegression(const YAML::Node& node, Pipeline* pipeline) const;
  absl::Status CheckKernels(const Pipeline& pipeline, const MatrixCell& cell,
                            const std::map<std::string, Step>& expanded) const;

  std::string file_;
  PipelineLimits limits_;
};

// 'text' for a POSIX shell, left bare when it is plainly safe: the command line shown for a qemu step.
std::string ShellQuote(const std::string& text) {
  const bool plain = !text.empty() && std::all_of(text.begin(), text.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || std::string_view("-_./=,:+@%").find(c) != std::string_view::npos;
  });
  if (plain) return text;
  return absl::StrCat("'", absl::StrReplaceAll(text, {{"'", "'\\''"}}), "'");
}

// The system is run by name from the worker's PATH: a bare program name, never a path.
absl::Status CheckEmulatorName(const std::string& system) {
  const bool plain = std::all_of(system.begin(), system.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
  if (!plain || !absl::StartsWith(system, "qemu-system-") || system.size() == 12) {
    return absl::InvalidArgumentError(absl::StrCat(
        "qemu.system '", system, "' must name an emulator like qemu-system-arm or qemu-system-riscv32"));
  }
  return absl::OkStatus();
}

bool ValidId(absl::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
}

absl::StatusOr<Pipeline> Parser::Parse(absl::string_view text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) return absl::InvalidArgumentError(absl::StrCat(file_, ": invalid YAML: ", e.msg));
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", e.mark.line + 1, ":", e.mark.column + 1, ": invalid YAML: ", e.msg));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError(absl::StrCat(file_, ": a pipeline must be a mapping with 'steps'"));

  try {
    Pipeline pipeline;
    if (absl::Status s = CheckKeys(root, "pipeline",
                                   {"name", "env", "matrix", "steps", "size_regression", "max_parallel", "fail_fast"});
        !s.ok()) {
      return s;
    }
    if (root["max_parallel"]) {
      int n = -1;
      if (!root["max_parallel"].IsScalar() || !absl::SimpleAtoi(root["max_parallel"].Scalar(), &n) || n < 1 || n > 100000) {
        return Error(root["max_parallel"], "max_parallel must be a whole number of tasks, at least 1");
      }
      pipeline.max_parallel = n;
    }
    if (root["fail_fast"]) {
      auto b = Bool(root["fail_fast"], "fail_fast");
      if (!b.ok()) return b.status();
      pipeline.fail_fast = *b;
    }
    if (root["size_regression"]) {
      if (absl::Status s = ParseSizeRegression(root["size_regression"], &pipeline); !s.ok()) return s;
    }
    if (root["name"]) {
      auto name = Scalar(root["name"], "name");
      if (!name.ok()) return name.status();
      pipeline.name = *name;
    }
    if (root["env"]) {
      auto env = StringMap(root["env"], "env");
      if (!env.ok()) return env.status();
      pipeline.env = *env;
    }
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
      ids.insert(step->id);
      pipeline.steps.push_back(std::move(*step));
    }
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
    return pipeline;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file_, ":", e.mark.line + 1, ":", e.mark.column + 1, ": ", e.msg));
  }
}

absl::Status Parser::ParseMatrix(const YAML::Node& node, Pipeline* pipeline) const {
  if (!node.IsMap()) return Error(node, "matrix must be a mapping of axis names to lists of values");
  std::vector<std::vector<std::string>> values;
  YAML::Node include, exclude;
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    if (key == "include") {
      include = kv.second;
      continue;
    }
    if (key == "exclude") {
      exclude = kv.second;
      continue;
    }
    if (!ValidId(key)) return Error(kv.first, absl::StrCat("matrix axis name '", key, "' must be letters, digits, - or _"));
    if (!kv.second.IsSequence() || kv.second.size() == 0) {
      return Error(kv.second, absl::StrCat("matrix.", key, " must be a non-empty list of values"));
    }
    std::vector<std::string> axis;
    for (const auto& v : kv.second) {
      if (!v.IsScalar()) return Error(v, absl::StrCat("matrix.", key, " values must be strings or numbers"));
      axis.push_back(v.Scalar());
    }
    pipeline->axes.push_back(key);
    values.push_back(std::move(axis));
  }

  // The cross product, counted first so a huge matrix is refused before it is built.
  double product = pipeline->axes.empty() ? 0 : 1;
  for (const auto& axis : values) product *= static_cast<double>(axis.size());
  if (product > limits_.max_cells) {
    return Error(node, absl::StrCat("the matrix has ", static_cast<int64_t>(product), " cells, more than the limit of ",
                                    limits_.max_cells, " (coordinator flag --max-matrix-cells)"));
  }
  std::vector<MatrixCell> cells;
  if (!pipeline->axes.empty()) cells.emplace_back();
  for (size_t a = 0; a < values.size(); ++a) {
    std::vector<MatrixCell> next;
    for (const MatrixCell& partial : cells) {
      for (const std::string& v : values[a]) {
        MatrixCell cell = partial;
        cell.emplace_back(pipeline->axes[a], v);
        next.push_back(std::move(cell));
      }
    }
    cells = std::move(next);
  }

  auto parse_entries = [&](const YAML::Node& list, absl::string_view what) -> absl::StatusOr<std::vector<MatrixCell>> {
    std::vector<MatrixCell> entries;
    if (!list || list.IsNull()) return entries;
    if (!list.IsSequence()) return Error(list, absl::StrCat("matrix.", what, " must be a list of mappings"));
    for (const auto& entry : list) {
      if (!entry.IsMap() || entry.size() == 0) {
        return Error(entry, absl::StrCat("each matrix.", what, " entry must be a non-empty mapping"));
      }
      MatrixCell cell;
      for (const auto& kv : entry) {
        if (!kv.second.IsScalar()) {
          return Error(kv.second, absl::StrCat("matrix.", what, ".", kv.first.Scalar(), " must be a string"));
        }
        if (!ValidId(kv.first.Scalar())) {
          return Error(kv.first, absl::StrCat("matrix.", what, " key '", kv.first.Scalar(), "' is not a valid name"));
        }
        cell.emplace_back(kv.first.Scalar(), kv.second.Scalar());
      }
      entries.push_back(std::move(cell));
    }
    return entries;
  };

  auto lookup = [](const MatrixCell& cell, const std::string& key) -> const std::string* {
    for (const auto& [k, v] : cell) {
      if (k == key) return &v;
    }
    return nullptr;
  };

  auto excludes = parse_entries(exclude, "exclude");
  if (!excludes.ok()) return excludes.status();
  size_t index = 0;
  for (const MatrixCell& ex : *excludes) {
    const YAML::Node entry_node = exclude[index++];
    for (const auto& [k, v] : ex) {
      if (std::find(pipeline->axes.begin(), pipeline->axes.end(), k) == pipeline->axes.end()) {
        return Error(entry_node, absl::StrCat("matrix.exclude names '", k, "', which is not a matrix axis"));
      }
    }
    std::erase_if(cells, [&](const MatrixCell& cell) {
      return std::all_of(ex.begin(), ex.end(), [&](const auto& kv) {
        const std::string* have = lookup(cell, kv.first);
        return have != nullptr && *have == kv.second;
      });
    });
  }

  // include: an entry whose axis values match existing cells adds its other keys to them;
  // an entry that matches none is a cell of its own.
  auto includes = parse_entries(include, "include");
  if (!includes.ok()) return includes.status();
  for (const MatrixCell& inc : *includes) {
    bool matched = false;
    bool has_axis = false;
    for (MatrixCell& cell : cells) {
      bool all = true;
      for (const auto& [k, v] : inc) {
        if (std::find(pipeline->axes.begin(), pipeline->axes.end(), k) == pipeline->axes.end()) continue;
        has_axis = true;
        const std::string* have = lookup(cell, k);
        if (have == nullptr || *have != v) {
          all = false;
          break;
        }
      }
      if (!all || !has_axis) continue;
      matched = true;
      for (const auto& [k, v] : inc) {
        if (lookup(cell, k) == nullptr) cell.emplace_back(k, v);
      }
    }
    if (!matched) cells.push_back(inc);
  }

  if (static_cast<int>(cells.size()) > limits_.max_cells) {
    return Error(node, absl::StrCat("the matrix has ", cells.size(), " cells, more than the limit of ", limits_.max_cells,
                                    " (coordinator flag --max-matrix-cells)"));
  }
  if (cells.empty()) return Error(node, "the matrix has no cells left after exclude");
  std::set<std::string> names;
  for (const MatrixCell& cell : cells) {
    std::string name = CellName(*pipeline, cell);
    if (!names.insert(name).second) {
      return Error(node, absl::StrCat("two matrix cells are both named '", name, "'"));
    }
  }
  pipeline->cells = std::move(cells);
  return absl::OkStatus();
}

absl::StatusOr<Step> Parser::ParseStep(const YAML::Node& node, size_t index, const std::set<std::string>& earlier) const {
  std::string where = absl::StrCat("steps[", index, "]");
  if (!node.IsMap()) return Error(node, absl::StrCat(where, " must be a mapping with id and run"));
  if (absl::Status s = CheckKeys(node, where,
                                 {"id", "name", "run", "qemu", "needs", "inputs", "outputs", "env", "timeout", "requires",
                                  "cache", "cache_failures", "retry", "limits"});
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
  if (node["run"] && node["qemu"]) return Error(node["qemu"], absl::StrCat(where, " has both 'run' and 'qemu': choose one"));
  if (node["qemu"]) {
    auto qemu = ParseQemu(node["qemu"], where);
    if (!qemu.ok()) return qemu.status();
    step.qemu = std::move(*qemu);
    step.timeout = absl::Seconds(30);  // an emulator run's default; `timeout` below (or qemu.timeout) wins
    if (node["qemu"]["timeout"]) {
      auto t = Duration(node["qemu"]["timeout"], absl::StrCat(where, ".qemu.timeout"));
      if (!t.ok()) return t.status();
      step.timeout = *t;
    }
  } else {
    if (!node["run"]) return Error(node, absl::StrCat(where, " has no 'run' command (or 'qemu' emulator run)"));
    auto run = Scalar(node["run"], absl::StrCat(where, ".run"));
    if (!run.ok()) return run.status();
    if (absl::StripAsciiWhitespace(*run).empty()) return Error(node["run"], absl::StrCat(where, ".run is empty"));
    step.run = *run;
  }
  if (node["needs"]) {
    auto needs = StringList(node["needs"], absl::StrCat(where, ".needs"));
    if (!needs.ok()) return needs.status();
    for (const std::string& need : *needs) {
      if (!earlier.contains(need)) {
        return Error(node["needs"], absl::StrCat(where, " needs '", need,
                                                 need == step.id ? "', itself" : "', which is not an earlier step"));
      }
    }
    step.needs = *needs;
  }
  if (node["outputs"]) {
    auto outputs = StringList(node["outputs"], absl::StrCat(where, ".outputs"));
    if (!outputs.ok()) return outputs.status();
    for (const std::string& out : *outputs) {
      if (absl::Status s = CheckRelativePath(out, absl::StrCat(where, " output")); !s.ok()) {
        return Error(node["outputs"], s.message());
      }
    }
    step.outputs = *outputs;
  }
  if (node["inputs"]) {
    auto inputs = StringList(node["inputs"], absl::StrCat(where, ".inputs"));
    if (!inputs.ok()) return inputs.status();
    for (const std::string& in : *inputs) {
      if (absl::Status s = CheckRelativePath(in, absl::StrCat(where, " input")); !s.ok()) {
        return Error(node["inputs"], s.message());
      }
    }
    step.inputs = *inputs;
  }
  // Optional fields: parse when present, keep the default otherwise.
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
  for (absl::Status s : {field("env", string_map, &step.env), field("timeout", duration, &step.timeout),
                         field("requires", string_list, &step.requires_labels), field("cache", boolean, &step.cache),
                         field("cache_failures", boolean, &step.cache_failures)}) {
    if (!s.ok()) return s;
  }
  if (node["retry"]) {
    // `retry: N`, or `retry: {max: N, when: [timeout, exit_code]}`.
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
        step.retry_when = *when;
      }
    }
    int retry = -1;
    if (!max.IsScalar() || !absl::SimpleAtoi(max.Scalar(), &retry) || retry < 0 || retry > 10) {
      return Error(max, absl::StrCat(where, ".retry must be a whole number from 0 to 10"));
    }
    step.retry = retry;
  }
  if (node["limits"]) {
    const YAML::Node limits = node["limits"];
    if (!limits.IsMap()) return Error(limits, absl::StrCat(where, ".limits must be a mapping like {size: {PATH: 32KiB}}"));
    if (absl::Status s = CheckKeys(limits, absl::StrCat(where, ".limits"), {"size"}); !s.ok()) return s;
    if (limits["size"]) {
      auto budgets = ParseBudgets(limits["size"], absl::StrCat(where, ".limits.size"));
      if (!budgets.ok()) return budgets.status();
      step.size_budgets = std::move(*budgets);
    }
  }
  return step;
}

absl::StatusOr<QemuStep> Parser::ParseQemu(const YAML::Node& node, const std::string& step) const {
  const std::string where = absl::StrCat(step, ".qemu");
  if (!node.IsMap()) return Error(node, absl::StrCat(where, " must be a mapping with system, machine and kernel"));
  if (absl::Status s = CheckKeys(node, where,
                                 {"system", "machine", "cpu", "kernel", "args", "semihosting", "timeout", "expect",
                                  "ordered", "fail_on", "exit_code"});
      !s.ok()) {
    return s;
  }
  QemuStep qemu;
  for (const char* key : {"system", "machine", "kernel"}) {
    if (!node[key]) return Error(node, absl::StrCat(where, " has no '", key, "'"));
  }
  auto text = [&](const char* key, std::string* out) -> absl::Status {
    if (!node[key]) return absl::OkStatus();
    auto v = Scalar(node[key], absl::StrCat(where, ".", key));
    if (!v.ok()) return v.status();
    if (absl::StripAsciiWhitespace(*v).empty()) return Error(node[key], absl::StrCat(where, ".", key, " is empty"));
    *out = *v;
    return absl::OkStatus();
  };
  auto list = [&](const char* key, std::vector<std::string>* out) -> absl::Status {
    if (!node[key]) return absl::OkStatus();
    auto v = StringList(node[key], absl::StrCat(where, ".", key));
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  };
  for (absl::Status s : {text("system", &qemu.system), text("machine", &qemu.machine), text("cpu", &qemu.cpu),
                         text("kernel", &qemu.kernel), list("args", &qemu.args), list("expect", &qemu.expect),
                         list("fail_on", &qemu.fail_on)}) {
    if (!s.ok()) return s;
  }
  if (qemu.system.find("${{") == std::string::npos) {
    if (absl::Status s = CheckEmulatorName(qemu.system); !s.ok()) return Error(node["system"], s.message());
  }
  if (absl::Status s = CheckRelativePath(qemu.kernel, absl::StrCat(where, ".kernel")); !s.ok()) {
    return Error(node["kernel"], s.message());
  }
  qemu.kernel_line = node["kernel"].Mark().line + 1;
  if (node["semihosting"]) {
    auto b = Bool(node["semihosting"], absl::StrCat(where, ".semihosting"));
    if (!b.ok()) return b.status();
    qemu.semihosting = *b;
  }
  if (node["ordered"]) {
    auto b = Bool(node["ordered"], absl::StrCat(where, ".ordered"));
    if (!b.ok()) return b.status();
    qemu.ordered = *b;
  }
  if (node["exit_code"]) {
    int code = -1;
    if (!node["exit_code"].IsScalar() || !absl::SimpleAtoi(node["exit_code"].Scalar(), &code) || code < 0 || code > 255) {
      return Error(node["exit_code"], absl::StrCat(where, ".exit_code must be a whole number from 0 to 255"));
    }
    qemu.exit_code = code;
  }
  return qemu;
}

absl::StatusOr<std::vector<SizeBudget>> Parser::ParseBudgets(const YAML::Node& node, const std::string& where) const {
  if (!node.IsMap()) return Error(node, absl::StrCat(where, " must map output paths to sizes, like {out/fw.elf: 32KiB}"));
  std::vector<SizeBudget> out;
  auto size = [&](const YAML::Node& n, const std::string& what) -> absl::StatusOr<int64_t> {
    if (!n.IsScalar()) return Error(n, absl::StrCat(what, " must be a size like 32KiB or 4096"));
    auto bytes = ParseSize(n.Scalar());
    if (!bytes.ok()) return Error(n, absl::StrCat(what, ": ", bytes.status().message()));
    return *bytes;
  };
  for (const auto& kv : node) {
    SizeBudget budget;
    budget.path = kv.first.Scalar();
    budget.line = kv.first.Mark().line + 1;
    const std::string what = absl::StrCat(where, ".", budget.path);
    if (absl::Status s = CheckRelativePath(budget.path, what); !s.ok()) return Error(kv.first, s.message());
    if (kv.second.IsMap()) {
      if (absl::Status s = CheckKeys(kv.second, what, {"file", "text", "data", "bss", "rom", "ram"}); !s.ok()) return s;
      for (const auto& [key, field] : std::initializer_list<std::pair<const char*, int64_t*>>{
               {"file", &budget.file}, {"text", &budget.text}, {"data", &budget.data},
               {"bss", &budget.bss}, {"rom", &budget.rom}, {"ram", &budget.ram}}) {
        if (!kv.second[key]) continue;
        auto v = size(kv.second[key], absl::StrCat(what, ".", key));
        if (!v.ok()) return v.status();
        *field = *v;
      }
    } else {
      auto v = size(kv.second, what);
      if (!v.ok()) return v.status();
      budget.file = *v;
    }
    out.push_back(std::move(budget));
  }
  return out;
}

absl::Status Parser::ParseSizeRegression(const YAML::Node& node, Pipeline* pipeline) const {
  if (!node.IsMap()) return Error(node, "size_regression must be a mapping like {warn: 1%, fail: 5%}");
  if (absl::Status s = CheckKeys(node, "size_regression", {"warn", "fail", "baseline"}); !s.ok()) return s;
  for (const auto& [key, field] : {std::pair{"warn", &pipeline->size_regression.warn_percent},
                                   std::pair{"fail", &pipeline->size_regression.fail_percent}}) {
    if (!node[key]) continue;
    auto p = node[key].IsScalar() ? ParsePercent(node[key].Scalar()) : absl::InvalidArgumentError("must be a percentage");
    if (!p.ok()) return Error(node[key], absl::StrCat("size_regression.", key, ": ", p.status().message()));
    *field = *p;
  }
  if (node["baseline"]) {
    auto file = Scalar(node["baseline"], "size_regression.baseline");
    if (!file.ok()) return file.status();
    if (absl::Status s = CheckRelativePath(*file, "size_regression.baseline"); !s.ok()) {
      return Error(node["baseline"], s.message());
    }
    pipeline->size_regression.baseline_file = *file;
  }
  return absl::OkStatus();
}

// A qemu step boots a file that a step it needs built: checked in every cell, so a typo in the
// kernel path is refused at submit instead of failing in the emulator.
absl::Status Parser::CheckKernels(const Pipeline& pipeline, const MatrixCell& cell,
                                  const std::map<std::string, Step>& expanded) const {
  for (const Step& template_step : pipeline.steps) {
    if (!template_step.qemu) continue;
    const Step& step = expanded.at(template_step.id);
    const std::string& kernel = step.qemu->kernel;
    std::vector<std::string> offered;
    for (const std::string& need : step.needs) {
      for (const std::string& out : expanded.at(need).outputs) {
        std::string dir = absl::StrCat(absl::StripSuffix(out, "/"), "/");
        if (kernel == out || absl::StartsWith(kernel, dir)) return absl::OkStatus();
        offered.push_back(absl::StrCat(need, ": ", out));
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        file_, ":", step.qemu->kernel_line, ": step '", step.id, "' qemu.kernel '", kernel,
        "' is not an output of a step it needs (", offered.empty() ? "its needs declare no outputs" : absl::StrJoin(offered, ", "),
        ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Pipeline> ParsePipeline(absl::string_view text, absl::string_view file_name, const PipelineLimits& limits) {
  return Parser(file_name, limits).Parse(text);
}

namespace {
// A cell name segment is used in task ids and artifact paths: never empty, ".", ".." or with '/'.
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
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown expression '${{ ", expr, " }}' (use matrix.NAME or pipeline.name)"));
    }
    pos = close + 2;
  }
  absl::StrAppend(&out, text.substr(pos));
  return out;
}

absl::StatusOr<Step> ExpandStep(const Pipeline& pipeline, const Step& step, const MatrixCell& cell,
                                absl::string_view file_name) {
  auto fail = [&](const absl::Status& s, absl::string_view field) {
    return absl::InvalidArgumentError(absl::StrCat(file_name, ":", step.line, ": step '", step.id, "' ", field, ": ",
                                                   s.message()));
  };
  Step out = step;
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
    if (absl::Status s = CheckEmulatorName(q.system); !s.ok()) return fail(s, "qemu.system");
    if (absl::Status s = CheckRelativePath(q.kernel, "kernel"); !s.ok()) return fail(s, "qemu.kernel");
    for (auto [field, list] : {std::pair{"qemu.args", &q.args}, std::pair{"qemu.expect", &q.expect},
                               std::pair{"qemu.fail_on", &q.fail_on}}) {
      for (std::string& item : *list) {
        auto expanded = ExpandExpressions(item, cell, pipeline.name);
        if (!expanded.ok()) return fail(expanded.status(), field);
        item = *expanded;
        if (list == &q.args) continue;
        try {
          std::regex re(item);
        } catch (const std::regex_error& e) {
          return fail(absl::InvalidArgumentError(absl::StrCat("'", item, "' is not a regular expression: ", e.what())),
                      field);
        }
      }
    }
    std::vector<std::string> quoted;
    for (const std::string& arg : QemuCommandLine(q)) quoted.push_back(ShellQuote(arg));
    out.run = absl::StrJoin(quoted, " ");
  }
  return out;
}

std::vector<std::string> QemuCommandLine(const QemuStep& qemu) {
  std::vector<std::string> argv = {qemu.system, "-M", qemu.machine};
  if (!qemu.cpu.empty()) argv.insert(argv.end(), {"-cpu", qemu.cpu});
  // The console on stdout, no monitor, no display: what the worker's harness reads.
  argv.insert(argv.end(), {"-nographic", "-monitor", "none", "-serial", "stdio"});
  if (qemu.semihosting) argv.insert(argv.end(), {"-semihosting-config", "enable=on,target=native"});
  argv.insert(argv.end(), {"-kernel", qemu.kernel});
  argv.insert(argv.end(), qemu.args.begin(), qemu.args.end());
  return argv;
}

absl::StatusOr<int64_t> ParseSize(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < t.size() && (absl::ascii_isdigit(static_cast<unsigned char>(t[digits])) || t[digits] == '.')) ++digits;
  double number = 0;
  if (digits == 0 || !absl::SimpleAtod(t.substr(0, digits), &number)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a size like 32KiB, 1.5MiB or 4096"));
  }
  std::string unit = absl::AsciiStrToLower(absl::StripAsciiWhitespace(t.substr(digits)));
  static const std::map<std::string, double> kUnits = {{"", 1},         {"b", 1},          {"k", 1024},
                                                       {"kib", 1024},   {"kb", 1000},      {"m", 1 << 20},
                                                       {"mib", 1 << 20}, {"mb", 1'000'000}, {"gib", 1 << 30},
                                                       {"gb", 1e9}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' has an unknown unit '", unit, "' (use B, KiB, MiB, GiB, KB, MB or GB)"));
  }
  double bytes = number * it->second;
  if (bytes < 1 || bytes > 1e15) return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a size in range"));
  return static_cast<int64_t>(bytes);
}

absl::StatusOr<double> ParsePercent(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  absl::ConsumeSuffix(&t, "%");
  double v = -1;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(t), &v) || v < 0 || v > 1000) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a percentage like 1% or 0.5%"));
  }
  return v;
}

}  // namespace assay
