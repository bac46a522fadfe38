#include "worker/input_links.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"

namespace assay {

absl::StatusOr<std::unique_ptr<InputLinks>> InputLinks::Open(const std::filesystem::path& dir, int64_t budget_bytes) {
  // Nothing from an earlier run is trusted: its files were never checked by this one.
  if (absl::Status s = RemoveAll(dir); !s.ok()) return s;
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  auto fd = OpenDirectory(dir);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<InputLinks>(new InputLinks(std::move(*fd), budget_bytes));
}

std::string InputLinks::NameOf(const TreeWriter::File& file, int copy) {
  return absl::StrCat(file.digest.hash(), "-", file.digest.size(), file.executable ? "-x" : "", ".", copy);
}

bool InputLinks::Link(TreeWriter& tree, const TreeWriter::File& file, Claims* claims) {
  if (file.digest.size() > kMaxFileBytes) return false;
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    for (int copy = 0; copy < kMaxCopies && name.empty(); ++copy) {
      std::string candidate = NameOf(file, copy);
      auto it = entries_.find(candidate);
      if (it == entries_.end() || it->second.in_use) continue;
      it->second.in_use = true;
      lru_.splice(lru_.end(), lru_, it->second.lru);
      name = std::move(candidate);
    }
    if (name.empty()) return false;
  }
  if (tree.LinkFile(file, dir_.get(), name).ok()) {
    claims->names.push_back(name);
    return true;
  }
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(name); it != entries_.end()) it->second.in_use = false;
  return false;
}

void InputLinks::Adopt(TreeWriter& tree, const TreeWriter::File& file, Claims* claims) {
  if (file.digest.size() > kMaxFileBytes || file.digest.size() > budget_) return;
  std::string name;
  std::vector<std::string> evicted;
  {
    absl::MutexLock lock(&mu_);
    for (int copy = 0; copy < kMaxCopies && name.empty(); ++copy) {
      std::string candidate = NameOf(file, copy);
      if (!entries_.contains(candidate)) name = std::move(candidate);
    }
    if (name.empty()) return;  // as many copies as are kept
    // Room first: the least recently used files no task holds go.
    for (auto it = lru_.begin(); it != lru_.end() && bytes_ + file.digest.size() > budget_;) {
      const std::string victim = *it++;
      if (auto found = entries_.find(victim); found == entries_.end() || found->second.in_use) continue;
      evicted.push_back(victim);
      DropLocked(victim);
    }
    if (bytes_ + file.digest.size() > budget_) return;  // everything held is in use
    Entry& entry = entries_[name];
    entry.size = file.digest.size();
    entry.digest = file.digest;
    entry.in_use = true;  // by this task, until Release
    entry.lru = lru_.insert(lru_.end(), name);
    bytes_ += entry.size;
  }
  for (const std::string& victim : evicted) ::unlinkat(dir_.get(), victim.c_str(), 0);
  struct stat st {};
  if (tree.ShareFile(file, dir_.get(), name).ok() && ::fstatat(dir_.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
    absl::MutexLock lock(&mu_);
    if (auto it = entries_.find(name); it != entries_.end()) {  // it is: in use, nobody else drops it
      it->second.mode = st.st_mode & 07777;
      claims->names.push_back(name);
    }
    return;
  }
  ::unlinkat(dir_.get(), name.c_str(), 0);
  absl::MutexLock lock(&mu_);
  DropLocked(name);
}

bool InputLinks::Intact(const std::string& name, const Entry& entry) const {
  const int fd = ::openat(dir_.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return false;
  ScopedFd file(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 07777) != entry.mode || st.st_size != entry.size ||
      st.st_nlink != 1) {
    return false;
  }
  auto digest = DigestFd(fd, st.st_size);
  return digest.ok() && *digest == entry.digest;
}

int InputLinks::Release(Claims* claims) {
  int dropped = 0;
  for (const std::string& name : claims->names) {
    Entry entry;
    {
      absl::MutexLock lock(&mu_);
      auto it = entries_.find(name);
      if (it == entries_.end()) continue;
      entry = it->second;
    }
    const bool intact = Intact(name, entry);  // outside the lock: it reads the file
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
    ++dropped;
  }
  claims->names.clear();
  return dropped;
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
