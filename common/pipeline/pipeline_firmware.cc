// The firmware parts of a pipeline file: qemu steps, size budgets and size regressions, and the
// sizes and percentages they are written in.
#include <regex>

#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "common/base/byte_size.h"
#include "common/base/file_util.h"
#include "common/pipeline/line_pattern.h"
#include "common/pipeline/pipeline_parser.h"

namespace assay {
namespace pipeline_internal {

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

// `expect` and `fail_on`: at most LinePattern::kMaxPerStep, each one RE2 takes, refused at its own
// FILE:LINE:COL. A pattern with an expression is checked again in each cell once expanded (ExpandStep).
absl::Status Parser::CheckPatterns(const YAML::Node& node, const std::string& where, const QemuStep& qemu) const {
  if (qemu.expect.size() + qemu.fail_on.size() > static_cast<size_t>(LinePattern::kMaxPerStep)) {
    return Error(node, absl::StrCat(where, " has ", qemu.expect.size() + qemu.fail_on.size(),
                                    " expect and fail_on patterns, more than the ", LinePattern::kMaxPerStep, " allowed"));
  }
  for (const char* key : {"expect", "fail_on"}) {
    if (!node[key]) continue;
    const YAML::Node list = node[key];
    for (size_t i = 0; i < (list.IsSequence() ? list.size() : 1); ++i) {
      const YAML::Node item = list.IsSequence() ? list[i] : list;
      if (item.Scalar().find("${{") != std::string::npos) continue;
      if (auto pattern = LinePattern::Compile(item.Scalar()); !pattern.ok()) {
        return Error(item, absl::StrCat(where, ".", key, ": ", pattern.status().message()));
      }
    }
  }
  return absl::OkStatus();
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
  if (absl::Status s = CheckPatterns(node, where, qemu); !s.ok()) return s;
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

absl::Status Parser::ParseResourceLimits(const YAML::Node& limits, const std::string& where, Step* step) const {
  if (const YAML::Node cpus = limits["cpus"]) {
    double v = 0;
    if (!cpus.IsScalar() || !absl::SimpleAtod(cpus.Scalar(), &v) || !(v >= 0.01 && v <= 1024)) {
      return Error(cpus, absl::StrCat(where, ".limits.cpus must be a number of cores from 0.01 to 1024, like 2 or 0.5"));
    }
    step->cpus = v;
  }
  if (const YAML::Node memory = limits["memory"]) {
    auto bytes = memory.IsScalar() ? ParseSize(memory.Scalar()) : absl::InvalidArgumentError("not a size");
    if (!bytes.ok() || *bytes < (4 << 20)) {
      return Error(memory, absl::StrCat(where, ".limits.memory must be a size of at least 4MiB, like 512MiB or 2GiB"));
    }
    step->memory_bytes = *bytes;
  }
  if (const YAML::Node pids = limits["pids"]) {
    int64_t v = 0;
    if (!pids.IsScalar() || !absl::SimpleAtoi(pids.Scalar(), &v) || v < 8 || v > 4'194'304) {
      return Error(pids, absl::StrCat(where, ".limits.pids must be a whole number of processes from 8 up, like 256"));
    }
    step->pids = v;
  }
  return absl::OkStatus();
}

}  // namespace pipeline_internal

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
