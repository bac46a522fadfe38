// A DirectoryLoader over a fixture's blobs.
#pragma once

#include "common/tree/tree_validator.h"
#include "tests/common/hostile_trees.h"

namespace assay::testing {

inline DirectoryLoader LoaderOf(const std::map<Digest, std::string>& blobs) {
  return [&blobs](const Digest& d) -> absl::StatusOr<reapi::Directory> {
    auto it = blobs.find(d);
    if (it == blobs.end()) return absl::NotFoundError("not in the CAS");
    reapi::Directory directory;
    if (!directory.ParseFromString(it->second)) return absl::InvalidArgumentError("not a Directory");
    return directory;
  };
}

}  // namespace assay::testing
