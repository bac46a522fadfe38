#include "worker/input_fetcher.h"

#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/base/status_util.h"
#include "common/tree/safe_fs.h"

namespace assay {
namespace fs = std::filesystem;

absl::StatusOr<InputFetcher::Stats> InputFetcher::Materialize(const Digest& root, const fs::path& dir,
                                                              const std::vector<reapi::Directory>* known_tree,
                                                              InputLinks::Claims* claims, SpareDirectories* spares,
                                                              KeptFolders::Folder* kept) {
  if (links_ == nullptr) claims = nullptr;
  if (claims == nullptr || kept_folders_ == nullptr) kept = nullptr;
  Stats stats;
  // Each directory is keyed by the digest of its bytes, so a directory that does not hash to what
  // its parent names is simply not found.
  absl::flat_hash_map<Digest, const reapi::Directory*> by_digest;
  absl::StatusOr<std::vector<reapi::Directory>> directories = std::vector<reapi::Directory>();
  if (known_tree != nullptr) {
    for (const auto& d : *known_tree) by_digest[Digest::OfMessage(d)] = &d;
  }
  if (!by_digest.contains(root)) {
    by_digest.clear();
    directories = cas_->GetTree(root);
    if (!directories.ok()) return directories.status();
    for (const auto& d : *directories) by_digest[Digest::OfMessage(d)] = &d;
  }
  DirectoryLoader load = [&](const Digest& digest) -> absl::StatusOr<reapi::Directory> {
    auto it = by_digest.find(digest);
    if (it == by_digest.end()) return absl::NotFoundError(absl::StrCat("directory ", digest.ToString(), " missing from tree"));
    return *it->second;
  };
  // The coordinator validated the tree at submission; this worker checks it again for itself.
  if (auto valid = ValidateTree(root, load, limits_); !valid.ok()) return valid.status();
  // A kept folder keeps what the tree has at the same paths; the task claims those files at once.
  absl::flat_hash_set<std::string> in_place;
  if (kept != nullptr) {
    // The plan the folder was chosen by, when it was (the same tree: its directories by digest).
    auto plan = kept->plan.has_value() ? absl::StatusOr<KeptFolders::Plan>(std::move(*kept->plan))
                                       : KeptFolders::PlanOf(root, load, limits_);
    auto fitted = plan.ok() ? kept_folders_->Fit(kept, *plan, &stats.released) : plan.status();
    if (!fitted.ok()) return fitted.status();
    for (auto& [path, claim] : *fitted) {
      in_place.insert(path);
      claim.unchanged = false;  // this task's step has yet to leave it so
      claims->files.push_back(std::move(claim));
    }
  }
  auto tree = TreeWriter::Open(dir, limits_, spares, kept != nullptr ? &kept->dirs : nullptr);
  if (!tree.ok()) return tree.status();
  auto files = (*tree)->Layout(root, load);
  if (!files.ok()) return files.status();
  stats.files = static_cast<int64_t>(files->size());
  for (const auto& f : *files) stats.bytes += f.digest.size();
  std::vector<bool> linked(files->size(), false);
  for (size_t i = 0; !in_place.empty() && i < files->size(); ++i) {
    if (!in_place.contains((*files)[i].path())) continue;
    linked[i] = true;
    stats.local_hits++;
    stats.linked++;
    stats.kept++;
  }
  auto remote = WriteLocalFiles(**tree, *files, stats, claims, &linked);
  if (!remote.ok()) return remote.status();
  if (absl::Status s = FetchFiles(**tree, *remote, stats); !s.ok()) return s;
  // What was written, not linked, becomes this host's copy for the tasks after this one.
  for (size_t i = 0; claims != nullptr && i < files->size(); ++i) {
    if (!linked[i] && !(*files)[i].digest.empty_blob()) links_->Adopt(**tree, (*files)[i], claims);
  }
  if (absl::Status s = (*tree)->FinishSymlinks(); !s.ok()) return s;
  return stats;
}

absl::Status InputFetcher::WriteFromMemory(TreeWriter& tree, const TreeWriter::File& file, absl::string_view bytes) {
  auto writer = tree.CreateFile(file);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = writer->Append(bytes); !s.ok()) return s;
  return Annotate(writer->Commit(), absl::StrCat("input ", file.path()));
}

absl::StatusOr<InputFetcher::FileRefs> InputFetcher::WriteLocalFiles(TreeWriter& tree,
                                                                     const std::vector<TreeWriter::File>& files,
                                                                     Stats& stats, InputLinks::Claims* claims,
                                                                     std::vector<bool>* linked) {
  FileRefs remote;
  // Links first: a linked file needs nothing from the local cache.
  for (size_t i = 0; claims != nullptr && i < files.size(); ++i) {
    if ((*linked)[i] || files[i].digest.empty_blob() || !links_->Link(tree, files[i], claims)) continue;
    (*linked)[i] = true;
    stats.local_hits++;
    stats.linked++;
  }
  absl::flat_hash_set<Digest> absent;
  std::vector<Digest> wanted;
  for (size_t i = 0; local_cache_ != nullptr && i < files.size(); ++i) {
    if (!(*linked)[i]) wanted.push_back(files[i].digest);
  }
  if (!wanted.empty()) {
    auto missing = local_cache_->FindMissing(wanted);
    if (missing.ok()) {
      absent.insert(missing->begin(), missing->end());
    } else {
      for (const Digest& d : wanted) absent.insert(d);
    }
  }
  for (size_t i = 0; i < files.size(); ++i) {
    const TreeWriter::File& f = files[i];
    if ((*linked)[i]) continue;
    if (f.digest.empty_blob()) {
      if (absl::Status s = WriteFromMemory(tree, f, ""); !s.ok()) return s;
      continue;
    }
    if (local_cache_ == nullptr || absent.contains(f.digest)) {
      remote.push_back(&f);
      continue;
    }
    auto writer = tree.CreateFile(f);
    if (!writer.ok()) return writer.status();
    absl::Status s = local_cache_->Read(f.digest, 0, 0, [&](absl::string_view piece) { return writer->Append(piece); });
    if (s.ok()) s = writer->Commit();
    if (s.ok()) {
      stats.local_hits++;
    } else {
      // Evicted meanwhile, or damaged on disk: the file is gone again; fetch it.
      spdlog::warn("local cache copy of {} unusable ({}); fetching it", f.digest.ToString(), s.message());
      remote.push_back(&f);
    }
  }
  return remote;
}

