#include "worker/step_caches.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/base/byte_size.h"
#include "common/base/file_util.h"
#include "common/tree/merkle.h"
#include "common/tree/safe_fs.h"
#include "worker/output_collector.h"

namespace assay {
namespace fs = std::filesystem;

namespace {

struct MergeCounts {
  int64_t moved = 0;    // entries moved whole (a folder counts once)
  int64_t kept = 0;     // entries the work directory had already: left as they were
};

// Moves every entry of `src` into `dst` where `dst` has none of that name; where both are real folders
// it descends. Nothing is followed: a symlink or file already in `dst` stays, and what the cache had
// there is dropped with the staging folder.
absl::Status MergeInto(int src, int dst, MergeCounts* counts) {
  const int listing = dup(src);
  if (listing < 0) return absl::InternalError("dup failed");
  DIR* dir = fdopendir(listing);
  if (dir == nullptr) {
    close(listing);
    return absl::InternalError("fdopendir failed");
  }
  std::vector<std::string> names;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(dir);
  for (const std::string& name : names) {
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

}  // namespace

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
    auto restored = made.ok() ? fetcher_->Materialize(*root, dir) : absl::StatusOr<InputFetcher::Stats>(made);
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
