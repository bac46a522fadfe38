// `matrix` of a pipeline: its axes and their cross product, then `exclude` and `include` entries.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/pipeline/pipeline_parser.h"

namespace assay::pipeline_internal {

namespace {

const std::string* Lookup(const MatrixCell& cell, const std::string& key) {
  for (const auto& [k, v] : cell) {
    if (k == key) return &v;
  }
  return nullptr;
}

bool IsAxis(const Pipeline& pipeline, const std::string& key) {
  return std::find(pipeline.axes.begin(), pipeline.axes.end(), key) != pipeline.axes.end();
}

}  // namespace

absl::Status Parser::ParseMatrix(const YAML::Node& node, Pipeline* pipeline) const {
  if (!node.IsMap()) return Error(node, "matrix must be a mapping of axis names to lists of values");
  std::vector<std::vector<std::string>> values;
  YAML::Node include, exclude;
  if (absl::Status s = ParseMatrixAxes(node, pipeline, &values, &include, &exclude); !s.ok()) return s;
  auto cells = MatrixProduct(node, *pipeline, values);
  if (!cells.ok()) return cells.status();
  if (absl::Status s = ApplyMatrixExclude(exclude, *pipeline, &*cells); !s.ok()) return s;
  if (absl::Status s = ApplyMatrixInclude(include, *pipeline, &*cells); !s.ok()) return s;

  if (static_cast<int>(cells->size()) > limits_.max_cells) {
    return Error(node, absl::StrCat("the matrix has ", cells->size(), " cells, more than the limit of ",
                                    limits_.max_cells, " (coordinator flag --max-matrix-cells)"));
  }
  if (cells->empty()) return Error(node, "the matrix has no cells left after exclude");
  std::set<std::string> names;
  for (const MatrixCell& cell : *cells) {
    std::string name = CellName(*pipeline, cell);
    if (!names.insert(name).second) {
      return Error(node, absl::StrCat("two matrix cells are both named '", name, "'"));
    }
  }
  pipeline->cells = std::move(*cells);
  return absl::OkStatus();
}

absl::Status Parser::ParseMatrixAxes(const YAML::Node& node, Pipeline* pipeline,
                                     std::vector<std::vector<std::string>>* values, YAML::Node* include,
                                     YAML::Node* exclude) const {
  for (const auto& kv : node) {
    std::string key = kv.first.Scalar();
    if (key == "include") {
      *include = kv.second;
      continue;
    }
    if (key == "exclude") {
      *exclude = kv.second;
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
    values->push_back(std::move(axis));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MatrixCell>> Parser::MatrixProduct(
    const YAML::Node& node, const Pipeline& pipeline, const std::vector<std::vector<std::string>>& values) const {
  // The cross product, counted first so a huge matrix is refused before it is built.
  double product = pipeline.axes.empty() ? 0 : 1;
  for (const auto& axis : values) product *= static_cast<double>(axis.size());
  if (product > limits_.max_cells) {
    return Error(node, absl::StrCat("the matrix has ", static_cast<int64_t>(product), " cells, more than the limit of ",
                                    limits_.max_cells, " (coordinator flag --max-matrix-cells)"));
  }
  std::vector<MatrixCell> cells;
  if (!pipeline.axes.empty()) cells.emplace_back();
  for (size_t a = 0; a < values.size(); ++a) {
    std::vector<MatrixCell> next;
    for (const MatrixCell& partial : cells) {
      for (const std::string& v : values[a]) {
        MatrixCell cell = partial;
        cell.emplace_back(pipeline.axes[a], v);
        next.push_back(std::move(cell));
      }
    }
    cells = std::move(next);
  }
  return cells;
}

absl::StatusOr<std::vector<MatrixCell>> Parser::ParseMatrixEntries(const YAML::Node& list,
                                                                   absl::string_view what) const {
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
}

absl::Status Parser::ApplyMatrixExclude(const YAML::Node& exclude, const Pipeline& pipeline,
                                        std::vector<MatrixCell>* cells) const {
  auto excludes = ParseMatrixEntries(exclude, "exclude");
  if (!excludes.ok()) return excludes.status();
  size_t index = 0;
  for (const MatrixCell& ex : *excludes) {
    const YAML::Node entry_node = exclude[index++];
    for (const auto& [k, v] : ex) {
      if (!IsAxis(pipeline, k)) {
        return Error(entry_node, absl::StrCat("matrix.exclude names '", k, "', which is not a matrix axis"));
      }
    }
    std::erase_if(*cells, [&](const MatrixCell& cell) {
      return std::all_of(ex.begin(), ex.end(), [&](const auto& kv) {
        const std::string* have = Lookup(cell, kv.first);
        return have != nullptr && *have == kv.second;
      });
    });
  }
  return absl::OkStatus();
}

// include: an entry whose axis values match existing cells adds its other keys to them;
// an entry that matches none is a cell of its own.
absl::Status Parser::ApplyMatrixInclude(const YAML::Node& include, const Pipeline& pipeline,
                                        std::vector<MatrixCell>* cells) const {
  auto includes = ParseMatrixEntries(include, "include");
  if (!includes.ok()) return includes.status();
  for (const MatrixCell& inc : *includes) {
    bool matched = false;
    bool has_axis = false;
    for (MatrixCell& cell : *cells) {
      bool all = true;
      for (const auto& [k, v] : inc) {
        if (!IsAxis(pipeline, k)) continue;
        has_axis = true;
        const std::string* have = Lookup(cell, k);
        if (have == nullptr || *have != v) {
          all = false;
          break;
        }
      }
      if (!all || !has_axis) continue;
      matched = true;
      for (const auto& [k, v] : inc) {
        if (Lookup(cell, k) == nullptr) cell.emplace_back(k, v);
      }
    }
    if (!matched) cells->push_back(inc);
  }
  return absl::OkStatus();
}

}  // namespace assay::pipeline_internal
