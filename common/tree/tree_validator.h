// Validation of REAPI input trees that arrive from the network. The coordinator runs it on every
// submitted tree before a job exists, and every worker runs it again before it writes anything.
// A tree passes only when materializing it cannot touch anything outside its root:
//  - every name is one path segment: not empty, not "." or "..", no '/', no NUL;
//  - the files, directories and symlinks of a Directory are each sorted by name, and no name is
//    used twice across the three lists (REAPI requires both);
//  - symlink targets are relative and, resolved inside the tree (through other symlinks too), never
//    climb above the root; absolute targets are refused, as Capabilities advertises (DISALLOWED);
//  - depth, entries and total file bytes are bounded, counted over the tree as it would be written
//    (a directory shared by many parents counts every time).
// Errors are INVALID_ARGUMENT (FAILED_PRECONDITION for a directory missing from the CAS) and name the
// offending path inside the tree.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/digest/digest.h"

namespace assay {

struct TreeLimits {
  int max_depth = 256;                        // directories below the root
  int64_t max_entries = 1'000'000;            // files + directories + symlinks, as written
  int64_t max_total_bytes = 64LL << 30;       // sum of file sizes, as written
  static constexpr int kMaxSymlinkHops = 40;  // as Linux's MAXSYMLINKS
};

// What a valid tree holds, counted as it would be written.
struct TreeSummary {
  int64_t files = 0;
  int64_t directories = 0;
  int64_t symlinks = 0;
  int64_t file_bytes = 0;
  int depth = 0;
};

// Loads a Directory by digest; NotFound when the CAS does not have it.
using DirectoryLoader = std::function<absl::StatusOr<reapi::Directory>(const Digest&)>;

absl::StatusOr<TreeSummary> ValidateTree(const Digest& root, const DirectoryLoader& load, const TreeLimits& limits);

// One entry name: a single, non-empty path segment other than "." and "..", without '/' or NUL.
// `path` is where the entry is, for the message.
absl::Status CheckEntryName(absl::string_view name, absl::string_view path);

// The checks of one Directory on its own: names, order, uniqueness, digests. `path` is its path
// inside the tree ("" for the root).
absl::Status ValidateDirectory(const reapi::Directory& directory, absl::string_view path);

// Why a symlink in directory `dir` (relative to the root, "" for the root) with this target would
// leave the root, judged by name alone: "is empty", "is absolute", "contains a NUL byte", "points
// outside ..."; empty when it stays inside.
std::string SymlinkEscapesByName(absl::string_view dir, absl::string_view target);

// A path inside the tree for messages: printable, with control bytes and NUL escaped.
std::string PrintablePath(absl::string_view parent, absl::string_view name);

}  // namespace assay
