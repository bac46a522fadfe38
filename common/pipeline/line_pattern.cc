#include "common/pipeline/line_pattern.h"

#include <re2/re2.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace assay {
namespace {

// What RE2's complaint means for someone who wrote ECMAScript, with what to write instead; "" for
// plain syntax errors, which RE2's own words describe well enough.
std::string Hint(const re2::RE2& re) {
  const std::string& arg = re.error_arg();
  switch (re.error_code()) {
    case re2::RE2::ErrorBadEscape:
      if (arg.size() == 2 && absl::ascii_isdigit(static_cast<unsigned char>(arg[1]))) {
        return "backreferences (\\1) are not supported: patterns are matched in linear time; repeat the text instead";
      }
      if (arg == "\\k") return "named backreferences (\\k<name>) are not supported: patterns are matched in linear time";
      if (arg == "\\u") return "write the character itself, or a byte as \\x41; lines are matched as bytes";
      if (arg == "\\c") return "write a control character as \\x01, not \\cA";
      return "";
    case re2::RE2::ErrorBadPerlOp:
      if (absl::StartsWith(arg, "(?=") || absl::StartsWith(arg, "(?!")) {
        return "lookahead ((?=...), (?!...)) is not supported: patterns are matched in linear time; use a second "
               "pattern, or fail_on for what must not appear";
      }
      if (absl::StartsWith(arg, "(?<")) {
        return "lookbehind ((?<=...), (?<!...)) is not supported, and a named group is written (?P<name>...)";
      }
      return "";
    case re2::RE2::ErrorMissingBracket:
      if (absl::StartsWith(arg, "[^]")) return "[^] (any character) is written [\\s\\S] or (?s:.)";
      return "";
    case re2::RE2::ErrorRepeatSize:
      return "a repetition count is at most 1000, nested ones multiplied";
    case re2::RE2::ErrorPatternTooLarge:
      return absl::StrCat("it compiles to more than the ", LinePattern::kMaxMemory >> 10,
                          " KiB a pattern may use; make it simpler");
    default:
      return "";
  }
}

}  // namespace

absl::StatusOr<LinePattern> LinePattern::Compile(absl::string_view pattern) {
  if (pattern.size() > kMaxBytes) {
    return absl::InvalidArgumentError(absl::StrCat("the pattern '", pattern.substr(0, 40), "...' is ", pattern.size(),
                                                   " bytes long, more than the ", kMaxBytes, " a pattern may have"));
  }
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_max_mem(kMaxMemory);
  // Bytes, as std::regex read them: a line need not be UTF-8, and `.` stays one byte.
  options.set_encoding(re2::RE2::Options::EncodingLatin1);
  auto re = std::make_unique<re2::RE2>(re2::StringPiece(pattern.data(), pattern.size()), options);
  if (!re->ok()) {
    const std::string hint = Hint(*re);
    return absl::InvalidArgumentError(absl::StrCat("'", pattern, "' is not a regular expression RE2 accepts: ",
                                                   re->error(), hint.empty() ? "" : absl::StrCat(" (", hint, ")")));
  }
  return LinePattern(std::move(re));
}

LinePattern::LinePattern(std::unique_ptr<re2::RE2> re) : re_(std::move(re)) {}
LinePattern::LinePattern(LinePattern&&) noexcept = default;
LinePattern& LinePattern::operator=(LinePattern&&) noexcept = default;
LinePattern::~LinePattern() = default;

bool LinePattern::FoundIn(absl::string_view line) const {
  return re2::RE2::PartialMatch(re2::StringPiece(line.data(), line.size()), *re_);
}

const std::string& LinePattern::pattern() const { return re_->pattern(); }

}  // namespace assay
