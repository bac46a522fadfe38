#include "worker/kept_folders.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "common/base/file_util.h"
#include "common/tree/safe_fs.h"

namespace assay {
namespace fs = std::filesystem;
namespace {

// Kept folders go no deeper than this: a deeper directory is removed (a tree that deep is rare).
constexpr int kMaxKeptDepth = 64;

// Whether the directory `fd`, whose status is `st`, can be kept: its owner's (the worker's), with no
// extended attributes (nor ACLs, which are some) and depth to spare; its mode is made 0755 again.
bool CleanDirectory(int fd, const struct stat& st, int depth) {
  static const uid_t euid = ::geteuid();
  return st.st_uid == euid && ::flistxattr(fd, nullptr, 0) == 0 && depth < kMaxKeptDepth &&
         ((st.st_mode & 07777) == 0755 || ::fchmod(fd, 0755) == 0);
}

}  // namespace

absl::StatusOr<KeptFolders::Plan> KeptFolders::PlanOf(const Digest& root, const DirectoryLoader& load,
                                                      const TreeLimits& limits) {
  Plan plan;
  int64_t entries = 0;
  std::function<absl::Status(const Digest&, const std::string&, int)> walk =
      [&](const Digest& digest, const std::string& path, int depth) -> absl::Status {
    if (depth > limits.max_depth) return absl::InvalidArgumentError("input tree: too deep");
    auto directory = load(digest);
    if (!directory.ok()) return directory.status();
    entries += directory->files_size() + directory->directories_size() + directory->symlinks_size();
    if (entries > limits.max_entries) return absl::InvalidArgumentError("input tree: too many entries");
    for (const auto& f : directory->files()) {
      auto d = Digest::FromProto(f.digest());
      if (!d.ok()) return d.status();
      plan.files[JoinRelative(path, f.name())] = {*d, f.is_executable()};
    }
    for (const auto& sub : directory->directories()) {
      auto d = Digest::FromProto(sub.digest());
      if (!d.ok()) return d.status();
      const std::string sub_path = JoinRelative(path, sub.name());
      plan.dirs.insert(sub_path);
      if (absl::Status s = walk(*d, sub_path, depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  if (absl::Status s = walk(root, "", 0); !s.ok()) return s;
  return plan;
}

KeptFolders::~KeptFolders() {
  std::deque<Folder> folders;
  {
    absl::MutexLock lock(&mu_);
    folders.swap(folders_);
  }
  for (Folder& folder : folders) Drop(std::move(folder));
}

size_t KeptFolders::size() const {
  absl::MutexLock lock(&mu_);
  return folders_.size();
}

InputLinks::Released KeptFolders::Drop(Folder folder) {
  RemoveAll(folder.task_dir, spares_).IgnoreError();
  InputLinks::Claims claims;
  for (auto& [path, claim] : folder.files) claims.files.push_back(std::move(claim));
  return links_->Release(&claims);
}

bool KeptFolders::TidyDir(int fd, const std::string& path, int depth, const InputLinks::Claims& claims,
                          const absl::flat_hash_map<std::string, size_t>& unchanged, std::vector<bool>* kept,
                          Folder* folder) {
  auto listed = ListDirectory(fd);
  if (!listed.ok()) return false;
  const fs::path here = folder->task_dir / kWorkDir / path;
  for (const DirectoryEntry& e : *listed) {
    const std::string rel = JoinRelative(path, e.name);
    auto candidate = unchanged.find(rel);
    // The listing's type and inode are enough for a file (a file system that does not give the type
    // has each entry looked at); a directory is looked at through its descriptor.
    bool dir_entry = e.type == DT_DIR, regular = e.type == DT_REG;
    ino_t ino = e.ino;
    struct stat st {};
    if (e.type == DT_UNKNOWN) {
      if (::fstatat(fd, e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return false;
      dir_entry = S_ISDIR(st.st_mode);
      regular = S_ISREG(st.st_mode);
      ino = st.st_ino;
    }
    if (dir_entry) {
      const int sub = ::openat(fd, e.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) return false;
      ScopedFd dir(sub);
      if (::fstat(sub, &st) == 0 && CleanDirectory(sub, st, depth)) {
        folder->dirs.insert(rel);
        if (!TidyDir(sub, rel, depth + 1, claims, unchanged, kept, folder)) return false;
        continue;
      }
      dir.Reset();
      if (!RemoveAll(here / e.name, spares_).ok()) return false;
      continue;
    }
    // A file the task had at this very path, unchanged, and the copy's inode: kept. (The copy had
    // two links when it was found unchanged, and nothing of the step runs any more: this is the other.)
    if (candidate != unchanged.end() && regular && ino == claims.files[candidate->second].inode) {
      (*kept)[candidate->second] = true;
      continue;
    }
    if (::unlinkat(fd, e.name.c_str(), 0) != 0 && errno != ENOENT) return false;
  }
  return true;
}

InputLinks::Released KeptFolders::Keep(const fs::path& task_dir, InputLinks::Claims* claims) {
  links_->NoteUnchanged(claims);
  absl::flat_hash_map<std::string, size_t> unchanged;
  for (size_t i = 0; i < claims->files.size(); ++i) {
    if (claims->files[i].unchanged && !claims->files[i].path.empty()) unchanged[claims->files[i].path] = i;
  }
  Folder folder;
  folder.task_dir = task_dir;
  std::vector<bool> kept(claims->files.size(), false);
  bool ok = false;
  struct stat st {};
  if (auto top = OpenDirectory(task_dir); top.ok() && ::fstat(top->get(), &st) == 0 && CleanDirectory(top->get(), st, 0)) {
    // Everything beside work/ goes: the logs, the step's temporary files.
    auto listed = ListDirectory(top->get());
    ok = listed.ok();
    for (size_t i = 0; ok && i < listed->size(); ++i) {
      if ((*listed)[i].name != kWorkDir) ok = RemoveAll(task_dir / (*listed)[i].name, spares_).ok();
    }
    const int work = ok ? ::openat(top->get(), kWorkDir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
    ScopedFd work_fd(work);
    ok = work >= 0 && ::fstat(work, &st) == 0 && CleanDirectory(work, st, 0) &&
         TidyDir(work, "", 1, *claims, unchanged, &kept, &folder);
  }
  InputLinks::Claims rest;
  for (size_t i = 0; i < claims->files.size(); ++i) {
    InputLinks::Claim& claim = claims->files[i];
    if (ok && kept[i]) {
      folder.files.emplace(claim.path, std::move(claim));
    } else {
      rest.files.push_back(std::move(claim));
    }
  }
  claims->files.clear();
  if (!ok) {
    spdlog::warn("the folder {} could not be kept for the next task; it is removed", task_dir.string());
    RemoveAll(task_dir, spares_).IgnoreError();
  }
  InputLinks::Released released = links_->Release(&rest);  // their names in the folder are gone
  if (!ok) return released;
  std::optional<Folder> oldest;
  {
    absl::MutexLock lock(&mu_);
    folders_.push_back(std::move(folder));
    if (folders_.size() > capacity_) {
      oldest = std::move(folders_.front());
      folders_.pop_front();
    }
  }
  if (oldest.has_value()) {
    released += Drop(std::move(*oldest));
  }
  return released;
}

std::optional<KeptFolders::Folder> KeptFolders::Take(const fs::path& task_dir, const Plan* plan) {
  std::optional<Folder> folder;
  {
    absl::MutexLock lock(&mu_);
    if (folders_.empty()) return std::nullopt;
    size_t best = folders_.size() - 1;
    int64_t best_matches = -1;
    for (size_t i = folders_.size(); plan != nullptr && i-- > 0;) {  // newest first: a tie keeps the newer
      int64_t matches = 0;
      for (const auto& [path, claim] : folders_[i].files) {
        auto it = plan->files.find(path);
        matches += it != plan->files.end() && it->second.first == claim.digest && it->second.second == claim.executable;
      }
      if (matches > best_matches) {
        best = i;
        best_matches = matches;
      }
    }
    // None has a file of the tree: a folder made afresh costs no more, and the kept ones stay for
    // tasks they suit (a build's for the next build, when tests take only the build's outputs).
    if (best_matches == 0) return std::nullopt;
    folder = std::move(folders_[best]);
    folders_.erase(folders_.begin() + static_cast<std::ptrdiff_t>(best));
  }
  // RENAME_NOREPLACE: never over an entry of that name.
  if (::renameat2(AT_FDCWD, folder->task_dir.c_str(), AT_FDCWD, task_dir.c_str(), RENAME_NOREPLACE) != 0) {
    spdlog::warn("cannot move the kept folder {} to {}: {}", folder->task_dir.string(), task_dir.string(),
                 std::strerror(errno));
    Drop(std::move(*folder));
    return std::nullopt;
  }
  folder->task_dir = task_dir;
  return folder;
}

absl::StatusOr<absl::flat_hash_map<std::string, InputLinks::Claim>> KeptFolders::Fit(Folder* folder, const Plan& plan,
                                                                                     InputLinks::Released* released) {
  auto work = OpenDirectory(folder->task_dir / kWorkDir);
  InputLinks::Claims gone;
  absl::Status failed = work.status();
  absl::flat_hash_map<std::string, InputLinks::Claim> reused;
  absl::flat_hash_map<std::string, ScopedFd> parents;  // opened once each
  for (auto& [path, claim] : folder->files) {
    auto wanted = plan.files.find(path);
    if (failed.ok() && wanted != plan.files.end() && wanted->second.first == claim.digest &&
        wanted->second.second == claim.executable) {
      reused.emplace(path, std::move(claim));
      continue;
    }
    if (failed.ok()) {
      const size_t slash = path.rfind('/');
      int parent = work->get();
      if (slash != std::string::npos) {
        const std::string dir = path.substr(0, slash);
        auto it = parents.find(dir);
        if (it == parents.end()) {
          auto opened = OpenBeneath(work->get(), dir, O_RDONLY | O_DIRECTORY);
          it = parents.emplace(dir, opened.ok() ? std::move(*opened) : ScopedFd()).first;
        }
        parent = it->second.valid() ? it->second.get() : -1;
      }
      const char* name = path.c_str() + (slash == std::string::npos ? 0 : slash + 1);
      if (parent < 0 || (::unlinkat(parent, name, 0) != 0 && errno != ENOENT)) {
        failed = absl::InternalError(absl::StrCat("kept folder: cannot remove '", path, "'"));
      }
    }
    gone.files.push_back(std::move(claim));
  }
  folder->files.clear();
  // Directories the tree does not have, deepest first (a path sorts after its parent's).
  std::vector<std::string> extra;
  for (const std::string& dir : folder->dirs) {
    if (!plan.dirs.contains(dir)) extra.push_back(dir);
  }
  std::sort(extra.begin(), extra.end(), std::greater<>());
  for (const std::string& dir : extra) {
    folder->dirs.erase(dir);
    if (failed.ok() && !RemoveAll(folder->task_dir / kWorkDir / dir, spares_).ok()) {
      failed = absl::InternalError(absl::StrCat("kept folder: cannot remove '", dir, "'"));
    }
  }
  if (!failed.ok()) {
    // Nothing of it is used: an empty work/ instead, as a folder made afresh.
    spdlog::warn("{}; the task's folder is made afresh", std::string(failed.message()));
    for (auto& [path, claim] : reused) gone.files.push_back(std::move(claim));
    reused.clear();
    folder->dirs.clear();
    failed = RemoveAll(folder->task_dir / kWorkDir, spares_);
    if (failed.ok()) failed = MakeDirs(folder->task_dir / kWorkDir);
  }
  *released += links_->Release(&gone);
  if (!failed.ok()) return failed;
  return reused;
}

}  // namespace assay
