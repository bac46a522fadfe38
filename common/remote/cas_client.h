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
#include "common/remote/direct_blob_access.h"
#include "common/tree/merkle.h"
#include "common/tree/safe_fs.h"
#include "common/tree/tree_validator.h"
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

  // Streams a blob into `writer` through ByteStream.Read, resuming where a broken try stopped, and
  // commits it (the writer checks the digest); with `tee`, the bytes also go there (a local cache),
  // committed only when the first try delivered them all.
  absl::Status ReadInto(const Digest& digest, VerifiedFileWriter* writer, BlobWriter* tee);
  // Small blobs (each at most kBatchBlobLimit, kBatchTotalLimit in all, no digest twice) in one
  // BatchReadBlobs call: each entry as the server answered it, with its own status; the bytes are
  // not checked here (whoever writes them checks them against their digest).
  struct BatchEntry {
    Digest digest;
    absl::Status status;
    std::string data;
  };
  absl::StatusOr<std::vector<BatchEntry>> BatchRead(const std::vector<Digest>& digests);

  // Every Directory of the tree at `root` (through GetTree), at most the tree limits' entries.
  absl::StatusOr<std::vector<reapi::Directory>> GetTree(const Digest& root);
  void set_tree_limits(const TreeLimits& limits) { tree_limits_ = limits; }

  const std::string& instance_name() const { return instance_name_; }
  // Large blobs moved in the coordinator's bucket itself (direct_blob_access.h), and how many.
  const DirectBlobAccess& direct() const { return direct_; }
  // false: every blob through the coordinator (ByteStream), as other REAPI clients send them.
  void set_direct_access(bool on) { direct_.set_enabled(on); }

 private:
  absl::Status WriteStream(const Digest& digest, const TreeBlob& blob);
  absl::Status BatchUpload(const std::vector<const TreeBlob*>& blobs);
  // The deadline of one try moving `bytes`: the policy's, plus a second per MiB.
  absl::Time TransferDeadline(absl::Time deadline, int64_t bytes) const;

  std::string instance_name_;
  Retrier retrier_;
  TreeLimits tree_limits_;
  std::unique_ptr<reapi::ContentAddressableStorage::Stub> cas_;
  std::unique_ptr<google::bytestream::ByteStream::Stub> bytestream_;
  DirectBlobAccess direct_;
};


// Opens a file blob for reading: beneath `blob.base_fd` without following symlinks when set.
absl::StatusOr<ScopedFd> OpenBlobFile(const TreeBlob& blob);

}  // namespace assay
