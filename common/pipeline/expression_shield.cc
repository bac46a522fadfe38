// `${{ ... }}` hidden from the YAML reader and put back after: in a flow list such as
// `restore_keys: [cargo-${{ matrix.target }}-]` YAML would read the braces (and any comma inside
// hashFiles('a', 'b')) as its own syntax. Each expression becomes `$((@N@))`, padded with '_' to its
// own length so that columns in messages stay right, and every scalar gets its expressions back.
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/pipeline/pipeline_parser.h"

namespace assay::pipeline_internal {

std::string ShieldExpressions(absl::string_view text, std::vector<std::string>* expressions) {
  std::string out;
  size_t pos = 0;
  while (true) {
    const size_t open = text.find("${{", pos);
    if (open == absl::string_view::npos) break;
    const size_t close = text.find("}}", open + 3);
    // Unterminated, or spanning lines: left for the expander to report.
    if (close == absl::string_view::npos || text.substr(open, close - open).find('\n') != absl::string_view::npos) {
      break;
    }
    const absl::string_view expression = text.substr(open, close + 2 - open);
    std::string placeholder = absl::StrCat("$((@", expressions->size(), "@");
    const size_t tail = 2;  // "))"
    if (placeholder.size() + tail < expression.size()) placeholder.append(expression.size() - placeholder.size() - tail, '_');
    absl::StrAppend(&out, text.substr(pos, open - pos), placeholder, "))");
    expressions->emplace_back(expression);
    pos = close + 2;
  }
  absl::StrAppend(&out, text.substr(pos));
  return out;
}

void UnshieldExpressions(YAML::Node node, const std::vector<std::string>& expressions) {
  if (expressions.empty()) return;
  if (node.IsScalar()) {
    const std::string& value = node.Scalar();
    if (value.find("$((@") == std::string::npos) return;
    static const std::regex kPlaceholder(R"(\$\(\(@([0-9]+)@_*\)\))");
    std::string restored;
    size_t pos = 0;
    for (std::sregex_iterator it(value.begin(), value.end(), kPlaceholder), end; it != end; ++it) {
      const size_t index = std::stoul((*it)[1].str());
      restored.append(value, pos, static_cast<size_t>(it->position()) - pos);
      restored.append(index < expressions.size() ? expressions[index] : it->str());
      pos = static_cast<size_t>(it->position() + it->length());
    }
    restored.append(value, pos);
    node = restored;  // keeps the node's mark (line and column)
    return;
  }
  if (node.IsSequence()) {
    for (YAML::Node item : node) UnshieldExpressions(item, expressions);
  } else if (node.IsMap()) {
    for (auto kv : node) {
      UnshieldExpressions(kv.first, expressions);  // a key may hold one (a size budget's path)
      UnshieldExpressions(kv.second, expressions);
    }
  }
}

}  // namespace assay::pipeline_internal
