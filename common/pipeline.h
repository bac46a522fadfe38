// The pipeline file (assay.yaml): a matrix of cells and the steps each cell runs.
// Parsing checks everything a user can get wrong and reports it as "file:line:column: problem".
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace assay {

// One cell: variable name -> value, in the order the axes were declared.
using MatrixCell = std::vector<std::pair<std::string, std::string>>;

struct Step {
  std::string id;
  std::string run;
  std::vector<std::string> needs;
  std::vector<std::string> outputs;
  std::vector<std::string> inputs;     // empty: the whole submitted tree
  std::map<std::string, std::string> env;
  absl::Duration timeout = absl::Minutes(30);
  std::vector<std::string> requires_labels;
  bool cache = true;
  bool cache_failures = false;
  int retry = 0;
  int line = 0;
};

struct Pipeline {
  std::string name;
  std::map<std::string, std::string> env;
  std::vector<std::string> axes;       // declared axis names, in order
  std::vector<MatrixCell> cells;       // after include/exclude; at least one
  std::vector<Step> steps;             // expressions not yet expanded
};

struct PipelineLimits {
  int max_cells = 256;
  int max_steps = 100;
};

absl::StatusOr<Pipeline> ParsePipeline(absl::string_view text, absl::string_view file_name,
                                       const PipelineLimits& limits = PipelineLimits());

// "cortex-m3/debug": the values of the declared axes ('/' in a value becomes '_'); "" for no matrix.
std::string CellName(const Pipeline& pipeline, const MatrixCell& cell);

// A step with ${{ matrix.x }} (and ${{ pipeline.name }}) expanded for one cell.
absl::StatusOr<Step> ExpandStep(const Pipeline& pipeline, const Step& step, const MatrixCell& cell,
                                absl::string_view file_name);

// Replaces ${{ matrix.NAME }} in `text`; an unknown name is an error naming it.
absl::StatusOr<std::string> ExpandExpressions(absl::string_view text, const MatrixCell& cell,
                                              absl::string_view pipeline_name);

}  // namespace assay
