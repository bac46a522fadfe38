// The host's processes, as tests see them: whether anything a step started is still running.
#pragma once

#include <filesystem>
#include <string>

#include "absl/strings/match.h"
#include "common/base/file_util.h"

namespace assay::testing {

// Whether any process on this host has `marker` in its command line.
inline bool AnyProcessWith(const std::string& marker) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    auto cmdline = ReadFile(entry.path() / "cmdline");
    if (cmdline.ok() && absl::StrContains(*cmdline, marker)) return true;
  }
  return false;
}

}  // namespace assay::testing
