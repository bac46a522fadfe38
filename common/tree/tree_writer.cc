#include "common/tree/tree_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace assay {

absl::StatusOr<std::unique_ptr<TreeWriter>> TreeWriter::Open(const std::filesystem::path& root, TreeLimits limits,
                                                             SpareDirectories* spares,
                                                             const absl::flat_hash_set<std::string>* existing) {
  auto fd = OpenDirectory(root);
  if (!fd.ok()) return fd.status();
  return std::unique_ptr<TreeWriter>(new TreeWriter(std::move(*fd), limits, spares, existing));
}

absl::StatusOr<std::vector<TreeWriter::File>> TreeWriter::Layout(const Digest& root, const DirectoryLoader& load) {
  std::vector<File> files;
  if (absl::Status s = LayoutDir(root_.get(), "", root, load, 0, &files); !s.ok()) return s;
  return files;
}

absl::Status TreeWriter::LayoutDir(int fd, const std::string& path, const Digest& digest, const DirectoryLoader& load,
                                   int depth, std::vector<File>* files) {
  if (depth > limits_.max_depth) {
    return absl::InvalidArgumentError(absl::StrCat("input tree: '", path, "': deeper than ", limits_.max_depth, " directories"));
  }
  auto directory = load(digest);
  if (!directory.ok()) return directory.status();
  entries_ += directory->files_size() + directory->directories_size() + directory->symlinks_size();
  if (entries_ > limits_.max_entries) {
    return absl::InvalidArgumentError(absl::StrCat("input tree: more than ", limits_.max_entries, " entries"));
  }
  for (const auto& f : directory->files()) {
    if (absl::Status s = CheckEntryName(f.name(), PrintablePath(path, f.name())); !s.ok()) return s;
    auto d = Digest::FromProto(f.digest());
    if (!d.ok()) return d.status();
    files->push_back(File{*d, path, f.name(), f.is_executable()});
  }
  for (const auto& l : directory->symlinks()) {
    if (absl::Status s = CheckEntryName(l.name(), PrintablePath(path, l.name())); !s.ok()) return s;
    if (std::string why = SymlinkEscapesByName(path, l.target()); !why.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("input tree: '", JoinRelative(path, l.name()), "': symlink target '", l.target(), "' ", why));
    }
    links_.push_back(Link{path, l.name(), l.target()});
  }
  for (const auto& sub : directory->directories()) {
    const std::string sub_path = JoinRelative(path, sub.name());
    if (absl::Status s = CheckEntryName(sub.name(), PrintablePath(path, sub.name())); !s.ok()) return s;
    auto d = Digest::FromProto(sub.digest());
    if (!d.ok()) return d.status();
    auto child = existing_ != nullptr && existing_->contains(sub_path)
                     ? OpenBeneath(fd, sub.name(), O_RDONLY | O_DIRECTORY)
                     : MakeDirectoryAt(fd, sub.name(), spares_);
    if (!child.ok()) return absl::Status(child.status().code(), absl::StrCat("input tree: ", child.status().message()));
    if (absl::Status s = LayoutDir(child->get(), sub_path, *d, load, depth + 1, files); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<int> TreeWriter::DirFd(const std::string& dir) {
  if (dir.empty()) return root_.get();
  if (!open_fd_.valid() || open_dir_ != dir) {
    auto fd = OpenBeneath(root_.get(), dir, O_RDONLY | O_DIRECTORY);
    if (!fd.ok()) return fd.status();
    open_fd_ = std::move(*fd);
    open_dir_ = dir;
  }
  return open_fd_.get();
}

absl::StatusOr<VerifiedFileWriter> TreeWriter::CreateFile(const File& file) {
  auto fd = DirFd(file.dir);
  if (!fd.ok()) return fd.status();
  return VerifiedFileWriter::Create(*fd, file.name, file.digest, file.executable);
}

absl::Status TreeWriter::LinkFile(const File& file, int from_dir, const std::string& from_name) {
  auto fd = DirFd(file.dir);
  if (!fd.ok()) return fd.status();
  if (::linkat(from_dir, from_name.c_str(), *fd, file.name.c_str(), 0) != 0) {
    return absl::InternalError(absl::StrCat("input tree: cannot link '", file.path(), "': ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status TreeWriter::ShareFile(const File& file, int to_dir, const std::string& to_name) {
  auto fd = DirFd(file.dir);
  if (!fd.ok()) return fd.status();
  if (::linkat(*fd, file.name.c_str(), to_dir, to_name.c_str(), 0) != 0) {
    return absl::InternalError(absl::StrCat("input tree: cannot link '", file.path(), "' to ", to_name, ": ",
                                            std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status TreeWriter::FinishSymlinks() {
  for (const Link& link : links_) {
    auto fd = DirFd(link.dir);
    if (!fd.ok()) return fd.status();
    if (::symlinkat(link.target.c_str(), *fd, link.name.c_str()) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("input tree: cannot create symlink '", JoinRelative(link.dir, link.name),
                                                     "': ", std::strerror(errno),
                                                     errno == EEXIST ? " (an existing entry is never replaced)" : ""));
    }
  }
  links_.clear();
  return absl::OkStatus();
}

}  // namespace assay
