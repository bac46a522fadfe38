#include "worker/input_links.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"

namespace assay {
namespace {

int64_t Nanos(const struct timespec& t) { return static_cast<int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

// The granularity of the time-stamps of the file system of `dir`: a file's time set to a known
// nanosecond and read back (ext4, XFS, btrfs, tmpfs: 1 ns; ext4 with small inodes: 1 s). When the
// probe cannot tell, 2 s.
int64_t ProbeTimeStep(int dir) {
  constexpr char kProbe[] = ".time-step";
  constexpr int64_t kUnknown = 2'000'000'000;
  ::unlinkat(dir, kProbe, 0);
  const int fd = ::openat(dir, kProbe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return kUnknown;
  ScopedFd file(fd);
  constexpr int64_t kSet = 123'456'789;
  const struct timespec times[2] = {{1'000'000'000, kSet}, {1'000'000'000, kSet}};
  struct stat st {};
  const bool ok = ::futimens(fd, times) == 0 && ::fstat(fd, &st) == 0 && st.st_mtim.tv_sec == 1'000'000'000;
  ::unlinkat(dir, kProbe, 0);
  if (!ok) return kUnknown;
  for (int64_t step = 1; step <= 1'000'000'000; step *= 10) {
    if (st.st_mtim.tv_nsec == kSet - kSet % step) return step;
  }
  return kUnknown;
}

// Whether the file system of `dir` gives a change made right after a file's times were read a time of
// its own: 1000 changes (a mode flipped), each right after a look, all restamped. On a file system
// with coarse time-stamps nearly all of them would keep the time read (a clock tick is ~1-10 ms, a
// change ~1 us).
bool ProbeRestamps(int dir) {
  constexpr char kProbe[] = ".restamp-probe";
  ::unlinkat(dir, kProbe, 0);
  const int fd = ::openat(dir, kProbe, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  ScopedFd file(fd);
  bool restamped = true;
  for (int i = 0; i < 1000 && restamped; ++i) {
    struct stat before {}, after {};
    restamped = ::fstat(fd, &before) == 0 && ::fchmod(fd, i % 2 == 0 ? 0644 : 0600) == 0 && ::fstat(fd, &after) == 0 &&
                Nanos(after.st_ctim) != Nanos(before.st_ctim);
  }
  ::unlinkat(dir, kProbe, 0);
  return restamped;
}

}  // namespace

absl::StatusOr<std::unique_ptr<InputLinks>> InputLinks::Open(const std::filesystem::path& dir, int64_t budget_bytes,
                                                             std::optional<bool> restamps) {
  // Nothing from an earlier run is trusted: its files were never checked by this one.
  if (absl::Status s = RemoveAll(dir); !s.ok()) return s;
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  auto fd = OpenDirectory(dir);
  if (!fd.ok()) return fd.status();
  const int64_t time_step = ProbeTimeStep(fd->get());
  const bool restamped = restamps.has_value() ? *restamps : ProbeRestamps(fd->get());
  spdlog::debug("input links in {}: time-stamps of {} ns{}", dir.string(), time_step,
                restamped ? ", every change after a look restamped" : "");
  return std::unique_ptr<InputLinks>(new InputLinks(std::move(*fd), budget_bytes, time_step, restamped));
}

void InputLinks::AddClaim(std::string name, std::string path, const Digest& digest, bool executable,
                          const struct stat* st, Claims* claims) {
  Claim claim{std::move(name), std::move(path), digest, executable};
  if (st != nullptr) {
    claim.inode = st->st_ino;
    claim.ctime_ns = Nanos(st->st_ctim);
  }
  claims->files.push_back(std::move(claim));
}

std::string InputLinks::NameOf(const Digest& digest, bool executable, int copy) {
  return absl::StrCat(digest.hash(), "-", digest.size(), executable ? "-x" : "", ".", copy);
}

bool InputLinks::Link(TreeWriter& tree, const TreeWriter::File& file, Claims* claims) {
  if (file.digest.size() > kMaxFileBytes) return false;
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    for (int copy = 0; copy < kMaxCopies && name.empty(); ++copy) {
      std::string candidate = NameOf(file.digest, file.executable, copy);
      auto it = entries_.find(candidate);
      if (it == entries_.end() || it->second.in_use) continue;
      it->second.in_use = true;
      lru_.splice(lru_.end(), lru_, it->second.lru);
      name = std::move(candidate);
    }
    if (name.empty()) return false;
  }
  if (tree.LinkFile(file, dir_.get(), name).ok()) {
    struct stat st {};
    const bool stat = ::fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
    // Without its time: checked by its bytes.
    AddClaim(std::move(name), file.path(), file.digest, file.executable, stat ? &st : nullptr, claims);
    return true;
  }
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(name); it != entries_.end()) it->second.in_use = false;
  return false;
}

std::string InputLinks::Reserve(const Digest& digest, bool executable, bool unless_free) {
  if (digest.size() > kMaxFileBytes || digest.size() > budget_) return "";
  std::vector<std::string> evicted;
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    name = ReserveLocked(digest, executable, unless_free, &evicted);
  }
  for (const std::string& victim : evicted) ::unlinkat(dir_.get(), victim.c_str(), 0);  // outside the lock
  return name;
}

void InputLinks::Unreserve(const std::string& name) {
  ::unlinkat(dir_.get(), name.c_str(), 0);
  absl::MutexLock lock(&mu_);
  DropLocked(name);
}

std::string InputLinks::ReserveLocked(const Digest& digest, bool executable, bool unless_free,
                                      std::vector<std::string>* evicted) {
  std::string name;
  for (int copy = 0; copy < kMaxCopies; ++copy) {
    std::string candidate = NameOf(digest, executable, copy);
    auto it = entries_.find(candidate);
    if (it == entries_.end()) {
      if (name.empty()) name = std::move(candidate);
    } else if (unless_free && !it->second.in_use) {
      return "";  // a copy no task holds is there already
    }
  }
  if (name.empty()) return "";  // as many copies as are kept
  // Room first: the least recently used files no task holds go.
  for (auto it = lru_.begin(); it != lru_.end() && bytes_ + digest.size() > budget_;) {
    const std::string victim = *it++;
    if (auto found = entries_.find(victim); found == entries_.end() || found->second.in_use) continue;
    evicted->push_back(victim);
    DropLocked(victim);
  }
  if (bytes_ + digest.size() > budget_) return "";  // everything held is in use
  Entry& entry = entries_[name];
  entry.size = digest.size();
  entry.digest = digest;
  entry.in_use = true;  // by the caller's task, until Release
  entry.lru = lru_.insert(lru_.end(), name);
  bytes_ += entry.size;
  return name;
}

void InputLinks::Adopt(TreeWriter& tree, const TreeWriter::File& file, Claims* claims) {
  std::string name = Reserve(file.digest, file.executable, /*unless_free=*/false);
  if (name.empty()) return;
  struct stat st {};
  if (tree.ShareFile(file, dir_.get(), name).ok() && ::fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    absl::MutexLock lock(&mu_);
    if (auto it = entries_.find(name); it != entries_.end()) {  // it is: in use, nobody else drops it
      it->second.mode = st.st_mode & 07777;
      AddClaim(std::move(name), file.path(), file.digest, file.executable, &st, claims);
    }
    return;
  }
  Unreserve(name);
}

void InputLinks::AdoptOutput(int fd, const struct stat& st, const Digest& digest) {
  static const uid_t kUser = ::geteuid();
  const mode_t mode = st.st_mode & 07777;
  if (!S_ISREG(st.st_mode) || st.st_nlink != 1 || st.st_uid != kUser || st.st_size != digest.size() ||
      (mode != 0644 && mode != 0755)) {
    return;
  }
  std::string name = Reserve(digest, mode == 0755, /*unless_free=*/true);
  if (name.empty()) return;
  // No extended attributes (a POSIX ACL, a file capability): a written input has none either. Then
  // the very file read (through its descriptor, not its path), with a second name.
  const ssize_t xattrs = ::flistxattr(fd, nullptr, 0);
  const std::string self = absl::StrCat("/proc/self/fd/", fd);
  struct stat linked {};
  if ((xattrs == 0 || (xattrs < 0 && errno == ENOTSUP)) &&
      ::linkat(AT_FDCWD, self.c_str(), dir_.get(), name.c_str(), AT_SYMLINK_FOLLOW) == 0 &&
      ::fstatat(dir_.get(), name.c_str(), &linked, AT_SYMLINK_NOFOLLOW) == 0 && linked.st_ino == st.st_ino &&
      linked.st_dev == st.st_dev && linked.st_nlink == 2) {
    absl::MutexLock lock(&mu_);
    if (auto it = entries_.find(name); it != entries_.end()) {  // it is: in use, nobody else drops it
      it->second.mode = mode;
      it->second.in_use = false;  // for the next task to link
    }
    return;
  }
  Unreserve(name);
}

void InputLinks::StepStarts(Claims* claims) {
  struct timespec now {};
  if (::clock_gettime(CLOCK_REALTIME_COARSE, &now) == 0) claims->step_start_ns = Nanos(now);
}

void InputLinks::NoteUnchanged(Claims* claims) const {
  for (Claim& claim : claims->files) claim.unchanged = false;  // (one carried from an earlier task's check)
  if (claims->step_start_ns < 0) return;                       // the step never started
  std::vector<std::pair<mode_t, int64_t>> expected(claims->files.size(), {0, -1});
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < claims->files.size(); ++i) {
      if (auto it = entries_.find(claims->files[i].name); it != entries_.end()) {
        expected[i] = {it->second.mode, it->second.size};
      }
    }
  }
  for (size_t i = 0; i < claims->files.size(); ++i) {
    Claim& claim = claims->files[i];
    // Linked too shortly before the step, a change could carry the same time (unless restamped).
    if (claim.ctime_ns < 0 || (!restamps_ && claims->step_start_ns < claim.ctime_ns + time_step_ns_)) continue;
    struct stat st {};
    claim.unchanged = ::fstatat(dir_.get(), claim.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
                      st.st_ino == claim.inode && st.st_nlink == 2 && Nanos(st.st_ctim) == claim.ctime_ns &&
                      (st.st_mode & 07777) == expected[i].first && st.st_size == expected[i].second;
  }
}

