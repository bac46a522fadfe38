#include "common/remote/cas_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <grpcpp/client_context.h>
#include <spdlog/spdlog.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/base/file_util.h"
#include "common/base/status_util.h"

namespace assay {
namespace fs = std::filesystem;

namespace {

void SetDeadline(grpc::ClientContext* context, absl::Time deadline) { context->set_deadline(absl::ToChronoTime(deadline)); }

absl::Status EntryStatus(const google::rpc::Status& status, absl::string_view what) {
  if (status.code() == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.code()), absl::StrCat(what, ": ", status.message()));
}

// Reads up to `buffer.size()` bytes; fewer only at the end of the file.
absl::StatusOr<size_t> ReadFull(int fd, std::string& buffer, size_t want) {
  size_t got = 0;
  while (got < want) {
    ssize_t n = ::read(fd, buffer.data() + got, want - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::InternalError(absl::StrCat("read failed: ", std::strerror(errno)));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

}  // namespace

absl::StatusOr<ScopedFd> OpenBlobFile(const TreeBlob& blob) {
  if (blob.base_fd >= 0) return OpenBeneath(blob.base_fd, blob.file.string(), O_RDONLY);
  int fd = ::open(blob.file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("cannot open ", blob.file.string(), ": ", std::strerror(errno)));
  return ScopedFd(fd);
}

CasClient::CasClient(std::shared_ptr<grpc::Channel> channel, std::string instance_name, RetryPolicy retry)
    : instance_name_(std::move(instance_name)),
      retrier_(retry),
      cas_(reapi::ContentAddressableStorage::NewStub(channel)),
      bytestream_(google::bytestream::ByteStream::NewStub(channel)) {}

absl::Time CasClient::TransferDeadline(absl::Time deadline, int64_t bytes) const {
  return deadline + absl::Seconds(bytes >> 20);
}

void CasClient::KeepLocally(const std::vector<TreeBlob>& blobs) {
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
      buffer.resize(std::min<size_t>(kStreamChunk, static_cast<size_t>(left)));
      auto got = ReadFull(fd->get(), buffer, buffer.size());
      ok = got.ok() && *got > 0 && (*writer)->Append(absl::string_view(buffer.data(), *got)).ok();
      if (ok) left -= static_cast<int64_t>(*got);
    }
    // The local cache checks the digest on commit: a file changed since it was hashed is refused.
    if (ok) (*writer)->Commit().IgnoreError();
  }
}

absl::StatusOr<std::vector<Digest>> CasClient::FindMissing(const std::vector<Digest>& digests) {
  std::vector<Digest> missing;
  constexpr size_t kPage = 10'000;
  for (size_t start = 0; start < digests.size(); start += kPage) {
    reapi::FindMissingBlobsRequest request;
    request.set_instance_name(instance_name_);
    for (size_t i = start; i < std::min(digests.size(), start + kPage); ++i) {
      *request.add_blob_digests() = digests[i].ToProto();
    }
    reapi::FindMissingBlobsResponse response;
    absl::Status status = retrier_.Run("FindMissingBlobs", [&](absl::Time deadline) {
      grpc::ClientContext context;
      SetDeadline(&context, deadline);
      response.Clear();
      return Annotate(FromGrpc(cas_->FindMissingBlobs(&context, request, &response)), "FindMissingBlobs");
    });
    if (!status.ok()) return status;
    for (const auto& d : response.missing_blob_digests()) {
      auto digest = Digest::FromProto(d);
      if (!digest.ok()) return digest.status();
      missing.push_back(*digest);
    }
  }
  return missing;
}

absl::StatusOr<CasClient::UploadStats> CasClient::Upload(const std::vector<TreeBlob>& blobs) {
  absl::flat_hash_map<Digest, const TreeBlob*> by_digest;
  std::vector<Digest> digests;
  for (const TreeBlob& blob : blobs) {
    if (by_digest.emplace(blob.digest, &blob).second) digests.push_back(blob.digest);
  }
  auto missing = FindMissing(digests);
  if (!missing.ok()) return missing.status();
  UploadStats stats;
  stats.blobs_present = static_cast<int64_t>(digests.size() - missing->size());
  std::vector<const TreeBlob*> batch;
  int64_t batch_bytes = 0;
  for (const Digest& digest : *missing) {
    const TreeBlob* blob = by_digest[digest];
    stats.blobs_sent++;
    stats.bytes_sent += digest.size();
    if (digest.size() > kBatchBlobLimit) {
      if (absl::Status s = WriteStream(digest, *blob); !s.ok()) return s;
      continue;
    }
    if (batch_bytes + digest.size() > kBatchTotalLimit) {
      if (absl::Status s = BatchUpload(batch); !s.ok()) return s;
      batch.clear();
      batch_bytes = 0;
    }
    batch.push_back(blob);
    batch_bytes += digest.size();
  }
  if (!batch.empty()) {
    if (absl::Status s = BatchUpload(batch); !s.ok()) return s;
  }
  return stats;
}

absl::Status CasClient::UploadBytes(const Digest& digest, const std::string& bytes) {
  std::vector<TreeBlob> blobs{TreeBlob{digest, bytes, {}}};
  auto stats = Upload(blobs);
  return stats.status();
}

absl::Status CasClient::BatchUpload(const std::vector<const TreeBlob*>& blobs) {
  reapi::BatchUpdateBlobsRequest request;
  request.set_instance_name(instance_name_);
  for (const TreeBlob* blob : blobs) {
    auto* entry = request.add_requests();
    *entry->mutable_digest() = blob->digest.ToProto();
    if (blob->file.empty()) {
      entry->set_data(blob->data);
      continue;
    }
    auto fd = OpenBlobFile(*blob);
    if (!fd.ok()) return fd.status();
    std::string data(static_cast<size_t>(blob->digest.size()) + 1, '\0');
    auto got = ReadFull(fd->get(), data, data.size());
    if (!got.ok()) return got.status();
    if (static_cast<int64_t>(*got) != blob->digest.size()) {
      return absl::AbortedError(absl::StrCat(blob->file.string(), " changed while it was being uploaded"));
    }
    data.resize(*got);
    entry->set_data(std::move(data));
  }
  reapi::BatchUpdateBlobsResponse response;
  absl::Status status = retrier_.Run("BatchUpdateBlobs", [&](absl::Time deadline) {
    grpc::ClientContext context;
    SetDeadline(&context, TransferDeadline(deadline, static_cast<int64_t>(request.ByteSizeLong())));
    response.Clear();
    return Annotate(FromGrpc(cas_->BatchUpdateBlobs(&context, request, &response)), "BatchUpdateBlobs");
  });
  if (!status.ok()) return status;
  for (const auto& r : response.responses()) {
    if (absl::Status s = EntryStatus(r.status(), absl::StrCat("uploading ", r.digest().hash())); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CasClient::WriteStream(const Digest& digest, const TreeBlob& blob) {
  return retrier_.Run(absl::StrCat("ByteStream.Write ", digest.ToString()), [&](absl::Time deadline) -> absl::Status {
    ScopedFd fd;
    if (!blob.file.empty()) {
      auto opened = OpenBlobFile(blob);
      if (!opened.ok()) return opened.status();
      fd = std::move(*opened);
    }
    grpc::ClientContext context;
    SetDeadline(&context, TransferDeadline(deadline, digest.size()));
    google::bytestream::WriteResponse response;
    auto writer = bytestream_->Write(&context, &response);
    const std::string resource = WriteResourceName(instance_name_, RandomHex(16), digest);
    int64_t offset = 0;
    bool ok = true;
    std::string buffer;
    absl::string_view rest = blob.data;
    while (ok && offset < digest.size()) {
      absl::string_view piece;
      if (fd.valid()) {
        buffer.resize(kStreamChunk);
        auto got = ReadFull(fd.get(), buffer, std::min<size_t>(kStreamChunk, static_cast<size_t>(digest.size() - offset)));
        if (!got.ok()) return got.status();
        if (*got == 0) return absl::AbortedError(absl::StrCat(blob.file.string(), " shrank while it was being uploaded"));
        piece = absl::string_view(buffer.data(), *got);
      } else {
        piece = rest.substr(0, kStreamChunk);
        rest.remove_prefix(piece.size());
        if (piece.empty()) break;
      }
      google::bytestream::WriteRequest request;
      if (offset == 0) request.set_resource_name(resource);
      request.set_write_offset(offset);
      request.set_data(std::string(piece));
      offset += static_cast<int64_t>(piece.size());
      request.set_finish_write(offset >= digest.size());
      ok = writer->Write(request);
    }
    writer->WritesDone();
    grpc::Status status = writer->Finish();
    if (!status.ok()) return Annotate(FromGrpc(status), absl::StrCat("ByteStream.Write ", digest.ToString()));
    if (response.committed_size() != digest.size()) {
      return absl::DataLossError(absl::StrCat("server committed ", response.committed_size(), " of ", digest.size(),
                                              " bytes of ", digest.ToString()));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::string> CasClient::ReadBlob(const Digest& digest) {
  if (digest.empty_blob()) return std::string();
  std::string out;
  absl::Status status = retrier_.Run(absl::StrCat("reading ", digest.ToString()), [&](absl::Time deadline) {
    grpc::ClientContext context;
    SetDeadline(&context, TransferDeadline(deadline, digest.size()));
    out.clear();
    if (digest.size() <= kBatchBlobLimit) {
      reapi::BatchReadBlobsRequest request;
      request.set_instance_name(instance_name_);
      *request.add_digests() = digest.ToProto();
      reapi::BatchReadBlobsResponse response;
      grpc::Status s = cas_->BatchReadBlobs(&context, request, &response);
      if (!s.ok()) return Annotate(FromGrpc(s), "BatchReadBlobs");
      if (response.responses_size() != 1) return absl::InternalError("BatchReadBlobs answered the wrong number of blobs");
      auto& r = *response.mutable_responses(0);
      if (absl::Status e = EntryStatus(r.status(), digest.ToString()); !e.ok()) return e;
      out = std::move(*r.mutable_data());
      return absl::OkStatus();
    }
    google::bytestream::ReadRequest request;
    request.set_resource_name(ReadResourceName(instance_name_, digest));
    auto reader = bytestream_->Read(&context, request);
    google::bytestream::ReadResponse response;
    while (reader->Read(&response) && static_cast<int64_t>(out.size()) <= digest.size()) out.append(response.data());
    return Annotate(FromGrpc(reader->Finish()), absl::StrCat("reading ", digest.ToString()));
  });
  if (!status.ok()) return status;
  if (Digest::OfBytes(out) != digest) {
    return absl::DataLossError(absl::StrCat("blob ", digest.ToString(), ": the bytes received (", out.size(),
                                            " bytes) do not match the digest"));
  }
  return out;
}

absl::Status CasClient::StreamInto(const Digest& digest, VerifiedFileWriter* writer, BlobWriter* tee) {
  absl::Status status = retrier_.Run(absl::StrCat("reading ", digest.ToString()), [&](absl::Time deadline) -> absl::Status {
    google::bytestream::ReadRequest request;
    request.set_resource_name(ReadResourceName(instance_name_, digest));
    request.set_read_offset(writer->written());
    grpc::ClientContext context;
    SetDeadline(&context, TransferDeadline(deadline, digest.size() - writer->written()));
    auto reader = bytestream_->Read(&context, request);
    google::bytestream::ReadResponse response;
    absl::Status written;
    while (written.ok() && reader->Read(&response)) {
      written = writer->Append(response.data());
      if (written.ok() && tee != nullptr) written = tee->Append(response.data());
    }
    if (!written.ok()) {
      context.TryCancel();
      reader->Finish().IgnoreError();
      return written;  // a local write error or bytes beyond the blob: final, not retried
    }
    absl::Status s = Annotate(FromGrpc(reader->Finish()), absl::StrCat("reading ", digest.ToString()));
    // A copy for the local cache cannot resume mid-way: let it go and carry on with the file alone.
    if (!s.ok() && tee != nullptr) tee = nullptr;
    return s;
  });
  if (!status.ok()) return status;
  if (absl::Status s = writer->Commit(); !s.ok()) return s;
  if (tee != nullptr) tee->Commit().IgnoreError();
  return absl::OkStatus();
}

absl::Status CasClient::DownloadToFile(const Digest& digest, const fs::path& path, bool executable) {
  auto writer = VerifiedFileWriter::Replace(path, digest, executable);
  if (!writer.ok()) return writer.status();
  if (digest.size() <= kBatchBlobLimit) {
    auto data = ReadBlob(digest);
    if (!data.ok()) return data.status();
    if (absl::Status s = writer->Append(*data); !s.ok()) return s;
    return writer->Commit();
  }
  return StreamInto(digest, &*writer, nullptr);
}

absl::StatusOr<std::vector<reapi::Directory>> CasClient::GetTree(const Digest& root) {
  std::vector<reapi::Directory> out;
  absl::Status status = retrier_.Run(absl::StrCat("GetTree ", root.ToString()), [&](absl::Time deadline) -> absl::Status {
    out.clear();
    std::string token;
    do {
      reapi::GetTreeRequest request;
      request.set_instance_name(instance_name_);
      *request.mutable_root_digest() = root.ToProto();
      request.set_page_token(token);
      grpc::ClientContext context;
      SetDeadline(&context, deadline);
      auto reader = cas_->GetTree(&context, request);
      reapi::GetTreeResponse response;
      token.clear();
      while (reader->Read(&response)) {
        for (auto& d : *response.mutable_directories()) out.push_back(std::move(d));
        token = response.next_page_token();
        if (static_cast<int64_t>(out.size()) > tree_limits_.max_entries) {
          context.TryCancel();
          reader->Finish().IgnoreError();
          return absl::InvalidArgumentError(
              absl::StrCat("input tree ", root.ToString(), " has more than ", tree_limits_.max_entries, " directories"));
        }
      }
      if (absl::Status s = FromGrpc(reader->Finish()); !s.ok()) return Annotate(s, absl::StrCat("GetTree ", root.ToString()));
    } while (!token.empty());
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return out;
}

absl::StatusOr<CasClient::FetchStats> CasClient::Materialize(const Digest& root, const fs::path& dir,
                                                             const std::vector<reapi::Directory>* known_tree) {
  FetchStats stats;
  // Each directory is keyed by the digest of its bytes, so a directory that does not hash to what
  // its parent names is simply not found.
  absl::flat_hash_map<Digest, const reapi::Directory*> by_digest;
  absl::StatusOr<std::vector<reapi::Directory>> directories = std::vector<reapi::Directory>();
  if (known_tree != nullptr) {
    for (const auto& d : *known_tree) by_digest[Digest::OfMessage(d)] = &d;
  }
  if (!by_digest.contains(root)) {
    by_digest.clear();
    directories = GetTree(root);
    if (!directories.ok()) return directories.status();
    for (const auto& d : *directories) by_digest[Digest::OfMessage(d)] = &d;
  }
  DirectoryLoader load = [&](const Digest& digest) -> absl::StatusOr<reapi::Directory> {
    auto it = by_digest.find(digest);
    if (it == by_digest.end()) return absl::NotFoundError(absl::StrCat("directory ", digest.ToString(), " missing from tree"));
    return *it->second;
  };
  // The coordinator validated the tree at submission; this worker checks it again for itself.
  if (auto valid = ValidateTree(root, load, tree_limits_); !valid.ok()) return valid.status();
  auto tree = TreeWriter::Open(dir, tree_limits_);
  if (!tree.ok()) return tree.status();
  auto files = (*tree)->Layout(root, load);
  if (!files.ok()) return files.status();
  stats.files = static_cast<int64_t>(files->size());
  for (const auto& f : *files) stats.bytes += f.digest.size();
  auto remote = WriteLocalFiles(**tree, *files, stats);
  if (!remote.ok()) return remote.status();
  if (absl::Status s = FetchFiles(**tree, *remote, stats); !s.ok()) return s;
  if (absl::Status s = (*tree)->FinishSymlinks(); !s.ok()) return s;
  return stats;
}

absl::Status CasClient::WriteFromMemory(TreeWriter& tree, const TreeWriter::File& file, absl::string_view bytes) {
  auto writer = tree.CreateFile(file);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = writer->Append(bytes); !s.ok()) return s;
  return Annotate(writer->Commit(), absl::StrCat("input ", file.path()));
}

absl::StatusOr<CasClient::FileRefs> CasClient::WriteLocalFiles(TreeWriter& tree, const std::vector<TreeWriter::File>& files,
                                                               FetchStats& stats) {
  FileRefs remote;
  absl::flat_hash_set<Digest> absent;
  if (local_cache_ != nullptr && !files.empty()) {
    std::vector<Digest> wanted;
    for (const auto& f : files) wanted.push_back(f.digest);
    auto missing = local_cache_->FindMissing(wanted);
    if (missing.ok()) {
      absent.insert(missing->begin(), missing->end());
    } else {
      for (const Digest& d : wanted) absent.insert(d);
    }
  }
  for (const auto& f : files) {
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

absl::Status CasClient::FetchFiles(TreeWriter& tree, const FileRefs& remote, FetchStats& stats) {
  FileRefs batch;
  int64_t batch_bytes = 0;
  for (const auto* f : remote) {
    if (f->digest.size() > kBatchBlobLimit) {
      auto writer = tree.CreateFile(*f);
      if (!writer.ok()) return writer.status();
      std::unique_ptr<BlobWriter> tee;
      if (local_cache_ != nullptr) {
        auto opened = local_cache_->OpenWrite(f->digest);
        if (opened.ok()) tee = std::move(*opened);
      }
      if (absl::Status s = StreamInto(f->digest, &*writer, tee.get()); !s.ok()) return Annotate(s, absl::StrCat("input ", f->path()));
      stats.fetched_bytes += f->digest.size();
      continue;
    }
    if (batch_bytes + f->digest.size() > kBatchTotalLimit) {
      if (absl::Status s = FetchBatch(tree, batch, batch_bytes, stats); !s.ok()) return s;
      batch.clear();
      batch_bytes = 0;
    }
    batch.push_back(f);
    batch_bytes += f->digest.size();
  }
  return FetchBatch(tree, batch, batch_bytes, stats);
}

absl::Status CasClient::FetchBatch(TreeWriter& tree, const FileRefs& batch, int64_t batch_bytes, FetchStats& stats) {
  if (batch.empty()) return absl::OkStatus();
  reapi::BatchReadBlobsRequest request;
  request.set_instance_name(instance_name_);
  absl::flat_hash_map<Digest, std::vector<const TreeWriter::File*>> wanted;
  for (const auto* f : batch) {
    if (wanted[f->digest].empty()) *request.add_digests() = f->digest.ToProto();
    wanted[f->digest].push_back(f);
  }
  reapi::BatchReadBlobsResponse response;
  absl::Status status = retrier_.Run("BatchReadBlobs", [&](absl::Time deadline) {
    grpc::ClientContext context;
    SetDeadline(&context, TransferDeadline(deadline, batch_bytes));
    response.Clear();
    return Annotate(FromGrpc(cas_->BatchReadBlobs(&context, request, &response)), "BatchReadBlobs");
  });
  if (!status.ok()) return status;
  for (const auto& r : response.responses()) {
    auto d = Digest::FromProto(r.digest());
    if (!d.ok()) return d.status();
    auto it = wanted.find(*d);
    if (it == wanted.end()) continue;  // not asked for: ignored
    if (absl::Status s = EntryStatus(r.status(), absl::StrCat("input ", it->second.front()->path())); !s.ok()) return s;
    stats.fetched_bytes += static_cast<int64_t>(r.data().size());
    for (const auto* f : it->second) {
      if (absl::Status s = WriteFromMemory(tree, *f, r.data()); !s.ok()) return s;
    }
    // Only bytes that matched their digest reach the local cache.
    if (local_cache_ != nullptr) local_cache_->Put(*d, r.data()).IgnoreError();
    wanted.erase(it);
  }
  if (!wanted.empty()) {
    return absl::DataLossError(absl::StrCat("BatchReadBlobs did not return input ", wanted.begin()->second.front()->path()));
  }
  return absl::OkStatus();
}

}  // namespace assay
