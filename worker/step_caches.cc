#include "worker/step_caches.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/base/byte_size.h"
#include "common/base/file_util.h"
#include "common/tree/merkle.h"
#include "common/tree/safe_fs.h"
#include "worker/output_collector.h"

namespace assay {
namespace fs = std::filesystem;

namespace {

// The names in the open directory `dir` (without "." and "..").
absl::StatusOr<std::vector<std::string>> EntryNames(int dir) {
  const int listing = dup(dir);
  if (listing < 0) return absl::InternalError(absl::StrCat("dup: ", strerror(errno)));
  DIR* stream = fdopendir(listing);
  if (stream == nullptr) {
    close(listing);
    return absl::InternalError(absl::StrCat("fdopendir: ", strerror(errno)));
  }
  std::vector<std::string> names;
  while (dirent* entry = readdir(stream)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(stream);
  return names;
}

struct MergeCounts {
  int64_t moved = 0;    // entries moved whole (a folder counts once)
  int64_t kept = 0;     // entries the work directory had already: left as they were
};

// Moves every entry of `src` into `dst` where `dst` has none of that name; where both are real folders
// it descends. Nothing is followed: a symlink or file already in `dst` stays, and what the cache had
// there is dropped with the staging folder.
absl::Status MergeInto(int src, int dst, MergeCounts* counts) {
  auto names = EntryNames(src);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    struct stat there {};
    if (fstatat(dst, name.c_str(), &there, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) return absl::InternalError(absl::StrCat("stat ", name, ": ", strerror(errno)));
      if (renameat(src, name.c_str(), dst, name.c_str()) != 0) {
        return absl::InternalError(absl::StrCat("moving ", name, ": ", strerror(errno)));
      }
      ++counts->moved;
      continue;
    }
    struct stat here {};
    if (fstatat(src, name.c_str(), &here, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(here.st_mode) ||
        !S_ISDIR(there.st_mode)) {
      ++counts->kept;
      continue;
    }
    auto from = OpenBeneath(src, name, O_RDONLY | O_DIRECTORY);
    auto to = OpenBeneath(dst, name, O_RDONLY | O_DIRECTORY);
    if (!from.ok()) return from.status();
    if (!to.ok()) return to.status();
    if (absl::Status s = MergeInto(from->get(), to->get(), counts); !s.ok()) return s;
  }
  return absl::OkStatus();
}


// Copies the tree in `src` into the empty folder `dst`: folders, regular files (copied in the kernel)
// and symlinks (as links). Nothing is followed. Adds the files' bytes to `bytes`.
absl::Status CopyTree(int src, int dst, int64_t* bytes) {
  auto names = EntryNames(src);
  if (!names.ok()) return names.status();
  auto fail = [](const std::string& what, const std::string& name) {
    return absl::InternalError(absl::StrCat(what, " ", name, ": ", strerror(errno)));
  };
  for (const std::string& name : *names) {
    struct stat st {};
    if (fstatat(src, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return fail("stat", name);
    if (S_ISDIR(st.st_mode)) {
      auto to = MakeDirectoryAt(dst, name);
      if (!to.ok()) return to.status();
      auto from = OpenBeneath(src, name, O_RDONLY | O_DIRECTORY);
      if (!from.ok()) return from.status();
      if (absl::Status s = CopyTree(from->get(), to->get(), bytes); !s.ok()) return s;
    } else if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      const ssize_t n = readlinkat(src, name.c_str(), target.data(), target.size());
      if (n < 0) return fail("readlink", name);
      target.resize(static_cast<size_t>(n));
      if (symlinkat(target.c_str(), dst, name.c_str()) != 0) return fail("symlink", name);
    } else if (S_ISREG(st.st_mode)) {
      auto in = OpenBeneath(src, name, O_RDONLY);
      if (!in.ok()) return in.status();
      auto out = OpenBeneath(dst, name, O_WRONLY | O_CREAT | O_EXCL, st.st_mode & 0755);
      if (!out.ok()) return out.status();
      for (off_t left = st.st_size; left > 0;) {
        const ssize_t n = copy_file_range(in->get(), nullptr, out->get(), nullptr, static_cast<size_t>(left), 0);
        if (n <= 0) return fail("copying", name);
        left -= n;
      }
      *bytes += st.st_size;
    }
  }
  return absl::OkStatus();
}

}  // namespace

StepCaches::StepCaches(CasClient* cas, InputFetcher* fetcher, fs::path trees_dir, int64_t trees_bytes)
    : cas_(cas), fetcher_(fetcher), trees_dir_(std::move(trees_dir)), trees_bytes_(trees_bytes) {
  std::error_code ec;
  if (trees_dir_.empty()) return;
  for (const auto& entry : fs::directory_iterator(trees_dir_, ec)) {
    if (entry.path().filename().string().rfind(".new-", 0) == 0) RemoveAll(entry.path()).IgnoreError();
  }
}

void StepCaches::Restore(const assay::v1::Assignment& assignment, const fs::path& staging, const NoteFn& note,
                         Figures* figures) {
  for (int i = 0; i < assignment.caches_size(); ++i) {
    const assay::v1::StepCacheUse& cache = assignment.caches(i);
    if (!cache.has_restore_root()) {
      note(absl::StrCat("[assay] cache ", cache.key(), ": none saved yet; it will be saved if the step succeeds\n"));
      continue;
    }
    auto root = Digest::FromProto(cache.restore_root());
    const fs::path dir = staging / std::to_string(i);
    absl::Status made = root.ok() ? MakeDirs(dir) : root.status();
    auto restored = made.ok() ? RestoreInto(*root, dir) : absl::StatusOr<InputFetcher::Stats>(made);
    if (!restored.ok()) {
      note(absl::StrCat("[assay] warning: cache ", cache.restored_key(), " not restored (", restored.status().message(),
                        "); the step runs without it\n"));
      RemoveAll(dir).IgnoreError();
      continue;
    }
    const int64_t local_bytes = restored->bytes - restored->fetched_bytes;
    figures->restored_bytes += restored->bytes;
    figures->local_bytes += local_bytes;
    figures->fetched_bytes += restored->fetched_bytes;
    note(absl::StrCat("[assay] cache ", cache.key(),
                      cache.restored_key() == cache.key() ? ": restored" : absl::StrCat(": restored from ", cache.restored_key()),
                      ", ", restored->files, " files, ", FormatBytes(restored->bytes), " (",
                      FormatBytes(local_bytes), " from this host's cache, ", FormatBytes(restored->fetched_bytes),
                      " fetched)\n"));
  }
}

absl::StatusOr<InputFetcher::Stats> StepCaches::RestoreInto(const Digest& root, const fs::path& dir) {
  if (trees_dir_.empty()) return fetcher_->Materialize(root, dir);
  InputFetcher::Stats stats;
  auto kept = KeptTree(root, &stats);
  if (kept.ok()) {
    auto from = OpenDirectory(*kept);
    auto to = OpenDirectory(dir);
    int64_t bytes = 0;
    absl::Status copied = !from.ok() ? from.status() : !to.ok() ? to.status() : CopyTree(from->get(), to->get(), &bytes);
    if (copied.ok()) {
      if (stats.files == 0) stats.bytes = bytes;  // all of it from this host's copy
      return stats;
    }
    // Trimmed meanwhile, or damaged: written from the blobs instead.
    spdlog::warn("this host's copy of cache tree {} unusable ({}); writing it from the blobs", root.ToString(),
                 std::string(copied.message()));
    if (absl::Status s = RemoveAll(dir); !s.ok()) return s;
    if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  }
  return fetcher_->Materialize(root, dir);
}

absl::StatusOr<fs::path> StepCaches::KeptTree(const Digest& root, InputFetcher::Stats* stats) {
  const fs::path kept = trees_dir_ / absl::StrCat(root.hash(), "_", root.size());
  std::error_code ec;
  if (fs::is_directory(kept, ec)) {
    fs::last_write_time(kept, fs::file_time_type::clock::now(), ec);  // recently used
    return kept;
  }
  const fs::path fresh = trees_dir_ / absl::StrCat(".new-", RandomHex(6));
  if (absl::Status s = MakeDirs(fresh); !s.ok()) return s;
  auto written = fetcher_->Materialize(root, fresh);  // validated as any input tree
  if (!written.ok()) {
    RemoveAll(fresh).IgnoreError();
    return written.status();
  }
  *stats = *written;
  if (!WriteFile(fs::path(kept.string() + ".bytes"), std::to_string(written->bytes)).ok() ||
      std::rename(fresh.c_str(), kept.c_str()) != 0) {
    RemoveAll(fresh).IgnoreError();  // another task kept it first, or no room: it is written again below
  }
  Trim(kept);
  return kept;
}

void StepCaches::Trim(const fs::path& keep) {
  struct Kept {
    fs::file_time_type used;
    fs::path path;
    int64_t bytes;
  };
  std::vector<Kept> trees;
  int64_t total = 0;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(trees_dir_, ec)) {
    if (!entry.is_directory(ec) || entry.path().filename().string().front() == '.') continue;
    int64_t bytes = 0;
    auto text = ReadFile(entry.path().string() + ".bytes");
    if (!text.ok() || !absl::SimpleAtoi(*text, &bytes)) bytes = 0;
    trees.push_back({fs::last_write_time(entry.path(), ec), entry.path(), bytes});
    total += bytes;
  }
  std::sort(trees.begin(), trees.end(), [](const Kept& a, const Kept& b) { return a.used < b.used; });
  for (const Kept& tree : trees) {
    if (total <= trees_bytes_) break;
    if (tree.path == keep) continue;
    RemoveAll(tree.path).IgnoreError();
    fs::remove(tree.path.string() + ".bytes", ec);
    total -= tree.bytes;
  }
}

void StepCaches::Place(const fs::path& staging, const fs::path& exec_dir, const NoteFn& note) {
  std::error_code ec;
  if (!fs::exists(staging, ec)) return;
  auto work = OpenDirectory(exec_dir);
  for (const auto& entry : fs::directory_iterator(staging, ec)) {
    auto from = OpenDirectory(entry.path());
    MergeCounts counts;
    absl::Status s = !work.ok() ? work.status() : !from.ok() ? from.status() : MergeInto(from->get(), work->get(), &counts);
    if (!s.ok()) note(absl::StrCat("[assay] warning: a restored cache is partly in place: ", s.message(), "\n"));
    if (counts.kept > 0) {
      note(absl::StrCat("[assay] cache: ", counts.kept, " restored entries left out: the step's inputs have them\n"));
    }
  }
  RemoveAll(staging).IgnoreError();
}

void StepCaches::Save(const assay::v1::Assignment& assignment, const fs::path& exec_dir, assay::v1::TaskResult* out,
                      const NoteFn& note, Figures* figures) {
  for (const assay::v1::StepCacheUse& cache : assignment.caches()) {
    if (!cache.save()) continue;
    auto fail = [&](const absl::Status& s) {
      note(absl::StrCat("[assay] warning: cache ", cache.key(), " not saved: ", s.message(), "\n"));
    };
    auto work = OpenDirectory(exec_dir);
    if (!work.ok()) return fail(work.status());
    const std::vector<std::string> paths(cache.paths().begin(), cache.paths().end());
    auto collected = CollectOutputs(work->get(), exec_dir.string(), paths);
    if (!collected.ok()) {
      fail(collected.status());
      continue;
    }
    if (collected->files.empty() && collected->symlinks.empty()) {
      note(absl::StrCat("[assay] cache ", cache.key(), ": its paths hold nothing; not saved\n"));
      continue;
    }
    // The tree of the collected files, its directories kept in memory and uploaded with the files.
    std::map<Digest, std::string> directories;
    const std::string empty = reapi::Directory().SerializeAsString();
    directories[Digest::OfBytes(empty)] = empty;
    auto root = AddFilesToTree(
        Digest::OfBytes(empty), collected->files, collected->symlinks,
        [&directories](const Digest& d) -> absl::StatusOr<reapi::Directory> {
          reapi::Directory dir;
          auto it = directories.find(d);
          if (it == directories.end() || !dir.ParseFromString(it->second)) return absl::NotFoundError(d.ToString());
          return dir;
        },
        [&directories](const Digest& d, const std::string& bytes) {
          directories[d] = bytes;
          return absl::OkStatus();
        });
    if (!root.ok()) {
      fail(root.status());
      continue;
    }
    std::vector<TreeBlob> blobs = std::move(collected->uploads);
    for (const auto& [digest, bytes] : directories) blobs.push_back(TreeBlob{digest, bytes, {}, -1});
    int64_t bytes = 0;
    for (const auto& f : collected->files) bytes += f.digest().size_bytes();
    auto uploaded = cas_->Upload(blobs);
    if (!uploaded.ok()) {
      fail(uploaded.status());
      continue;
    }
    fetcher_->KeepLocally(blobs);
    figures->saved_bytes += bytes;
    figures->uploaded_bytes += uploaded->bytes_sent;
    auto* saved = out->add_saved_caches();
    saved->set_key(cache.key());
    *saved->mutable_root() = root->ToProto();
    saved->set_files(static_cast<int64_t>(collected->files.size()));
    saved->set_bytes(bytes);
    note(absl::StrCat("[assay] cache ", cache.key(), ": saved, ", collected->files.size(), " files, ", FormatBytes(bytes),
                      " (", FormatBytes(uploaded->bytes_sent), " uploaded, the rest already in the CAS)\n"));
  }
}

}  // namespace assay
