#include "worker/output_tree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/tree/safe_fs.h"
#include "common/tree/tree_validator.h"

namespace assay {
namespace {

absl::Status Errno(absl::string_view what, absl::string_view rel) {
  return absl::InternalError(absl::StrCat(what, " '", rel, "': ", std::strerror(errno)));
}

// The names in the open directory `fd`, sorted (REAPI's canonical order), "." and ".." left out.
absl::StatusOr<std::vector<std::string>> SortedNames(int fd, absl::string_view rel) {
  const int listing_fd = ::openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // fdopendir takes it
  DIR* listing = listing_fd < 0 ? nullptr : ::fdopendir(listing_fd);
  if (listing == nullptr) {
    if (listing_fd >= 0) ::close(listing_fd);
    return Errno("cannot list output directory", rel);
  }
  std::vector<std::string> names;
  while (dirent* entry = ::readdir(listing)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(std::move(name));
  }
  ::closedir(listing);
  std::sort(names.begin(), names.end());
  return names;
}

class TreeReader {
 public:
  TreeReader(int base_fd, std::string base_rel, std::vector<TreeBlob>* files, absl::flat_hash_set<Digest>* seen)
      : base_fd_(base_fd), base_rel_(std::move(base_rel)), files_(files), seen_(seen) {}

  // The Directory of the open directory `fd` at `rel` (relative to base); its subdirectories'
  // Directories are added to `children_` first.
  absl::StatusOr<reapi::Directory> Read(int fd, const std::string& rel, int depth) {
    if (depth > kMaxOutputDepth) {
      return absl::InvalidArgumentError(absl::StrCat("output directory '", rel, "' is deeper than ",
                                                     kMaxOutputDepth, " directories below the declared output"));
    }
    auto names = SortedNames(fd, rel);
    if (!names.ok()) return names.status();
    reapi::Directory directory;
    for (const std::string& name : *names) {
      const std::string child = JoinRelative(rel, name);
      struct stat st {};
      if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return Errno("output", child);
      absl::Status added = absl::OkStatus();
      if (S_ISREG(st.st_mode)) {
        added = AddFile(fd, name, child, &directory);
      } else if (S_ISDIR(st.st_mode)) {
        added = AddDirectory(fd, name, child, depth, &directory);
      } else if (S_ISLNK(st.st_mode)) {
        added = AddSymlink(fd, name, rel, &directory);
      }  // sockets, fifos and devices are not outputs
      if (!added.ok()) return added;
    }
    return directory;  // sorted already: each list was filled in name order
  }

  // Distinct children in the order their digests were computed (every child before its parent).
  std::vector<reapi::Directory> TakeChildren() { return std::move(children_); }

 private:
  absl::Status AddFile(int dir, const std::string& name, const std::string& rel, reapi::Directory* out) {
    auto node = ReadOutputFile(dir, name, rel);
    if (!node.ok()) return node.status();
    auto digest = Digest::FromProto(node->digest());
    if (!digest.ok()) return digest.status();
    if (seen_->insert(*digest).second) files_->push_back(TreeBlob{*digest, "", rel, base_fd_});
    *out->add_files() = std::move(*node);
    return absl::OkStatus();
  }

  absl::Status AddDirectory(int dir, const std::string& name, const std::string& rel, int depth,
                            reapi::Directory* out) {
    const int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return Errno("cannot open output", rel);
    ScopedFd opened(fd);
    auto child = Read(fd, rel, depth + 1);
    if (!child.ok()) return child.status();
    // The digest of exactly the bytes the Tree will hold for this child.
    const Digest digest = Digest::OfBytes(child->SerializeAsString());
    reapi::DirectoryNode* node = out->add_directories();
    node->set_name(name);
    *node->mutable_digest() = digest.ToProto();
    if (children_seen_.insert(digest).second) children_.push_back(std::move(*child));
    return absl::OkStatus();
  }

  absl::Status AddSymlink(int dir, const std::string& name, const std::string& parent, reapi::Directory* out) {
    // Judged from the work directory: a link may leave the output folder, not the work directory.
    auto target = ReadOutputSymlink(dir, name, JoinRelative(parent, name), JoinRelative(base_rel_, parent));
    if (!target.ok()) return target.status();
    reapi::SymlinkNode* node = out->add_symlinks();
    node->set_name(name);
    node->set_target(std::move(*target));
    return absl::OkStatus();
  }

  const int base_fd_;
  const std::string base_rel_;
  std::vector<TreeBlob>* const files_;
  absl::flat_hash_set<Digest>* const seen_;
  std::vector<reapi::Directory> children_;
  absl::flat_hash_set<Digest> children_seen_;
};

}  // namespace

absl::StatusOr<reapi::FileNode> ReadOutputFile(int dir, const std::string& name, const std::string& rel) {
  const int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open output", rel);
  ScopedFd file(fd);
  struct stat opened {};
  if (::fstat(fd, &opened) != 0) return Errno("cannot stat output", rel);
  auto digest = DigestFd(fd);
  if (!digest.ok()) return absl::InternalError(absl::StrCat("reading output '", rel, "': ", digest.status().message()));
  reapi::FileNode node;
  node.set_name(name);
  *node.mutable_digest() = digest->ToProto();
  node.set_is_executable((opened.st_mode & S_IXUSR) != 0);
  return node;
}

absl::StatusOr<std::string> ReadOutputSymlink(int dir, const std::string& name, const std::string& rel,
                                              const std::string& dir_in_work) {
  std::string target(4096, '\0');
  const ssize_t n = ::readlinkat(dir, name.c_str(), target.data(), target.size());
  if (n < 0) return Errno("cannot read output symlink", rel);
  target.resize(static_cast<size_t>(n));
  if (!SymlinkEscapesByName(dir_in_work, target).empty()) {
    const bool absolute = !target.empty() && target.front() == '/';
    return absl::InvalidArgumentError(absl::StrCat("output '", rel, "' is a symlink to '", target, "', ",
                                                   absolute ? "an absolute path" : "outside the work directory",
                                                   ": only relative symlinks that stay inside the work directory "
                                                   "are kept (as symlinks, never as their target's contents)"));
  }
  return target;
}

absl::StatusOr<OutputTree> ReadOutputTree(int base_fd, const std::string& base_rel, const std::string& rel,
                                          std::vector<TreeBlob>* files, absl::flat_hash_set<Digest>* seen) {
  auto dir = OpenBeneath(base_fd, rel, O_RDONLY | O_DIRECTORY);
  if (!dir.ok()) {
    return absl::Status(dir.status().code(),
                        absl::StrCat("output directory '", rel, "': ", dir.status().message()));
  }
  TreeReader reader(base_fd, base_rel, files, seen);
  auto root = reader.Read(dir->get(), rel, 0);
  if (!root.ok()) return root.status();
  OutputTree out;
  *out.tree.mutable_root() = std::move(*root);
  // Each child came after its own children: reversed, parents come first (a topological order).
  std::vector<reapi::Directory> children = reader.TakeChildren();
  for (auto it = children.rbegin(); it != children.rend(); ++it) *out.tree.add_children() = std::move(*it);
  out.bytes = out.tree.SerializeAsString();
  out.digest = Digest::OfBytes(out.bytes);
  return out;
}

}  // namespace assay
