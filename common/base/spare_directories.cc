#include "common/base/spare_directories.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"

namespace assay {

absl::StatusOr<std::unique_ptr<SpareDirectories>> SpareDirectories::Open(const std::filesystem::path& dir,
                                                                         size_t capacity) {
  // What a pool of an earlier run held is not known to be clean: it starts empty.
  if (absl::Status s = RemoveAll(dir); !s.ok()) return s;
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot open ", dir.string(), ": ", std::strerror(errno)));
  return std::unique_ptr<SpareDirectories>(new SpareDirectories(fd, capacity));
}

SpareDirectories::~SpareDirectories() { ::close(fd_); }

int SpareDirectories::Take(int parent, const char* name) {
  std::string spare;
  {
    absl::MutexLock lock(&mu_);
    if (names_.empty()) return -1;
    spare = std::move(names_.back());
    names_.pop_back();
  }
  // Never over an existing entry (a plain rename would replace an empty directory of that name).
  if (::renameat2(fd_, spare.c_str(), parent, name, RENAME_NOREPLACE) != 0) {
    const int error = errno;  // EEXIST: `name` is taken, as mkdir would have said
    if (error != ENOENT) {
      absl::MutexLock lock(&mu_);
      names_.push_back(std::move(spare));  // still in the pool
    }
    errno = error;
    return -1;
  }
  const int fd = ::openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) ::unlinkat(parent, name, AT_REMOVEDIR);  // the caller makes it afresh
  return fd;
}

bool SpareDirectories::Keep(int parent, const char* name, int fd) {
  // Clean: a directory of ours, empty (two links: itself and "."; entries gone), no extended
  // attributes (which include ACLs, and could carry something from one task to the next).
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != euid_ || st.st_nlink != 2) return false;
  if (::flistxattr(fd, nullptr, 0) != 0) return false;
  if ((st.st_mode & 07777) != 0755 && ::fchmod(fd, 0755) != 0) return false;  // comes back as mkdir makes it
  std::string spare;
  {
    absl::MutexLock lock(&mu_);
    if (names_.size() + reserved_ >= capacity_) return false;
    ++reserved_;
    spare = absl::StrCat(next_++);
  }
  const bool kept = ::renameat2(parent, name, fd_, spare.c_str(), RENAME_NOREPLACE) == 0;
  absl::MutexLock lock(&mu_);
  --reserved_;
  if (kept) names_.push_back(std::move(spare));
  return kept;
}

size_t SpareDirectories::size() const {
  absl::MutexLock lock(&mu_);
  return names_.size();
}

}  // namespace assay