bool InputLinks::Intact(const Claim& claim, const Entry& entry, bool* read) const {
  *read = false;
  auto same_file = [&entry](const struct stat& st) {
    return S_ISREG(st.st_mode) && (st.st_mode & 07777) == entry.mode && st.st_size == entry.size && st.st_nlink == 1;
  };
  struct stat st {};
  if (claim.unchanged) {
    // Unchanged while the task had it, and its only other name gone since with the task's folder.
    return ::fstatat(dir_.get(), claim.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && same_file(st) &&
           st.st_ino == claim.inode;
  }
  const int fd = ::openat(dir_.get(), claim.name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  ScopedFd file(fd);
  if (::fstat(fd, &st) != 0 || !same_file(st)) return false;
  *read = true;
  auto digest = DigestFd(fd, st.st_size);
  return digest.ok() && *digest == entry.digest;
}

InputLinks::Released InputLinks::Release(Claims* claims) {
  Released released;
  for (const Claim& claim : claims->files) {
    const std::string& name = claim.name;
    Entry entry;
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(name);
      if (it == entries_.end()) continue;
      entry = it->second;
    }
    bool read = false;
    const bool intact = Intact(claim, entry, &read);  // outside the lock: it reads the file
    if (intact) ++(read ? released.read : released.unchanged);
    {
      absl::MutexLock lock(&mu_);
      if (intact) {
        if (auto it = entries_.find(name); it != entries_.end()) it->second.in_use = false;
        continue;
      }
      DropLocked(name);  // gone from the map first: nobody links it meanwhile
    }
    spdlog::warn("input link {} was changed by the step that had it, or is still linked elsewhere: dropped", name);
    ::unlinkat(dir_.get(), name.c_str(), 0);
    ++released.dropped;
  }
  claims->files.clear();
  claims->step_start_ns = -1;
  return released;
}

void InputLinks::DropLocked(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  bytes_ -= it->second.size;
  lru_.erase(it->second.lru);
  entries_.erase(it);
}

int64_t InputLinks::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

int64_t InputLinks::files() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(entries_.size());
}

}  // namespace assay
