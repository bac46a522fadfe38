// The pipeline file (assay.yaml): a matrix of cells and the steps each cell runs.
// Parsing checks everything a user can get wrong and reports it as "file:line:column: problem".
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace assay {

// One cell: variable name -> value, in the order the axes were declared.
using MatrixCell = std::vector<std::pair<std::string, std::string>>;

// A `qemu:` step: the emulator to boot and what its console must show (docs/pipeline.md).
struct QemuStep {
  std::string system;                  // qemu-system-arm, qemu-system-riscv32, ...
  std::string machine;
  std::string cpu;
  std::string kernel;                  // a path among the outputs of a needed step
  std::vector<std::string> args;
  bool semihosting = true;
  std::vector<std::string> expect;     // regular expressions, matched line by line
  bool ordered = true;
  std::vector<std::string> fail_on;
  int exit_code = 0;
  int kernel_line = 0;
};

// `limits: {size: {PATH: 32KiB}}` or `{PATH: {text: 24KiB, rom: 28KiB, ram: 8KiB}}`; 0: no budget.
struct SizeBudget {
  std::string path;
  int64_t file = 0, text = 0, data = 0, bss = 0, rom = 0, ram = 0;
  int line = 0;
};

// `size_regression: {warn: 1%, fail: 5%, baseline: FILE}`; 0: never.
struct SizeRegression {
  double warn_percent = 0;
  double fail_percent = 0;
  std::string baseline_file;           // a baseline JSON in the tree; empty: the previous job
};

// `time_regression: {warn: 25%, fail: 100%, steps: [test], runs: 5}`: a timed step's run time against
// the median of its last `runs` successful, not cached runs (docs/pipeline.md, "Time regressions").
struct TimeRegression {
  bool enabled = false;                // the key is present
  double warn_percent = 0;             // 0: never
  double fail_percent = 0;             // 0: never
  int runs = 5;
  std::vector<std::string> steps;      // step ids; empty: every step
  bool Times(const std::string& step_id) const {
    return enabled && (steps.empty() || std::find(steps.begin(), steps.end(), step_id) != steps.end());
  }
};
constexpr int kMaxTimeRegressionRuns = 50;

// One entry of `caches:` (docs/pipeline.md, "Caches"): folders restored into the work directory before
// a step runs and saved after it succeeds. Expressions are expanded per cell (ExpandStep).
struct StepCache {
  std::string key;
  std::vector<std::string> restore_keys;  // prefixes, tried in order when `key` has no cache
  std::vector<std::string> paths;         // relative paths in the work directory
  int line = 0;
};
constexpr size_t kMaxCacheKeyBytes = 512;

// `hashFiles('GLOB', ...)` in a cache key: a hex digest of the submitted files the patterns select
// ("" when none does); computed at submit from the tree.
using HashFilesFn = std::function<absl::StatusOr<std::string>(const std::vector<std::string>& patterns)>;

// One entry of `notify:` (docs/pipeline.md, "Notifications"): a target the coordinator's admin
// configured (--notify-config), and the job events it hears of.
struct NotifySpec {
  std::string to;
  std::vector<std::string> on;            // started, success, failure, cancelled, recovered
  int line = 0;
};
// The events `notify.on` may name, and the ones it means when omitted.
inline const std::vector<std::string>& NotifyEvents() {
  static const std::vector<std::string> events = {"started", "success", "failure", "cancelled", "recovered"};
  return events;
}
inline const std::vector<std::string>& DefaultNotifyEvents() {
  static const std::vector<std::string> events = {"started", "success", "failure", "cancelled"};
  return events;
}

// "2%", "0.5%" or "2": percent.
absl::StatusOr<double> ParsePercent(absl::string_view text);

struct Step {
  std::string id;
  std::string run;                     // for a qemu step: the emulator's command line, for display
  std::optional<QemuStep> qemu;
  std::vector<std::string> needs;
  std::vector<std::string> outputs;
  std::vector<std::string> inputs;     // empty: the whole submitted tree
  std::map<std::string, std::string> env;
  absl::Duration timeout = absl::Minutes(30);
  std::vector<std::string> requires_labels;
  bool cache = true;
  bool cache_failures = false;
  int retry = 0;
  std::vector<std::string> retry_when;  // "timeout", "exit_code"; empty: any failure
  std::vector<SizeBudget> size_budgets;
  std::string image;                    // container image (the pipeline's `image` unless the step's); "": none
  bool network = false;                 // a container step's network (off by default)
  std::string user;                     // a container step's user ("": the image's)
  double cpus = 0;                      // limits.cpus, limits.memory, limits.pids (0: none)
  int64_t memory_bytes = 0;
  int64_t pids = 0;
  int64_t output_limit = 0;             // bytes of output kept (after parsing: the step's, the pipeline's or the default)
  bool output_limit_fails = false;      // exceeding output_limit stops the step and fails it
  std::vector<StepCache> caches;        // after parsing: the step's `caches:`, else the pipeline's (run steps)
  int line = 0;
};

struct Pipeline {
  std::string name;
  std::map<std::string, std::string> env;
  std::vector<std::string> axes;       // declared axis names, in order
  std::vector<MatrixCell> cells;       // after include/exclude; at least one
  std::vector<Step> steps;             // expressions not yet expanded
  SizeRegression size_regression;
  TimeRegression time_regression;
  int max_parallel = 0;                // at most this many tasks of a job at once; 0: no cap
  bool fail_fast = false;              // the first failed task cancels the rest of the job
  std::string image;                   // the steps' default container image
  int64_t output_limit = 0;            // the steps' default output_limit (0: the coordinator's)
  bool output_limit_fails = false;
  std::vector<StepCache> caches;       // `caches:` of the pipeline: for every run step without its own
  std::vector<NotifySpec> notify;      // `notify:`: who hears of the job's events
};

struct PipelineLimits {
  int max_cells = 256;
  int max_steps = 100;
  // A step's output limit when the pipeline sets none, and the most it may set (output_limit).
  int64_t default_output_limit = int64_t{64} << 20;
  int64_t max_output_limit = int64_t{1} << 30;
};

absl::StatusOr<Pipeline> ParsePipeline(absl::string_view text, absl::string_view file_name,
                                       const PipelineLimits& limits = PipelineLimits());

// "cortex-m3/debug": the values of the declared axes ('/' in a value becomes '_'); "" for no matrix.
std::string CellName(const Pipeline& pipeline, const MatrixCell& cell);

// A step with ${{ matrix.x }} (and ${{ pipeline.name }}) expanded for one cell; in cache keys also
// ${{ hashFiles(...) }}, through `hash_files` (null: a stand-in, for checking the expressions).
absl::StatusOr<Step> ExpandStep(const Pipeline& pipeline, const Step& step, const MatrixCell& cell,
                                absl::string_view file_name, const HashFilesFn* hash_files = nullptr);

// The emulator's command line for a qemu step, kernel and args included.
std::vector<std::string> QemuCommandLine(const QemuStep& qemu);

// Replaces ${{ matrix.NAME }} in `text`; an unknown name is an error naming it.
absl::StatusOr<std::string> ExpandExpressions(absl::string_view text, const MatrixCell& cell,
                                              absl::string_view pipeline_name);
// The same, also allowing ${{ hashFiles('GLOB', ...) }} (cache keys only), computed by `hash_files`.
absl::StatusOr<std::string> ExpandExpressions(absl::string_view text, const MatrixCell& cell,
                                              absl::string_view pipeline_name, const HashFilesFn& hash_files);

// The patterns of `hashFiles('a', "b")` (the text inside the parentheses); each a relative path or glob.
absl::StatusOr<std::vector<std::string>> ParseHashFilesArguments(absl::string_view arguments);

}  // namespace assay
