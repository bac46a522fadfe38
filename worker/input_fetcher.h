// A step's inputs onto this host, and its outputs into this host's local cache. Materialize checks
// the input tree again here (the coordinator did at submission) and writes it beneath the step's
// folder with a TreeWriter: each file from the local cache when it is there, else from the CAS (small
// files in batches, large ones streamed), every file's bytes checked against its digest.
#pragma once

#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "build/bazel/remote/execution/v2/remote_execution.pb.h"
#include "common/cas/blob_store.h"
#include "common/digest/digest.h"
#include "common/remote/cas_client.h"
#include "common/tree/merkle.h"
#include "common/tree/tree_validator.h"
#include "common/base/spare_directories.h"
#include "common/tree/tree_writer.h"
#include "worker/input_links.h"
#include "worker/kept_folders.h"

namespace assay {

class InputFetcher {
 public:
  // `local_cache`: this host's cache of blobs, or null for none.
  InputFetcher(CasClient* cas, BlobStore* local_cache, TreeLimits limits)
      : cas_(cas), local_cache_(local_cache), limits_(limits) {}
  // Input files as hard links (input_links.h) where a Materialize call asks for them; null: none.
  void set_links(InputLinks* links) { links_ = links; }
  bool links() const { return links_ != nullptr; }
  // Where the folders Materialize is given come from (kept_folders.h); null: none are.
  void set_kept_folders(KeptFolders* kept) { kept_folders_ = kept; }

  struct Stats {
    int64_t files = 0;
    int64_t bytes = 0;
    int64_t local_hits = 0;     // files served by the local cache
    int64_t fetched_bytes = 0;  // bytes that crossed the network
    int64_t linked = 0;         // files linked to this host's copy (input_links.h)
    int64_t kept = 0;           // of those, already in place in a kept folder (kept_folders.h)
    InputLinks::Released released;  // copies a kept folder had and the tree did not want, released
  };
  // Validates the tree at `root` (ValidateTree with the tree limits) and writes it under `dir`, which
  // must exist. `known_tree`: the tree's directories when the caller has them already (the
  // assignment carries small trees); they are checked like fetched ones (by their digests), and
  // GetTree is called only if the root is not among them.
  // `claims`: link files to this host's copies where it can (the caller has the step run in the
  // sandbox) and claim them for the task, to be Released once its folder is gone; null: copies.
  // `spares`: its folders from these spare directories where there are some; null: all made.
  // `kept`: `dir` is a kept folder's work/ (KeptFolders::Take, with `claims`): it is fitted to the
  // tree first, and what it has right stays.
  absl::StatusOr<Stats> Materialize(const Digest& root, const std::filesystem::path& dir,
                                    const std::vector<reapi::Directory>* known_tree = nullptr,
                                    InputLinks::Claims* claims = nullptr, SpareDirectories* spares = nullptr,
                                    KeptFolders::Folder* kept = nullptr);

  // Copies blobs (a step's outputs, just uploaded) into the local cache, so the cell's next steps on
  // this host find them there. Best effort: what cannot be copied is simply fetched later.
  void KeepLocally(const std::vector<TreeBlob>& blobs);

 private:
  using FileRefs = std::vector<const TreeWriter::File*>;
  // Writes one file from bytes in memory, checked against its digest.
  static absl::Status WriteFromMemory(TreeWriter& tree, const TreeWriter::File& file, absl::string_view bytes);
  // Writes the files that need no fetching: empty ones, and what this host already has, copied from
  // its local cache. Returns the others.
  absl::StatusOr<FileRefs> WriteLocalFiles(TreeWriter& tree, const std::vector<TreeWriter::File>& files, Stats& stats,
                                           InputLinks::Claims* claims, std::vector<bool>* linked);
  // Fetches and writes `remote`: small files in batches, large ones streamed.
  absl::Status FetchFiles(TreeWriter& tree, const FileRefs& remote, Stats& stats);
  // Fetches one batch of small files through BatchRead and writes them.
  absl::Status FetchBatch(TreeWriter& tree, const FileRefs& batch, Stats& stats);

  CasClient* const cas_;
  BlobStore* const local_cache_;
  const TreeLimits limits_;
  InputLinks* links_ = nullptr;
  KeptFolders* kept_folders_ = nullptr;
};

}  // namespace assay
