// A validated content digest: SHA-256 of the bytes plus their size, as REAPI uses it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "build/bazel/remote/execution/v2/remote_execution.pb.h"

namespace assay {

namespace reapi = build::bazel::remote::execution::v2;

class Digest {
 public:
  // The empty blob.
  Digest();

  // Validates a lower-case 64-hex-character hash and a non-negative size.
  static absl::StatusOr<Digest> Create(absl::string_view hash, int64_t size);
  static absl::StatusOr<Digest> FromProto(const reapi::Digest& proto);
  // Parses "hash/size".
  static absl::StatusOr<Digest> Parse(absl::string_view hash_slash_size);

  static Digest OfBytes(absl::string_view bytes);
  static Digest OfMessage(const google::protobuf::MessageLite& message);

  const std::string& hash() const { return hash_; }
  int64_t size() const { return size_; }
  bool empty_blob() const { return size_ == 0; }

  reapi::Digest ToProto() const;
  std::string ToString() const;  // "hash/size"
  // 40 bytes: the raw hash then the size, big-endian; sorts and compares like the digest.
  std::string Key() const;
  static absl::StatusOr<Digest> FromKey(absl::string_view key);

  friend bool operator==(const Digest& a, const Digest& b) = default;
  friend auto operator<=>(const Digest& a, const Digest& b) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Digest& d) {
    return H::combine(std::move(h), d.hash_, d.size_);
  }

 private:
  Digest(std::string hash, int64_t size) : hash_(std::move(hash)), size_(size) {}
  std::string hash_;
  int64_t size_ = 0;
};

// Incremental SHA-256 for streams and files.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(absl::string_view bytes);
  // Returns the lower-case hex hash; the hasher is spent after.
  std::string FinishHex();

 private:
  void* ctx_;
};

// Digest of a file, read in chunks.
absl::StatusOr<Digest> DigestFile(const std::string& path);
// Digest of what is left to read from an open file. `size_hint`: its size where the caller knows it
// (from its own fstat), which sizes the read buffer; the digest is of what is read either way.
absl::StatusOr<Digest> DigestFd(int fd, int64_t size_hint = -1);

}  // namespace assay
