#include "worker/output_collector.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/base/file_util.h"
#include "common/remote/cas_client.h"
#include "common/tree/safe_fs.h"
#include "common/tree/tree_validator.h"

namespace assay {
namespace {

class Collector {
 public:
  Collector(int work_fd, const CollectedFileFn& collected) : work_fd_(work_fd), collected_(collected) {}

  // One path relative to the work directory: a file, a symlink or a directory.
  absl::Status Add(absl::string_view hit) {
    std::vector<absl::string_view> parts;
    for (absl::string_view part : absl::StrSplit(hit, '/', absl::SkipEmpty())) {
      if (part != ".") parts.push_back(part);
    }
    if (parts.empty()) return absl::InvalidArgumentError("an output names the work directory itself");
    const std::string rel = absl::StrJoin(parts, "/");
    if (!seen_.insert(rel).second) return absl::OkStatus();
    std::string parent = rel.find('/') == std::string::npos ? "" : rel.substr(0, rel.rfind('/'));
    std::string name = rel.substr(rel.rfind('/') + 1);
    auto dir = OpenBeneath(work_fd_, parent, O_RDONLY | O_DIRECTORY);
    if (!dir.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("output '", rel, "' is not inside the work directory: ",
                                                     dir.status().message()));
    }
    return AddAt(dir->get(), parent, name, 0);
  }

  CollectedOutputs Take() { return std::move(out_); }

 private:
  absl::Status AddAt(int dir, const std::string& parent, const std::string& name, int depth) {
    const std::string rel = JoinRelative(parent, name);
    if (depth > kMaxOutputDepth) {
      return absl::InvalidArgumentError(
          absl::StrCat("output '", rel, "' is deeper than ", kMaxOutputDepth, " directories below the declared output"));
    }
    struct stat st {};
    if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return absl::InternalError(absl::StrCat("output '", rel, "': ", std::strerror(errno)));
    }
    if (S_ISLNK(st.st_mode)) return AddLink(dir, parent, name);
    if (S_ISREG(st.st_mode)) return AddFile(dir, rel, name);
    if (S_ISDIR(st.st_mode)) {
      int fd = ::openat(dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return absl::InternalError(absl::StrCat("output '", rel, "': ", std::strerror(errno)));
      ScopedFd listed_dir(fd);
      auto listed = ListDirectory(fd);
      if (!listed.ok()) return absl::InternalError(absl::StrCat("output '", rel, "': ", listed.status().message()));
      std::sort(listed->begin(), listed->end(), [](const auto& a, const auto& b) { return a.name < b.name; });
      for (const DirectoryEntry& entry : *listed) {
        if (!seen_.insert(JoinRelative(rel, entry.name)).second) continue;
        if (absl::Status status = AddAt(fd, rel, entry.name, depth + 1); !status.ok()) return status;
      }
      return absl::OkStatus();
    }
    return absl::OkStatus();  // sockets, fifos and devices are not outputs
  }

  // A regular file: hashed, and a small one read into memory once (its digest is of those bytes,
  // which its upload, inlining and measuring then use: no file is read twice).
  absl::Status AddFile(int dir, const std::string& rel, const std::string& name) {
    int fd = ::openat(dir, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return absl::InternalError(absl::StrCat("output '", rel, "': ", std::strerror(errno)));
    ScopedFd file(fd);
    struct stat opened {};
    if (::fstat(fd, &opened) != 0) {
      return absl::InternalError(absl::StrCat("output '", rel, "': ", std::strerror(errno)));
    }
    TreeBlob blob;
    bool read = false;  // into memory
    if (opened.st_size <= kInMemoryFileBytes && in_memory_ + opened.st_size <= kInMemoryBytes) {
      auto bytes = ReadSmall(fd, opened.st_size);
      if (!bytes.ok()) {
        return absl::InternalError(absl::StrCat("reading output '", rel, "': ", bytes.status().message()));
      }
      if (bytes->has_value()) {
        blob.digest = Digest::OfBytes(**bytes);
        blob.data = std::move(**bytes);
        in_memory_ += static_cast<int64_t>(blob.data.size());
        read = true;
      } else if (::lseek(fd, 0, SEEK_SET) != 0) {  // it grew meanwhile: hashed as a large one
        return absl::InternalError(absl::StrCat("output '", rel, "': ", std::strerror(errno)));
      }
    }
    if (!read) {
      auto digest = DigestFd(fd, opened.st_size);
      if (!digest.ok()) {
        return absl::InternalError(absl::StrCat("reading output '", rel, "': ", digest.status().message()));
      }
      blob = TreeBlob{*digest, "", rel, work_fd_};
    }
    if (collected_) collected_(fd, opened, blob.digest);
    reapi::OutputFile f;
    f.set_path(rel);
    *f.mutable_digest() = blob.digest.ToProto();
    f.set_is_executable((opened.st_mode & S_IXUSR) != 0);
    out_.files.push_back(std::move(f));
    out_.uploads.push_back(std::move(blob));
    return absl::OkStatus();
  }

  // The open file `fd`, `size` bytes by its fstat: nullopt when it turns out longer (it grew).
  static absl::StatusOr<std::optional<std::string>> ReadSmall(int fd, int64_t size) {
    std::string bytes(static_cast<size_t>(size) + 1, '\0');  // a byte more: its end seen in the same read
    auto got = ReadFull(fd, bytes.data(), bytes.size());
    if (!got.ok()) return got.status();
    if (*got > static_cast<size_t>(size)) return std::nullopt;
    bytes.resize(*got);
    return std::optional<std::string>(std::move(bytes));
  }

  absl::Status AddLink(int dir, const std::string& parent, const std::string& name) {
    const std::string rel = JoinRelative(parent, name);
    std::string target(4096, '\0');
    ssize_t n = ::readlinkat(dir, name.c_str(), target.data(), target.size());
    if (n < 0) return absl::InternalError(absl::StrCat("output '", rel, "': ", std::strerror(errno)));
    target.resize(static_cast<size_t>(n));
    auto refuse = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("output '", rel, "' is a symlink to '", target, "', ", why,
                                                     ": only relative symlinks that stay inside the work directory "
                                                     "are kept (as symlinks, never as their target's contents)"));
    };
    if (std::string why = SymlinkEscapesByName(parent, target); !why.empty()) {
      return refuse(target.empty() || target.front() != '/' ? "outside the work directory" : "an absolute path");
    }
    reapi::OutputSymlink link;
    link.set_path(rel);
    link.set_target(target);
    out_.symlinks.push_back(std::move(link));
    return absl::OkStatus();
  }

