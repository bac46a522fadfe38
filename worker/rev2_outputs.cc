#include "worker/rev2_outputs.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/tree/safe_fs.h"
#include "worker/output_tree.h"

namespace assay {
namespace {

// A path of the Command's split into its components ("." and empty ones left out); INVALID_ARGUMENT
// naming it when it is absolute, climbs with "..", or holds a NUL byte.
absl::StatusOr<std::vector<std::string>> Components(absl::string_view path, absl::string_view what) {
  auto refuse = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", path, "' ", why));
  };
  if (!path.empty() && path.front() == '/') return refuse("is absolute: it must be relative to the working directory");
  if (path.find('\0') != absl::string_view::npos) return refuse("contains a NUL byte");
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == "..") return refuse("climbs out of its directory with '..'");
    if (part != ".") parts.emplace_back(part);
  }
  return parts;
}

// Creates `parents` (components, in order) beneath `work_fd`, each one a directory reached through
// no symlink; what exists already is kept.
absl::Status MakeParents(int work_fd, const std::vector<std::string>& parents, absl::string_view path,
                         absl::string_view what) {
  ScopedFd current;
  int at = work_fd;
  std::string made;
  for (const std::string& part : parents) {
    made = JoinRelative(made, part);
    if (::mkdirat(at, part.c_str(), 0755) != 0 && errno != EEXIST) {
      return absl::InternalError(
          absl::StrCat("cannot create '", made, "' for ", what, " '", path, "': ", std::strerror(errno)));
    }
    const int fd = ::openat(at, part.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
      return absl::FailedPreconditionError(absl::StrCat(what, " '", path, "': '", made,
                                                        "' is not a directory (a symlink or a file is in the way; "
                                                        "a symlink is never followed)"));
    }
    if (fd < 0) return absl::InternalError(absl::StrCat("cannot open '", made, "': ", std::strerror(errno)));
    current = ScopedFd(fd);
    at = current.get();
  }
  return absl::OkStatus();
}

// A declared output as found after the run: its parent directory, open, and what is there.
struct Found {
  ScopedFd parent;
  std::string parent_rel;  // relative to the working directory
  std::string name;
  std::string rel;         // normalized
  mode_t mode = 0;         // 0: nothing there
};

class Rev20Collector {
 public:
  Rev20Collector(int work_fd, std::string work_rel) : work_fd_(work_fd), work_rel_(std::move(work_rel)) {}

