#include "common/digest/digest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include "absl/strings/escaping.h"
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

namespace {

// SHA-256 fetched from OpenSSL's provider once: EVP_sha256() makes every init look it up again (a
// locked search of the method store, a third of the cost of hashing a 1 KB file).
const EVP_MD* Sha256Method() {
  static const EVP_MD* const method = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return method;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), Sha256Method(), nullptr);
}

Sha256::~Sha256() { EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_)); }

void Sha256::Update(absl::string_view bytes) {
  EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size());
}

std::string Sha256::FinishHex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), out, &len);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(out), len));
}

namespace {

// A buffer to hash the open file `fd` with: the file's size and a byte more (its end seen in one
// read) up to 1 MiB, not zeroed. A zeroed 1 MiB vector per file cost far more than hashing a small
// file: above malloc's mmap threshold, each one was 256 pages mapped, faulted in, cleared and unmapped.
std::unique_ptr<char[]> HashBuffer(int fd, int64_t size_hint, size_t* size) {
  constexpr int64_t kMax = 1 << 20, kMin = 4096;
  struct stat st;
  const int64_t want = size_hint >= 0                                    ? size_hint + 1
                       : ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? st.st_size + 1
                                                                        : kMax;
  *size = static_cast<size_t>(std::clamp(want, kMin, kMax));
  return std::make_unique_for_overwrite<char[]>(*size);
}

}  // namespace

absl::StatusOr<Digest> DigestFd(int fd, int64_t size_hint) {
  Sha256 hasher;
  size_t size = 0;
  const std::unique_ptr<char[]> buffer = HashBuffer(fd, size_hint, &size);
  int64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd, buffer.get(), size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::DataLossError(absl::StrCat("read failed: ", std::strerror(errno)));
    if (n == 0) break;
    hasher.Update(absl::string_view(buffer.get(), static_cast<size_t>(n)));
    total += n;
  }
  return Digest::Create(hasher.FinishHex(), total);
}

absl::StatusOr<Digest> DigestFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  absl::StatusOr<Digest> digest = DigestFd(fd);
  ::close(fd);
  if (!digest.ok()) return absl::DataLossError(absl::StrCat("error reading ", path, ": ", digest.status().message()));
  return digest;
}

}  // namespace assay
