#include "common/base/file_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/base/fd_copies.h"
#include "common/base/spare_directories.h"

namespace assay {
namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path.string(), ": ", std::strerror(errno)));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error reading ", path.string()));
  return std::move(out).str();
}

absl::Status WriteFile(const fs::path& path, absl::string_view data, bool executable) {
  fs::path tmp = path;
  tmp += absl::StrCat(".tmp-", RandomHex(4));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, executable ? 0755 : 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", tmp.string(), ": ", std::strerror(errno)));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("cannot write ", tmp.string(), ": ", std::strerror(err)));
    }
    done += static_cast<size_t>(n);
  }
  CloseFd(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot rename to ", path.string(), ": ", std::strerror(err)));
  }
  return absl::OkStatus();
}

absl::Status MakeDirs(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create directory ", path.string(), ": ", ec.message()));
  return absl::OkStatus();
}

namespace {

absl::Status RemoveError(const fs::path& path) {
  return absl::InternalError(absl::StrCat("cannot remove ", path.string(), ": ", std::strerror(errno)));
}

// Empties the open directory `fd` (`shown` names it in errors): its subdirectories first, each opened
// beneath it with O_NOFOLLOW, so a symlink is removed, never followed. One openat and unlinkat per
// entry, where std::filesystem::remove_all resolved each entry's whole path twice (lstat, remove):
// a worker empties a task's folder after every task.
// With `spares`, an emptied subdirectory is kept there (when it is clean) instead of removed.
absl::Status EmptyDirectory(int fd, const fs::path& shown, SpareDirectories* spares) {
  auto listed = ListDirectory(fd);
  if (!listed.ok()) return RemoveError(shown);
  for (const DirectoryEntry& e : *listed) {
    const char* name = e.name.c_str();
    bool dir = e.type == DT_DIR;
    struct stat st;
    if (e.type == DT_UNKNOWN && ::fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) dir = S_ISDIR(st.st_mode);
    if (dir) {
      const int sub = ::openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0 && errno == ENOENT) continue;
      if (sub < 0) return RemoveError(shown / e.name);
      absl::Status emptied = EmptyDirectory(sub, shown / e.name, spares);
      const bool kept = emptied.ok() && spares != nullptr && spares->Keep(fd, name, sub);
      CloseFd(sub);
      if (!emptied.ok()) return emptied;
      if (kept) continue;
    }
    if (::unlinkat(fd, name, dir ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) return RemoveError(shown / e.name);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<DirectoryEntry>> ListDirectory(int fd) {
  std::vector<DirectoryEntry> entries;
  alignas(struct dirent64) char buffer[8192];
  while (true) {
    const ssize_t n = ::getdents64(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("cannot list a directory: ", std::strerror(errno)));
    if (n == 0) return entries;
    for (ssize_t at = 0; at < n;) {
      const auto* e = reinterpret_cast<const struct dirent64*>(buffer + at);
      at += e->d_reclen;
      const absl::string_view name = e->d_name;
      if (name == "." || name == "..") continue;
      entries.push_back({std::string(name), e->d_type, e->d_ino});
    }
  }
}

absl::Status RemoveAll(const fs::path& path, SpareDirectories* spares) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return errno == ENOENT ? absl::OkStatus() : RemoveError(path);
  if (S_ISDIR(st.st_mode)) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return RemoveError(path);
    absl::Status emptied = EmptyDirectory(fd, path, spares);
    bool kept = false;
    if (emptied.ok() && spares != nullptr && path.has_filename()) {
      const fs::path parent = path.parent_path().empty() ? fs::path(".") : path.parent_path();
      const int parent_fd = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      kept = parent_fd >= 0 && spares->Keep(parent_fd, path.filename().c_str(), fd);
      if (parent_fd >= 0) CloseFd(parent_fd);
    }
    CloseFd(fd);
    if (!emptied.ok()) return emptied;
    if (kept) return absl::OkStatus();
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) return RemoveError(path);
    return absl::OkStatus();
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return RemoveError(path);
  return absl::OkStatus();
}

absl::Status CheckRelativePath(absl::string_view path, absl::string_view what) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  if (path.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' must be relative"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part == "..") {
      return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' leaves its directory (..)"));
    }
  }
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " contains a NUL byte"));
  }
  return absl::OkStatus();
}

ScopedTempDir::ScopedTempDir(absl::string_view prefix) {
  std::string pattern = (fs::temp_directory_path() / absl::StrCat(prefix, "-XXXXXX")).string();
  char* made = ::mkdtemp(pattern.data());
  path_ = made ? fs::path(made) : fs::path(pattern);
}

ScopedTempDir::~ScopedTempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string RandomHex(size_t bytes) {
  // The kernel's generator (getrandom: no file, no per-thread state to seed; OpenSSL's RAND_bytes
  // seeded a generator in every new thread, and a worker's task runs on a thread of its own).
  std::string raw(bytes, '\0');
  for (size_t got = 0; got < bytes;) {
    const ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      // Only a kernel without getrandom (before 3.17) gets here: names must still not repeat.
      spdlog::critical("getrandom failed: {}", std::strerror(errno));
      std::abort();
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(2 * bytes, '0');
  for (size_t i = 0; i < bytes; ++i) {
    const auto c = static_cast<unsigned char>(raw[i]);
    hex[2 * i] = kHex[c >> 4];
    hex[2 * i + 1] = kHex[c & 15];
  }
  return hex;
}

}  // namespace assay
