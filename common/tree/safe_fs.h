// File-system access that a hostile tree cannot redirect: everything is opened relative to an open
// directory descriptor, no symlink is ever followed, and nothing that exists is overwritten.
// Linux's openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) is used where the kernel has it; elsewhere
// the same walk is done one component at a time with O_NOFOLLOW.
#pragma once

#include <sys/stat.h>

#include <filesystem>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/digest/digest.h"

namespace assay {

class SpareDirectories;

// Owns a file descriptor.
class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { Reset(); }
  ScopedFd(ScopedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void Reset();

 private:
  int fd_ = -1;
};

// "dir/name", or just `name` at the top (dir empty): the tree-relative paths messages name.
std::string JoinRelative(absl::string_view dir, absl::string_view name);

// Output folders are walked one open descriptor per level: bounded, whatever a step built.
inline constexpr int kMaxOutputDepth = 256;

// Reads `want` bytes into `data` (retrying on EINTR); fewer only at the end of the file.
absl::StatusOr<size_t> ReadFull(int fd, char* data, size_t want);

// Opens a directory by path (the trusted part: a work or output directory we chose), refusing a
// symlink as the last component.
absl::StatusOr<ScopedFd> OpenDirectory(const std::filesystem::path& path);

// Opens `relative` (components separated by '/', no "..", no absolute path) beneath `dir`, failing
// if any component is a symlink. `flags` are open(2) flags for the last component (O_DIRECTORY to
// ask for a directory); O_NOFOLLOW and O_CLOEXEC are always added.
absl::StatusOr<ScopedFd> OpenBeneath(int dir, absl::string_view relative, int flags, mode_t mode = 0);

// Creates directory `name` (one segment) in `dir` and opens it; fails if anything of that name exists.
// With `spares`, a spare empty directory is moved there when the pool has one (spare_directories.h).
absl::StatusOr<ScopedFd> MakeDirectoryAt(int dir, absl::string_view name, SpareDirectories* spares = nullptr);

// A new file beneath a directory, written while its bytes are hashed. Commit() checks them against
// the expected digest; a file that was not committed (wrong bytes, an error) is removed.
class VerifiedFileWriter {
 public:
  // Creates `name` in `dir` (O_EXCL: never an existing entry, never through a symlink).
  static absl::StatusOr<VerifiedFileWriter> Create(int dir, absl::string_view name, const Digest& expected,
                                                   bool executable);
  // Opens or replaces `path` for a download the user asked for (a symlink there is not followed).
  static absl::StatusOr<VerifiedFileWriter> Replace(const std::filesystem::path& path, const Digest& expected,
                                                    bool executable);
  VerifiedFileWriter(VerifiedFileWriter&&) noexcept;
  VerifiedFileWriter& operator=(VerifiedFileWriter&&) = delete;
  ~VerifiedFileWriter();

  absl::Status Append(absl::string_view bytes);
  // DATA_LOSS naming the digest when the bytes written are not the blob.
  absl::Status Commit();
  int64_t written() const { return written_; }

 private:
  VerifiedFileWriter(ScopedFd dir, std::string name, ScopedFd file, Digest expected);
  ScopedFd dir_;
  std::string name_;
  ScopedFd file_;
  Digest expected_;
  std::unique_ptr<Sha256> hash_;
  int64_t written_ = 0;
  bool committed_ = false;
};

// Writes all of `bytes` to `fd`, retrying short writes.
absl::Status WriteAll(int fd, absl::string_view bytes);

}  // namespace assay
