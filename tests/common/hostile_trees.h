// Hand-made REAPI trees of the kinds a hostile client can send, each with a valid assay.yaml at its
// root (so only the tree's own defect can make a submission fail). Used by the validator and
// materializer unit tests and by the integration test that sends them straight to the services.
#pragma once

#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/digest/digest.h"

namespace assay::testing {

// A tree under construction: every blob (serialized directories and file contents) by digest.
class TreeBuilder {
 public:
  Digest File(const std::string& contents);
  // Adds a directory exactly as given (no sorting, no checks) and returns its digest.
  Digest Dir(const reapi::Directory& directory);
  const std::map<Digest, std::string>& blobs() const { return blobs_; }
  // Drops a blob, to make a tree reference something the CAS does not have.
  void Forget(const Digest& digest) { blobs_.erase(digest); }

 private:
  std::map<Digest, std::string> blobs_;
};

// Entry helpers for a Directory message.
void AddFile(reapi::Directory* d, const std::string& name, const Digest& digest, bool executable = false);
void AddDir(reapi::Directory* d, const std::string& name, const Digest& digest);
void AddLink(reapi::Directory* d, const std::string& name, const std::string& target);

struct HostileTree {
  std::string name;           // test name
  Digest root;
  std::map<Digest, std::string> blobs;
  std::string path;           // the path inside the tree that the refusal must name
  absl::StatusCode code = absl::StatusCode::kInvalidArgument;
  std::string outside_name;   // a name the tree tries to create outside its root (checked for absence)
};

// The pipeline every fixture tree carries: one step that would write a marker file.
inline constexpr char kFixturePipeline[] =
    "name: hostile\nsteps:\n  - id: touch\n    run: echo ran > marker.txt\n";

std::vector<HostileTree> HostileTrees();
// How a refusal names the fixture's path: 'PATH', or "the root directory".
std::string QuotedPath(const HostileTree& tree);
// GoogleTest prints a fixture by its name.
void PrintTo(const HostileTree& tree, std::ostream* os);
// The same shape as the fixtures but well-formed (a subdirectory, a file, an inside symlink): it must
// be accepted, which shows the fixtures fail for their defect alone.
HostileTree BenignTree();

}  // namespace assay::testing