absl::Status InputFetcher::FetchFiles(TreeWriter& tree, const FileRefs& remote, Stats& stats) {
  FileRefs batch;
  absl::flat_hash_set<Digest> in_batch;
  int64_t batch_bytes = 0;
  for (const auto* f : remote) {
    if (f->digest.size() > CasClient::kBatchBlobLimit) {
      auto writer = tree.CreateFile(*f);
      if (!writer.ok()) return writer.status();
      std::unique_ptr<BlobWriter> tee;
      if (local_cache_ != nullptr) {
        auto opened = local_cache_->OpenWrite(f->digest);
        if (opened.ok()) tee = std::move(*opened);
      }
      if (absl::Status s = cas_->ReadInto(f->digest, &*writer, tee.get()); !s.ok()) {
        return Annotate(s, absl::StrCat("input ", f->path()));
      }
      stats.fetched_bytes += f->digest.size();
      continue;
    }
    const bool new_blob = !in_batch.contains(f->digest);
    if (new_blob && batch_bytes + f->digest.size() > CasClient::kBatchTotalLimit) {
      if (absl::Status s = FetchBatch(tree, batch, stats); !s.ok()) return s;
      batch.clear();
      in_batch.clear();
      batch_bytes = 0;
    }
    batch.push_back(f);
    if (in_batch.insert(f->digest).second) batch_bytes += f->digest.size();
  }
  return FetchBatch(tree, batch, stats);
}

absl::Status InputFetcher::FetchBatch(TreeWriter& tree, const FileRefs& batch, Stats& stats) {
  if (batch.empty()) return absl::OkStatus();
  absl::flat_hash_map<Digest, std::vector<const TreeWriter::File*>> wanted;
  std::vector<Digest> digests;
  for (const auto* f : batch) {
    if (wanted[f->digest].empty()) digests.push_back(f->digest);
    wanted[f->digest].push_back(f);
  }
  auto entries = cas_->BatchRead(digests);
  if (!entries.ok()) return entries.status();
  for (const CasClient::BatchEntry& entry : *entries) {
    auto it = wanted.find(entry.digest);
    if (it == wanted.end()) continue;  // not asked for: ignored
    if (!entry.status.ok()) return Annotate(entry.status, absl::StrCat("input ", it->second.front()->path()));
    stats.fetched_bytes += static_cast<int64_t>(entry.data.size());
    for (const auto* f : it->second) {
      if (absl::Status s = WriteFromMemory(tree, *f, entry.data); !s.ok()) return s;
    }
    // Only bytes that matched their digest reach the local cache.
    if (local_cache_ != nullptr) local_cache_->Put(entry.digest, entry.data).IgnoreError();
    wanted.erase(it);
  }
  if (!wanted.empty()) {
    return absl::DataLossError(absl::StrCat("BatchReadBlobs did not return input ", wanted.begin()->second.front()->path()));
  }
  return absl::OkStatus();
}

void InputFetcher::KeepLocally(const std::vector<TreeBlob>& blobs) {
  if (local_cache_ == nullptr) return;
  std::vector<Digest> digests;
  for (const TreeBlob& b : blobs) {
    if (!b.digest.empty_blob()) digests.push_back(b.digest);  // the empty blob is always there
  }
  if (digests.empty()) return;
  auto missing = local_cache_->FindMissing(digests);
  if (!missing.ok()) return;
  absl::flat_hash_set<Digest> wanted(missing->begin(), missing->end());
  for (const TreeBlob& blob : blobs) {
    if (!wanted.erase(blob.digest)) continue;
    if (blob.file.empty()) {
      local_cache_->Put(blob.digest, blob.data).IgnoreError();
      continue;
    }
    auto fd = OpenBlobFile(blob);
    auto writer = fd.ok() ? local_cache_->OpenWrite(blob.digest) : fd.status();
    if (!writer.ok()) continue;
    std::string buffer;
    bool ok = true;
    for (int64_t left = blob.digest.size(); ok && left > 0;) {
      buffer.resize(std::min<size_t>(CasClient::kStreamChunk, static_cast<size_t>(left)));
      auto got = ReadFull(fd->get(), buffer.data(), buffer.size());
      ok = got.ok() && *got > 0 && (*writer)->Append(absl::string_view(buffer.data(), *got)).ok();
      if (ok) left -= static_cast<int64_t>(*got);
    }
    // The local cache checks the digest on commit: a file changed since it was hashed is refused.
    if (ok) (*writer)->Commit().IgnoreError();
  }
}

}  // namespace assay
