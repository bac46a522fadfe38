// libFuzzer target: tree validation on any REAPI Tree message (root + children). A tree that
// validates must be writable by TreeWriter (directories and symlinks), and what it writes stays
// inside its folder: "valid" and "safe to materialize" are the same thing.
#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include <google/protobuf/stubs/logging.h>

#include "absl/container/flat_hash_map.h"
#include "common/base/file_util.h"
#include "common/tree/tree_validator.h"
#include "common/tree/tree_writer.h"

namespace {
namespace fs = std::filesystem;

const fs::path* g_scratch = nullptr;

// The fuzzer's scratch folder, removed when the fuzzer exits (libFuzzer ends with exit()).
const fs::path& Scratch() {
  if (g_scratch == nullptr) {
    g_scratch = new fs::path(fs::temp_directory_path() / ("assay-fuzz-tree-" + assay::RandomHex(4)));
    fs::create_directories(*g_scratch);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(*g_scratch, ec);
    });
  }
  return *g_scratch;
}

}  // namespace

// Invalid UTF-8 in string fields is an expected parse failure; protobuf need not log each one.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  assay::reapi::Tree tree;
  if (!tree.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::flat_hash_map<assay::Digest, const assay::reapi::Directory*> by_digest;
  for (const auto& child : tree.children()) by_digest[assay::Digest::OfMessage(child)] = &child;
  const assay::Digest root = assay::Digest::OfMessage(tree.root());
  by_digest[root] = &tree.root();
  assay::DirectoryLoader load = [&](const assay::Digest& d) -> absl::StatusOr<assay::reapi::Directory> {
    auto it = by_digest.find(d);
    if (it == by_digest.end()) return absl::NotFoundError("missing");
    return *it->second;
  };
  assay::TreeLimits limits;
  limits.max_depth = 32;
  limits.max_entries = 2000;
  if (!assay::ValidateTree(root, load, limits).ok()) return 0;

  const fs::path work = Scratch() / "work";
  fs::remove_all(Scratch());
  fs::create_directories(work);
  auto writer = assay::TreeWriter::Open(work, limits);
  if (!writer.ok()) std::abort();
  if (!(*writer)->Layout(root, load).ok()) std::abort();        // a valid tree's directories are writable
  if (!(*writer)->FinishSymlinks().ok()) std::abort();          // and so are its symlinks
  for (const auto& entry : fs::directory_iterator(Scratch())) {
    if (entry.path() != work) std::abort();                     // nothing beside the work directory
  }
  return 0;
}
