// A regular expression that comes from a pipeline (`qemu.expect`, `qemu.fail_on`, and any later key
// that takes one). Any submitter's pattern runs on every worker, over whatever a guest prints, so it
// is compiled and matched with RE2: time linear in the line, no recursion, and memory bounded per
// pattern, whatever the pattern. The syntax is what users wrote for std::regex (ECMAScript) minus
// the features that need backtracking; docs/pipeline.md ("Patterns") lists the differences.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace re2 {
class RE2;
}

namespace assay {

class LinePattern {
 public:
  static constexpr size_t kMaxBytes = 1024;          // a longer pattern is refused
  static constexpr int64_t kMaxMemory = 1 << 20;     // RE2's budget: compiled program and DFA cache
  static constexpr int kMaxPerStep = 64;             // patterns of one step (expect and fail_on)

  // The compiled pattern, or an error that quotes it and says what is wrong; for an ECMAScript
  // feature RE2 lacks (backreferences, lookaround, \u, \c, [^]) it names the feature and what to
  // write instead.
  static absl::StatusOr<LinePattern> Compile(absl::string_view pattern);

  LinePattern(LinePattern&&) noexcept;
  LinePattern& operator=(LinePattern&&) noexcept;
  ~LinePattern();

  // Whether the pattern occurs anywhere in `line` (a search, like std::regex_search; anchor with ^
  // and $ for the whole line). Bytes, as std::regex read them: `.` is any byte but '\n'.
  bool FoundIn(absl::string_view line) const;

  const std::string& pattern() const;

 private:
  explicit LinePattern(std::unique_ptr<re2::RE2> re);
  std::unique_ptr<re2::RE2> re_;
};

}  // namespace assay
