#include "common/digest/digest.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace assay {
namespace {

constexpr char kEmptyHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

bool IsLowerHex(absl::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

int HexValue(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

}  // namespace

Digest::Digest() : hash_(kEmptyHash), size_(0) {}

absl::StatusOr<Digest> Digest::Create(absl::string_view hash, int64_t size) {
  if (hash.size() != 64 || !IsLowerHex(hash)) {
    return absl::InvalidArgumentError(
        absl::StrCat("digest hash '", hash.substr(0, 80), "' is not 64 lower-case hex characters (SHA-256)"));
  }
  if (size < 0) {
    return absl::InvalidArgumentError(absl::StrCat("digest size ", size, " is negative"));
  }
  if (size == 0 && hash != kEmptyHash) {
    return absl::InvalidArgumentError(absl::StrCat("digest ", hash, "/0 has size 0 but is not the empty blob"));
  }
  return Digest(std::string(hash), size);
}

absl::StatusOr<Digest> Digest::FromProto(const reapi::Digest& proto) {
  return Create(proto.hash(), proto.size_bytes());
}

absl::StatusOr<Digest> Digest::Parse(absl::string_view text) {
  size_t slash = text.find('/');
  int64_t size = 0;
  if (slash == absl::string_view::npos || !absl::SimpleAtoi(text.substr(slash + 1), &size)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text.substr(0, 100), "' is not a digest of the form HASH/SIZE"));
  }
  return Create(text.substr(0, slash), size);
}

Digest Digest::OfBytes(absl::string_view bytes) {
  Sha256 hasher;
  hasher.Update(bytes);
  return Digest(hasher.FinishHex(), static_cast<int64_t>(bytes.size()));
}

Digest Digest::OfMessage(const google::protobuf::MessageLite& message) {
  return OfBytes(message.SerializeAsString());
}

reapi::Digest Digest::ToProto() const {
  reapi::Digest proto;
  proto.set_hash(hash_);
  proto.set_size_bytes(size_);
  return proto;
}

std::string Digest::ToString() const { return absl::StrCat(hash_, "/", size_); }

std::string Digest::Key() const {
  std::string key(40, '\0');
  for (size_t i = 0; i < 32; ++i) {
    key[i] = static_cast<char>(HexValue(hash_[2 * i]) << 4 | HexValue(hash_[2 * i + 1]));
  }
  uint64_t size = static_cast<uint64_t>(size_);
  for (int i = 0; i < 8; ++i) key[32 + i] = static_cast<char>(size >> (56 - 8 * i));
  return key;
}

absl::StatusOr<Digest> Digest::FromKey(absl::string_view key) {
  if (key.size() != 40) return absl::InvalidArgumentError("digest key is not 40 bytes");
  std::string hex;
  hex.reserve(64);
  for (size_t i = 0; i < 32; ++i) absl::StrAppendFormat(&hex, "%02x", static_cast<unsigned char>(key[i]));
  uint64_t size = 0;
  for (int i = 0; i < 8; ++i) size = size << 8 | static_cast<unsigned char>(key[32 + i]);
  return Create(hex, static_cast<int64_t>(size));
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), EVP_sha256(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::Update(absl::string_view bytes) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size());
}

std::string Sha256::FinishHex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out, &len);
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) absl::StrAppendFormat(&hex, "%02x", out[i]);
  return hex;
}

absl::StatusOr<Digest> DigestFd(int fd) {
  Sha256 hasher;
  std::vector<char> buffer(1 << 20);
  int64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::DataLossError(absl::StrCat("read failed: ", std::strerror(errno)));
    if (n == 0) break;
    hasher.Update(absl::string_view(buffer.data(), static_cast<size_t>(n)));
    total += n;
  }
  return Digest::Create(hasher.FinishHex(), total);
}

absl::StatusOr<Digest> DigestFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  Sha256 hasher;
  std::vector<char> buffer(1 << 20);
  int64_t total = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize n = in.gcount();
    if (n <= 0) break;
    hasher.Update(absl::string_view(buffer.data(), static_cast<size_t>(n)));
    total += n;
  }
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path));
  return Digest::Create(hasher.FinishHex(), total);
}

}  // namespace assay
