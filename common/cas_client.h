// A client of the REAPI CAS and ByteStream services: uploads only what the server lacks, and
// streams large blobs in chunks both ways so memory stays bounded.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/statusor.h"
#include "build/bazel/remote/execution/v2/remote_execution.grpc.pb.h"
#include "common/blob_store.h"
#include "common/merkle.h"
#include "google/bytestream/bytestream.grpc.pb.h"

namespace assay {

class CasClient {
 public:
  // Blobs at most this large go in batch calls; larger ones through ByteStream.
  static constexpr int64_t kBatchBlobLimit = 1 << 20;
  static constexpr int64_t kBatchTotalLimit = 3 << 20;
  static constexpr size_t kStreamChunk = 1 << 20;

  CasClient(std::shared_ptr<grpc::Channel> channel, std::string instance_name);

  absl::StatusOr<std::vector<Digest>> FindMissing(const std::vector<Digest>& digests);

  struct UploadStats {
    int64_t blobs_sent = 0;
    int64_t bytes_sent = 0;
    int64_t blobs_present = 0;
  };
  // Uploads the blobs the server does not have yet.
  absl::StatusOr<UploadStats> Upload(const std::vector<TreeBlob>& blobs);
  absl::Status UploadBytes(const Digest& digest, const std::string& bytes);

  absl::StatusOr<std::string> ReadBlob(const Digest& digest);
  // Streams a blob into a file (created with the given mode bits).
  absl::Status DownloadToFile(const Digest& digest, const std::filesystem::path& path, bool executable);

  // Every Directory of the tree at `root` (through GetTree), keyed by digest.
  absl::StatusOr<std::vector<reapi::Directory>> GetTree(const Digest& root);
  struct FetchStats {
    int64_t files = 0;
    int64_t bytes = 0;
    int64_t local_hits = 0;        // files served by the local cache
    int64_t fetched_bytes = 0;     // bytes that crossed the network
  };
  // Writes the tree at `root` under `dir` (which must exist). With a local cache set, files are taken
  // from it when present and stored in it when fetched.
  absl::StatusOr<FetchStats> Materialize(const Digest& root, const std::filesystem::path& dir);
  void set_local_cache(BlobStore* cache) { local_cache_ = cache; }

  const std::string& instance_name() const { return instance_name_; }

 private:
  absl::Status WriteStream(const Digest& digest, const TreeBlob& blob);
  absl::Status BatchUpload(const std::vector<const TreeBlob*>& blobs);

  absl::Status CopyToLocal(const Digest& digest, const std::filesystem::path& file);

  std::string instance_name_;
  BlobStore* local_cache_ = nullptr;
  std::unique_ptr<reapi::ContentAddressableStorage::Stub> cas_;
  std::unique_ptr<google::bytestream::ByteStream::Stub> bytestream_;
};

// "{instance}/blobs/{hash}/{size}" and "{instance}/uploads/{uuid}/blobs/{hash}/{size}".
std::string ReadResourceName(absl::string_view instance, const Digest& digest);
std::string WriteResourceName(absl::string_view instance, absl::string_view uuid, const Digest& digest);

}  // namespace assay
