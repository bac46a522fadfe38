// `${{ ... }}` hidden from the YAML reader and put back after: in a flow list such as
// `restore_keys: [cargo-${{ matrix.target }}-]` YAML would read the braces (and any comma inside
// hashFiles('a', 'b')) as its own syntax. Each expression becomes `$((@N@))`, padded with '_' to its
// own length so that columns in messages stay right, and every scalar gets its expressions back.
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
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
    // A scan, not a regular expression: libstdc++'s std::regex recurses per character and a long
    // hostile value would overflow the stack.
    std::string restored;
    size_t pos = 0;
    while (true) {
      const size_t open = value.find("$((@", pos);
      if (open == std::string::npos) break;
      size_t end = open + 4;
      while (end < value.size() && absl::ascii_isdigit(static_cast<unsigned char>(value[end]))) ++end;
      const absl::string_view digits(value.data() + open + 4, end - open - 4);
      size_t close = end;
      if (close < value.size() && value[close] == '@') {
        ++close;
        while (close < value.size() && value[close] == '_') ++close;
      }
      // A number that is not one of ours (the file's own text, however long) stays as it was.
      size_t index = 0;
      const bool ours = !digits.empty() && end < value.size() && value[end] == '@' &&
                        value.compare(close, 2, "))") == 0 && absl::SimpleAtoi(digits, &index) &&
                        index < expressions.size();
      if (!ours) {
        restored.append(value, pos, open + 4 - pos);
        pos = open + 4;
        continue;
      }
      restored.append(value, pos, open - pos);
      restored.append(expressions[index]);
      pos = close + 2;
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
