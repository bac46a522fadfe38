// A client of the REAPI CAS and ByteStream services: uploads only what the server lacks, streams
// large blobs in chunks both ways so memory stays bounded, checks every byte it downloads against
// its digest, and gives every call a deadline and retries under one RetryPolicy.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/base/retrier.h"
#include "common/cas/blob_store.h"
#include "common/digest/resource_name.h"
#include "common/tree/merkle.h"
#include "common/tree/safe_fs.h"
#include "common/tree/tree_validator.h"
#include "common/tree/tree_writer.h"
#include "google/bytestream/bytestream.grpc.pb.h"

namespace assay {

class CasClient {
 public:
  // Blobs at most this large go in batch calls; larger ones through ByteStream.
  static constexpr int64_t kBatchBlobLimit = 1 << 20;
  static constexpr int64_t kBatchTotalLimit = 3 << 20;
  static constexpr size_t kStreamChunk = 1 << 20;

  CasClient(std::shared_ptr<grpc::Channel> channel, std::string instance_name, RetryPolicy retry = {});

  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests);

  struct UploadStats {
    int64_t blobs_sent = 0;
    int64_t bytes_sent = 0;
    int64_t blobs_present = 0;
  };
  // Uploads the blobs the server does not have yet.
  absl::StatusOr<UploadStats> Upload(const std::vector<TreeBlob>& blobs);
  absl::Status UploadBytes(const Digest& digest, const std::string& bytes);

  // A blob's bytes, checked against the digest (DATA_LOSS naming it when they differ).
  absl::StatusOr<std::string> ReadBlob(const Digest& digest);
  // Streams a blob into a file (replacing what is there, never through a symlink); the bytes are
  // checked against the digest and the file is removed when they differ.
  absl::Status DownloadToFile(const Digest& digest, const std::filesystem::path& path, bool executable);

  // Every Directory of the tree at `root` (through GetTree).
  absl::StatusOr<std::vector<reapi::Directory>> GetTree(const Digest& root);
  struct FetchStats {
    int64_t files = 0;
    int64_t bytes = 0;
    int64_t local_hits = 0;        // files served by the local cache
    int64_t fetched_bytes = 0;     // bytes that crossed the network
  };
  // Validates the tree at `root` (ValidateTree with the tree limits) and writes it under `dir`, which
  // must exist, with a TreeWriter. With a local cache set, files are taken from it when present and
  // stored in it when fetched. Every file's bytes are checked against its digest.
  // `known_tree`: the tree's directories when the caller has them already (the assignment carries
  // small trees); they are checked like fetched ones, and GetTree is called only if the root is not
  // among them.
  absl::StatusOr<FetchStats> Materialize(const Digest& root, const std::filesystem::path& dir,
                                         const std::vector<reapi::Directory>* known_tree = nullptr);
  void set_local_cache(BlobStore* cache) { local_cache_ = cache; }
  // Copies blobs (a step's outputs, just uploaded) into the local cache, so the cell's next steps on
  // this host find them there. Best effort: what cannot be copied is simply fetched later.
  void KeepLocally(const std::vector<TreeBlob>& blobs);
  void set_tree_limits(const TreeLimits& limits) { tree_limits_ = limits; }

  const std::string& instance_name() const { return instance_name_; }

 private:
  absl::Status WriteStream(const Digest& digest, const TreeBlob& blob);
  absl::Status BatchUpload(const std::vector<const TreeBlob*>& blobs);
  // Downloads a blob into `writer` through ByteStream.Read, resuming where a broken try stopped,
  // and commits it; with `tee`, the bytes also go there (the local cache).
  absl::Status StreamInto(const Digest& digest, VerifiedFileWriter* writer, BlobWriter* tee);
  // The deadline of one try moving `bytes`: the policy's, plus a second per MiB.
  absl::Time TransferDeadline(absl::Time deadline, int64_t bytes) const;

  // Materialize's parts, once the tree is laid out under `tree`.
  using FileRefs = std::vector<const TreeWriter::File*>;
  // Writes one file from bytes in memory, checked against its digest.
  static absl::Status WriteFromMemory(TreeWriter& tree, const TreeWriter::File& file, absl::string_view bytes);
  // Writes the files that need no fetching: empty ones, and what this host already has, copied from
  // its local cache. Returns the others.
  absl::StatusOr<FileRefs> WriteLocalFiles(TreeWriter& tree, const std::vector<TreeWriter::File>& files, FetchStats& stats);
  // Fetches and writes `remote`: small files in batches, large ones streamed.
  absl::Status FetchFiles(TreeWriter& tree, const FileRefs& remote, FetchStats& stats);
  // Fetches one batch of small files (`batch_bytes` in all) through BatchReadBlobs and writes them.
  absl::Status FetchBatch(TreeWriter& tree, const FileRefs& batch, int64_t batch_bytes, FetchStats& stats);

  std::string instance_name_;
  Retrier retrier_;
  TreeLimits tree_limits_;
  BlobStore* local_cache_ = nullptr;
  std::unique_ptr<reapi::ContentAddressableStorage::Stub> cas_;
  std::unique_ptr<google::bytestream::ByteStream::Stub> bytestream_;
};


// Opens a file blob for reading: beneath `blob.base_fd` without following symlinks when set.
absl::StatusOr<ScopedFd> OpenBlobFile(const TreeBlob& blob);

}  // namespace assay
