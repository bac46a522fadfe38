#include "common/base/byte_size.h"

#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace assay {

absl::StatusOr<int64_t> ParseSize(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < t.size() && (absl::ascii_isdigit(static_cast<unsigned char>(t[digits])) || t[digits] == '.')) ++digits;
  double number = 0;
  if (digits == 0 || !absl::SimpleAtod(t.substr(0, digits), &number)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a size like 32KiB, 1.5MiB or 4096"));
  }
  std::string unit = absl::AsciiStrToLower(absl::StripAsciiWhitespace(t.substr(digits)));
  static const std::map<std::string, double> kUnits = {
      {"", 1},           {"b", 1},        {"byte", 1},     {"bytes", 1},      {"k", 1024},     {"kib", 1024},
      {"kb", 1000},      {"m", 1 << 20},  {"mib", 1 << 20}, {"mb", 1'000'000}, {"gib", 1 << 30}, {"gb", 1e9},
      {"tib", 1099511627776.0}, {"tb", 1e12}};
  auto it = kUnits.find(unit);
  if (it == kUnits.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' has an unknown unit '", unit, "' (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)"));
  }
  double bytes = number * it->second;
  if (bytes < 1 || bytes > 1e15) return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a size in range"));
  return static_cast<int64_t>(bytes);
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 0) return absl::StrCat("-", FormatBytes(bytes == INT64_MIN ? INT64_MAX : -bytes));
  if (bytes < 1024) return absl::StrCat(bytes, bytes == 1 ? " byte" : " bytes");
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  int unit = 0;
  int64_t scale = 1024;
  while (unit < 3 && bytes / scale >= 1024) {
    scale *= 1024;
    ++unit;
  }
  if (bytes % scale == 0) return absl::StrCat(bytes / scale, " ", kUnits[unit]);
  return absl::StrFormat("%.1f %s", static_cast<double>(bytes) / static_cast<double>(scale), kUnits[unit]);
}

}  // namespace assay
