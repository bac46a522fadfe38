// The command-line flags of input-tree limits, shared by assay-coordinator (checked at Submit) and
// assay-worker (checked again before anything is written). Give both the same values.
#pragma once

#include <CLI/CLI.hpp>

#include "common/tree/tree_validator.h"

namespace assay {

inline void AddTreeLimitFlags(CLI::App& app, TreeLimits* limits) {
  app.add_option("--max-tree-depth", limits->max_depth, "refuse input trees deeper than this many directories")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--max-tree-entries", limits->max_entries,
                 "refuse input trees with more files, directories and symlinks than this (counted as written)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--max-tree-bytes", limits->max_total_bytes, "refuse input trees whose files add up to more bytes")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));
}

}  // namespace assay