  absl::Status AddFile(const std::string& declared) {
    auto found = Find(declared, "output file");
    if (!found.ok()) return found.status();
    if (S_ISREG(found->mode)) {
      auto node = ReadOutputFile(found->parent.get(), found->name, found->rel);
      if (!node.ok()) return node.status();
      auto digest = Digest::FromProto(node->digest());
      if (!digest.ok()) return digest.status();
      reapi::OutputFile file;
      file.set_path(declared);
      *file.mutable_digest() = node->digest();
      file.set_is_executable(node->is_executable());
      out_.files.push_back(std::move(file));
      AddUpload(TreeBlob{*digest, "", found->rel, work_fd_});
    } else if (S_ISLNK(found->mode)) {
      return AddSymlink(*found, declared, &out_.symlinks);
    } else if (S_ISDIR(found->mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "output file '", declared, "' is a directory (a directory is declared in output_directories)"));
    } else {
      missing_.push_back(declared);
    }
    return absl::OkStatus();
  }

  absl::Status AddDirectory(const std::string& declared) {
    auto found = Find(declared, "output directory");
    if (!found.ok()) return found.status();
    if (S_ISDIR(found->mode)) {
      auto tree = ReadOutputTree(work_fd_, work_rel_, found->rel, &out_.uploads, &seen_);
      if (!tree.ok()) return tree.status();
      reapi::OutputDirectory directory;
      directory.set_path(declared);
      *directory.mutable_tree_digest() = tree->digest.ToProto();
      out_.directories.push_back(std::move(directory));
      AddUpload(TreeBlob{tree->digest, std::move(tree->bytes), {}});
    } else if (S_ISLNK(found->mode)) {
      return AddSymlink(*found, declared, &out_.directory_symlinks);
    } else if (S_ISREG(found->mode)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "output directory '", declared, "' is a file (a file is declared in output_files)"));
    } else {
      missing_.push_back(declared);
    }
    return absl::OkStatus();
  }

  // A client declares outputs it may not need (a Bazel test declares a dozen): one line for them all.
  CollectedOutputs Take() {
    if (!missing_.empty()) {
      std::vector<std::string> named(missing_.begin(), missing_.begin() + std::min<size_t>(missing_.size(), 3));
      out_.warnings.push_back(absl::StrCat(missing_.size(), " declared output(s) not produced: '",
                                           absl::StrJoin(named, "', '"), "'", missing_.size() > 3 ? ", ..." : ""));
    }
    return std::move(out_);
  }

 private:
  // The declared path's parent, opened beneath the working directory, and the mode of what is
  // there (0 when nothing is, its folders included). The working directory itself for "".
  absl::StatusOr<Found> Find(const std::string& declared, absl::string_view what) {
    auto parts = Components(declared, what);
    if (!parts.ok()) return parts.status();
    Found found;
    if (parts->empty()) {
      if (what == "output file") {
        return absl::InvalidArgumentError(absl::StrCat(what, " '", declared, "' names the working directory"));
      }
      found.mode = S_IFDIR;  // "": the whole working directory (REAPI allows it for directories)
      return found;
    }
    found.name = parts->back();
    parts->pop_back();
    found.parent_rel = absl::StrJoin(*parts, "/");
    found.rel = JoinRelative(found.parent_rel, found.name);
    auto parent = OpenBeneath(work_fd_, found.parent_rel, O_RDONLY | O_DIRECTORY);
    if (absl::IsNotFound(parent.status())) return found;
    if (!parent.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(what, " '", declared, "' is not inside the work directory: ",
                                                     parent.status().message()));
    }
    found.parent = std::move(*parent);
    struct stat st {};
    if (::fstatat(found.parent.get(), found.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
      found.mode = st.st_mode;
    } else if (errno != ENOENT) {
      return absl::InternalError(absl::StrCat(what, " '", declared, "': ", std::strerror(errno)));
    }
    return found;
  }

  absl::Status AddSymlink(const Found& found, const std::string& declared, std::vector<reapi::OutputSymlink>* out) {
    auto target = ReadOutputSymlink(found.parent.get(), found.name, found.rel, JoinRelative(work_rel_, found.parent_rel));
    if (!target.ok()) return target.status();
    reapi::OutputSymlink link;
    link.set_path(declared);
    link.set_target(std::move(*target));
    out->push_back(std::move(link));
    return absl::OkStatus();
  }

  void AddUpload(TreeBlob blob) {
    if (seen_.insert(blob.digest).second) out_.uploads.push_back(std::move(blob));
  }

  const int work_fd_;
  const std::string work_rel_;
  absl::flat_hash_set<Digest> seen_;  // blobs already in out_.uploads
  CollectedOutputs out_;
  std::vector<std::string> missing_;
};

}  // namespace

bool UsesRev20Outputs(const reapi::Command& command) {
  return command.output_paths_size() == 0 &&
         (command.output_files_size() > 0 || command.output_directories_size() > 0);
}

absl::StatusOr<std::string> WorkingDirectoryOf(const reapi::Command& command) {
  auto parts = Components(command.working_directory(), "working directory");
  if (!parts.ok()) return parts.status();
  return absl::StrJoin(*parts, "/");
}

absl::Status PrepareOutputParents(int exec_fd, const reapi::Command& command) {
  auto work_rel = WorkingDirectoryOf(command);
  if (!work_rel.ok()) return work_rel.status();
  auto work = OpenBeneath(exec_fd, *work_rel, O_RDONLY | O_DIRECTORY);
  if (!work.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("working directory '", command.working_directory(),
                                                      "' is not a directory of the input root: ",
                                                      work.status().message()));
  }
  if (!UsesRev20Outputs(command)) return absl::OkStatus();
  for (const auto& [paths, what] : {std::pair{&command.output_files(), "output file"},
                                    std::pair{&command.output_directories(), "output directory"}}) {
    for (const std::string& path : *paths) {
      auto parts = Components(path, what);
      if (!parts.ok()) return parts.status();
      if (parts->empty() && paths == &command.output_files()) {
        return absl::InvalidArgumentError(absl::StrCat("output file '", path, "' names the working directory"));
      }
      if (!parts->empty()) parts->pop_back();  // its parents only: the command makes the output itself
      if (absl::Status s = MakeParents(work->get(), *parts, path, what); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<CollectedOutputs> CollectRev20Outputs(int work_fd, const std::string& work_rel,
                                                     const reapi::Command& command) {
  Rev20Collector collector(work_fd, work_rel);
  for (const std::string& path : command.output_files()) {
    if (absl::Status s = collector.AddFile(path); !s.ok()) return s;
  }
  for (const std::string& path : command.output_directories()) {
    if (absl::Status s = collector.AddDirectory(path); !s.ok()) return s;
  }
  return collector.Take();
}

}  // namespace assay
