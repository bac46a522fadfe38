#include "common/tree/safe_fs.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/fd_copies.h"
#include "common/base/spare_directories.h"

namespace assay {
namespace {

absl::Status Errno(absl::string_view what, absl::string_view path, int err) {
  std::string message = absl::StrCat(what, " '", path, "': ", std::strerror(err));
  if (err == ELOOP || err == EXDEV) message += " (a symlink is in the way; it is never followed)";
  if (err == EEXIST) return absl::AlreadyExistsError(absl::StrCat(message, " (an existing entry is never replaced)"));
  if (err == ENOENT) return absl::NotFoundError(message);
  return absl::InternalError(message);
}

// -1 unknown, 0 no, 1 yes.
std::atomic<int> g_have_openat2{-1};

int Openat2(int dir, const char* path, int flags, mode_t mode) {
  struct open_how how {};
  how.flags = static_cast<uint64_t>(flags);
  how.mode = flags & (O_CREAT | O_TMPFILE) ? mode : 0;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  return static_cast<int>(::syscall(SYS_openat2, dir, path, &how, sizeof(how)));
}

}  // namespace

std::string JoinRelative(absl::string_view dir, absl::string_view name) {
  return dir.empty() ? std::string(name) : absl::StrCat(dir, "/", name);
}

absl::StatusOr<size_t> ReadFull(int fd, char* data, size_t want) {
  size_t got = 0;
  while (got < want) {
    ssize_t n = ::read(fd, data + got, want - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("read failed: ", std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

void ScopedFd::Reset() {
  CloseFd(fd_);
  fd_ = -1;
}

absl::Status WriteAll(int fd, absl::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("write failed: ", std::strerror(errno)));
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::StatusOr<ScopedFd> OpenDirectory(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open directory", path.string(), errno);
  return ScopedFd(fd);
}

absl::StatusOr<ScopedFd> OpenBeneath(int dir, absl::string_view relative, int flags, mode_t mode) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(relative, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") return absl::InvalidArgumentError(absl::StrCat("path '", relative, "' climbs with '..'"));
    parts.emplace_back(part);
  }
  if (!relative.empty() && relative.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("path '", relative, "' is absolute"));
  }
  flags |= O_NOFOLLOW | O_CLOEXEC;
  if (parts.empty()) {
    int fd = ::openat(dir, ".", (flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_DIRECTORY);
    if (fd < 0) return Errno("cannot open", ".", errno);
    return ScopedFd(fd);
  }
  const std::string joined = absl::StrJoin(parts, "/");
  if (g_have_openat2.load(std::memory_order_relaxed) != 0) {
    int fd = Openat2(dir, joined.c_str(), flags, mode);
    if (fd >= 0) {
      g_have_openat2.store(1, std::memory_order_relaxed);
      return ScopedFd(fd);
    }
    if (errno != ENOSYS && errno != EPERM) return Errno("cannot open", joined, errno);
    g_have_openat2.store(0, std::memory_order_relaxed);  // an old kernel, or a seccomp filter
  }
  // One component at a time, never following a symlink.
  ScopedFd current;
  int at = dir;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    int fd = ::openat(at, parts[i].c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open", joined, errno == ENOTDIR ? ELOOP : errno);
    current = ScopedFd(fd);
    at = current.get();
  }
  int fd = ::openat(at, parts.back().c_str(), flags, mode);
  if (fd < 0) return Errno("cannot open", joined, errno);
  return ScopedFd(fd);
}

absl::StatusOr<ScopedFd> MakeDirectoryAt(int dir, absl::string_view name, SpareDirectories* spares) {
  const std::string n(name);
  if (spares != nullptr) {
    if (const int taken = spares->Take(dir, n.c_str()); taken >= 0) return ScopedFd(taken);
  }
  if (::mkdirat(dir, n.c_str(), 0755) != 0) return Errno("cannot create directory", n, errno);
  int fd = ::openat(dir, n.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open directory", n, errno);
  return ScopedFd(fd);
}

VerifiedFileWriter::VerifiedFileWriter(ScopedFd dir, std::string name, ScopedFd file, Digest expected)
    : dir_(std::move(dir)),
      name_(std::move(name)),
      file_(std::move(file)),
      expected_(std::move(expected)),
      hash_(std::make_unique<Sha256>()) {}

VerifiedFileWriter::VerifiedFileWriter(VerifiedFileWriter&& other) noexcept
    : dir_(std::move(other.dir_)),
      name_(std::move(other.name_)),
      file_(std::move(other.file_)),
      expected_(std::move(other.expected_)),
      hash_(std::move(other.hash_)),
      written_(other.written_),
      committed_(std::exchange(other.committed_, true)) {}

VerifiedFileWriter::~VerifiedFileWriter() {
  if (committed_ || !dir_.valid()) return;
  file_.Reset();
  ::unlinkat(dir_.get(), name_.c_str(), 0);
}

absl::StatusOr<VerifiedFileWriter> VerifiedFileWriter::Create(int dir, absl::string_view name, const Digest& expected,
                                                              bool executable) {
  const std::string n(name);
  if (n.empty() || n == "." || n == ".." || n.find('/') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", name, "' is not a file name"));
  }
  int fd = ::openat(dir, n.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, executable ? 0755 : 0644);
  if (fd < 0) return Errno("cannot create", n, errno);
  int dir_copy = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  if (dir_copy < 0) {
    int err = errno;
    ::close(fd);
    ::unlinkat(dir, n.c_str(), 0);
    return Errno("cannot duplicate directory descriptor for", n, err);
  }
  return VerifiedFileWriter(ScopedFd(dir_copy), n, ScopedFd(fd), expected);
}

absl::StatusOr<VerifiedFileWriter> VerifiedFileWriter::Replace(const std::filesystem::path& path, const Digest& expected,
                                                               bool executable) {
  std::filesystem::path parent = path.parent_path();
  auto dir = OpenDirectory(parent.empty() ? std::filesystem::path(".") : parent);
  if (!dir.ok()) return dir.status();
  const std::string name = path.filename().string();
  // A symlink or a file left there is removed first, so the new file never goes through it.
  if (::unlinkat(dir->get(), name.c_str(), 0) != 0 && errno != ENOENT) return Errno("cannot replace", path.string(), errno);
  return Create(dir->get(), name, expected, executable);
}

absl::Status VerifiedFileWriter::Append(absl::string_view bytes) {
  written_ += static_cast<int64_t>(bytes.size());
  if (written_ > expected_.size()) {
    return absl::DataLossError(absl::StrCat("blob ", expected_.ToString(), ": received more than ", expected_.size(),
                                            " bytes; the file was removed"));
  }
  hash_->Update(bytes);
  return WriteAll(file_.get(), bytes);
}

absl::Status VerifiedFileWriter::Commit() {
  const std::string hash = hash_->FinishHex();
  if (written_ != expected_.size() || hash != expected_.hash()) {
    return absl::DataLossError(absl::StrCat("blob ", expected_.ToString(), ": the bytes received (", written_,
                                            " bytes, sha256 ", hash, ") do not match the digest; the file was removed"));
  }
  file_.Reset();
  committed_ = true;
  return absl::OkStatus();
}

}  // namespace assay