  int work_fd_;
  int64_t in_memory_ = 0;  // bytes of files read into memory
  const CollectedFileFn collected_;  // (may be empty)
  std::set<std::string> seen_;
  CollectedOutputs out_;
};

}  // namespace

absl::StatusOr<CollectedOutputs> CollectOutputs(int work_fd, const std::string& work_dir,
                                                const std::vector<std::string>& patterns,
                                                const CollectedFileFn& collected) {
  Collector collector(work_fd, collected);
  std::vector<std::string> warnings;
  for (const std::string& pattern : patterns) {
    // Globbing only finds names; every hit is then opened beneath the work directory.
    glob_t g{};
    const std::string full = absl::StrCat(work_dir, "/", pattern);
    int rc = ::glob(full.c_str(), GLOB_NOSORT | GLOB_NOESCAPE, nullptr, &g);
    std::vector<std::string> hits;
    for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
      absl::string_view hit = g.gl_pathv[i];
      if (absl::ConsumePrefix(&hit, work_dir + "/")) hits.emplace_back(hit);
    }
    globfree(&g);
    if (hits.empty()) warnings.push_back(absl::StrCat("output '", pattern, "' matched nothing"));
    std::sort(hits.begin(), hits.end());
    for (const std::string& hit : hits) {
      if (absl::Status s = collector.Add(hit); !s.ok()) return s;
    }
  }
  CollectedOutputs out = collector.Take();
  out.warnings = std::move(warnings);
  return out;
}

namespace {

// A file or in-memory blob's bytes (files opened as the upload would open them).
absl::StatusOr<std::string> ReadBlobBytes(const TreeBlob& blob) {
  if (blob.file.empty()) return blob.data;
  auto fd = OpenBlobFile(blob);
  if (!fd.ok()) return fd.status();
  std::string bytes;
  char buffer[16 << 10];
  while (true) {
    const ssize_t n = ::read(fd->get(), buffer, sizeof(buffer));
    if (n < 0) return absl::InternalError(absl::StrCat("reading ", blob.file.string(), ": ", std::strerror(errno)));
    if (n == 0) break;
    bytes.append(buffer, static_cast<size_t>(n));
    if (static_cast<int64_t>(bytes.size()) > blob.digest.size()) break;  // changed since hashed
  }
  return bytes;
}

}  // namespace

std::vector<TreeBlob> InlineSmallBlobs(
    const std::vector<TreeBlob>& blobs, int64_t per_blob, int64_t total,
    google::protobuf::RepeatedPtrField<reapi::BatchUpdateBlobsRequest::Request>* inline_blobs) {
  std::vector<TreeBlob> to_upload;
  int64_t inline_bytes = 0;
  for (const TreeBlob& blob : blobs) {
    if (blob.digest.empty_blob()) continue;
    if (blob.digest.size() <= per_blob && inline_bytes + blob.digest.size() <= total) {
      auto bytes = ReadBlobBytes(blob);
      // Bytes in memory are what their digest was computed from; a file may have changed since.
      if (bytes.ok() && (blob.file.empty() || Digest::OfBytes(*bytes) == blob.digest)) {
        auto* entry = inline_blobs->Add();
        *entry->mutable_digest() = blob.digest.ToProto();
        entry->set_data(std::move(*bytes));
        inline_bytes += blob.digest.size();
        continue;
      }
    }
    to_upload.push_back(blob);
  }
  return to_upload;
}

}  // namespace assay
