#include "common/cas_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include <grpcpp/client_context.h>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/file_util.h"
#include "common/status_util.h"

namespace assay {
namespace fs = std::filesystem;

std::string ReadResourceName(absl::string_view instance, const Digest& digest) {
  return absl::StrCat(instance, instance.empty() ? "" : "/", "blobs/", digest.hash(), "/", digest.size());
}

std::string WriteResourceName(absl::string_view instance, absl::string_view uuid, const Digest& digest) {
  return absl::StrCat(instance, instance.empty() ? "" : "/", "uploads/", uuid, "/blobs/", digest.hash(), "/",
                      digest.size());
}

CasClient::CasClient(std::shared_ptr<grpc::Channel> channel, std::string instance_name)
    : instance_name_(std::move(instance_name)),
      cas_(reapi::ContentAddressableStorage::NewStub(channel)),
      bytestream_(google::bytestream::ByteStream::NewStub(channel)) {}

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
    grpc::ClientContext context;
    grpc::Status status = cas_->FindMissingBlobs(&context, request, &response);
    if (!status.ok()) return Annotate(FromGrpc(status), "FindMissingBlobs");
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
    } else {
      auto data = ReadFile(blob->file);
      if (!data.ok()) return data.status();
      if (static_cast<int64_t>(data->size()) != blob->digest.size()) {
        return absl::AbortedError(absl::StrCat(blob->file.string(), " changed while it was being uploaded"));
      }
      entry->set_data(std::move(*data));
    }
  }
  reapi::BatchUpdateBlobsResponse response;
  grpc::ClientContext context;
  grpc::Status status = cas_->BatchUpdateBlobs(&context, request, &response);
  if (!status.ok()) return Annotate(FromGrpc(status), "BatchUpdateBlobs");
  for (const auto& r : response.responses()) {
    if (r.status().code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(r.status().code()),
                          absl::StrCat("uploading ", r.digest().hash(), ": ", r.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status CasClient::WriteStream(const Digest& digest, const TreeBlob& blob) {
  grpc::ClientContext context;
  google::bytestream::WriteResponse response;
  auto writer = bytestream_->Write(&context, &response);
  std::string resource = WriteResourceName(instance_name_, RandomHex(16), digest);
  int64_t offset = 0;
  auto send = [&](absl::string_view piece, bool last) {
    google::bytestream::WriteRequest request;
    if (offset == 0) request.set_resource_name(resource);
    request.set_write_offset(offset);
    request.set_data(std::string(piece));
    request.set_finish_write(last);
    offset += static_cast<int64_t>(piece.size());
    return writer->Write(request);
  };
  bool ok = true;
  if (blob.file.empty()) {
    absl::string_view rest = blob.data;
    do {
      absl::string_view piece = rest.substr(0, kStreamChunk);
      rest.remove_prefix(piece.size());
      ok = send(piece, rest.empty());
    } while (ok && !rest.empty());
  } else {
    std::ifstream in(blob.file, std::ios::binary);
    if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", blob.file.string()));
    std::string buffer(kStreamChunk, '\0');
    int64_t remaining = digest.size();
    while (ok && remaining > 0) {
      in.read(buffer.data(), static_cast<std::streamsize>(std::min<int64_t>(remaining, kStreamChunk)));
      std::streamsize n = in.gcount();
      if (n <= 0) return absl::AbortedError(absl::StrCat(blob.file.string(), " shrank while it was being uploaded"));
      remaining -= n;
      ok = send(absl::string_view(buffer.data(), static_cast<size_t>(n)), remaining == 0);
    }
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return Annotate(FromGrpc(status), absl::StrCat("ByteStream.Write ", digest.ToString()));
  if (response.committed_size() != digest.size()) {
    return absl::DataLossError(absl::StrCat("server committed ", response.committed_size(), " of ", digest.size(),
                                            " bytes of ", digest.ToString()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CasClient::ReadBlob(const Digest& digest) {
  if (digest.empty_blob()) return std::string();
  if (digest.size() <= kBatchBlobLimit) {
    reapi::BatchReadBlobsRequest request;
    request.set_instance_name(instance_name_);
    *request.add_digests() = digest.ToProto();
    reapi::BatchReadBlobsResponse response;
    grpc::ClientContext context;
    grpc::Status status = cas_->BatchReadBlobs(&context, request, &response);
    if (!status.ok()) return Annotate(FromGrpc(status), "BatchReadBlobs");
    if (response.responses_size() != 1) return absl::InternalError("BatchReadBlobs answered the wrong number of blobs");
    const auto& r = response.responses(0);
    if (r.status().code() != 0) {
      return absl::Status(static_cast<absl::StatusCode>(r.status().code()), r.status().message());
    }
    return r.data();
  }
  std::string out;
  google::bytestream::ReadRequest request;
  request.set_resource_name(ReadResourceName(instance_name_, digest));
  grpc::ClientContext context;
  auto reader = bytestream_->Read(&context, request);
  google::bytestream::ReadResponse response;
  while (reader->Read(&response)) out.append(response.data());
  grpc::Status status = reader->Finish();
  if (!status.ok()) return Annotate(FromGrpc(status), absl::StrCat("reading ", digest.ToString()));
  return out;
}

absl::Status CasClient::DownloadToFile(const Digest& digest, const fs::path& path, bool executable) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, executable ? 0755 : 0644);
  if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", path.string()));
  auto write_all = [fd](absl::string_view data) -> absl::Status {
    while (!data.empty()) {
      ssize_t n = ::write(fd, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return absl::InternalError("write failed");
      }
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  };
  absl::Status result;
  int64_t got = 0;
  if (digest.size() <= kBatchBlobLimit) {
    auto data = ReadBlob(digest);
    result = data.ok() ? write_all(*data) : data.status();
    got = data.ok() ? static_cast<int64_t>(data->size()) : 0;
  } else {
    google::bytestream::ReadRequest request;
    request.set_resource_name(ReadResourceName(instance_name_, digest));
    grpc::ClientContext context;
    auto reader = bytestream_->Read(&context, request);
    google::bytestream::ReadResponse response;
    while (result.ok() && reader->Read(&response)) {
      got += static_cast<int64_t>(response.data().size());
      result = write_all(response.data());
    }
    if (!result.ok()) context.TryCancel();
    grpc::Status status = reader->Finish();
    if (result.ok() && !status.ok()) result = Annotate(FromGrpc(status), absl::StrCat("reading ", digest.ToString()));
  }
  ::close(fd);
  if (result.ok() && got != digest.size()) {
    result = absl::DataLossError(absl::StrCat("got ", got, " of ", digest.size(), " bytes of ", digest.ToString()));
  }
  if (!result.ok()) ::unlink(path.c_str());
  return result;
}

absl::StatusOr<std::vector<reapi::Directory>> CasClient::GetTree(const Digest& root) {
  std::vector<reapi::Directory> out;
  std::string token;
  do {
    reapi::GetTreeRequest request;
    request.set_instance_name(instance_name_);
    *request.mutable_root_digest() = root.ToProto();
    request.set_page_token(token);
    grpc::ClientContext context;
    auto reader = cas_->GetTree(&context, request);
    reapi::GetTreeResponse response;
    token.clear();
    while (reader->Read(&response)) {
      for (auto& d : *response.mutable_directories()) out.push_back(std::move(d));
      token = response.next_page_token();
    }
    grpc::Status status = reader->Finish();
    if (!status.ok()) return Annotate(FromGrpc(status), absl::StrCat("GetTree ", root.ToString()));
  } while (!token.empty());
  return out;
}

absl::Status CasClient::CopyToLocal(const Digest& digest, const fs::path& file) {
  auto writer = local_cache_->OpenWrite(digest);
  if (!writer.ok()) return writer.status();
  std::ifstream in(file, std::ios::binary);
  std::string buffer(kStreamChunk, '\0');
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() <= 0) break;
    if (absl::Status s = (*writer)->Append(absl::string_view(buffer.data(), static_cast<size_t>(in.gcount()))); !s.ok()) {
      return s;
    }
  }
  return (*writer)->Commit();
}

absl::StatusOr<CasClient::FetchStats> CasClient::Materialize(const Digest& root, const fs::path& dir) {
  FetchStats stats;
  auto directories = GetTree(root);
  if (!directories.ok()) return directories.status();
  absl::flat_hash_map<Digest, const reapi::Directory*> by_digest;
  for (const auto& d : *directories) by_digest[Digest::OfMessage(d)] = &d;

  struct Pending {
    Digest digest;
    fs::path path;
    bool executable;
  };
  std::vector<Pending> files;
  std::function<absl::Status(const Digest&, const fs::path&)> walk = [&](const Digest& digest,
                                                                         const fs::path& at) -> absl::Status {
    auto it = by_digest.find(digest);
    if (it == by_digest.end()) return absl::NotFoundError(absl::StrCat("directory ", digest.ToString(), " missing from tree"));
    for (const auto& f : it->second->files()) {
      if (absl::Status s = CheckRelativePath(f.name(), "file name"); !s.ok() || f.name().find('/') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("bad file name '", f.name(), "' in input tree"));
      }
      auto d = Digest::FromProto(f.digest());
      if (!d.ok()) return d.status();
      files.push_back({*d, at / f.name(), f.is_executable()});
    }
    for (const auto& l : it->second->symlinks()) {
      std::error_code ec;
      fs::create_symlink(l.target(), at / l.name(), ec);
      if (ec) return absl::InternalError(absl::StrCat("cannot create symlink ", (at / l.name()).string()));
    }
    for (const auto& sub : it->second->directories()) {
      if (sub.name().empty() || sub.name() == ".." || sub.name() == "." || sub.name().find('/') != std::string::npos) {
        return absl::InvalidArgumentError(absl::StrCat("bad directory name '", sub.name(), "' in input tree"));
      }
      auto d = Digest::FromProto(sub.digest());
      if (!d.ok()) return d.status();
      if (absl::Status s = MakeDirs(at / sub.name()); !s.ok()) return s;
      if (absl::Status s = walk(*d, at / sub.name()); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  if (absl::Status s = walk(root, dir); !s.ok()) return s;
  stats.files = static_cast<int64_t>(files.size());
  for (const Pending& p : files) stats.bytes += p.digest.size();

  // What this host already has is copied from its local cache.
  if (local_cache_ != nullptr && !files.empty()) {
    std::vector<Digest> wanted;
    for (const Pending& p : files) wanted.push_back(p.digest);
    auto missing = local_cache_->FindMissing(wanted);
    if (missing.ok()) {
      absl::flat_hash_set<Digest> absent(missing->begin(), missing->end());
      std::vector<Pending> remote;
      for (Pending& p : files) {
        if (absent.contains(p.digest) || p.digest.empty_blob()) {
          remote.push_back(std::move(p));
          continue;
        }
        int fd = ::open(p.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, p.executable ? 0755 : 0644);
        if (fd < 0) return absl::InternalError(absl::StrCat("cannot create ", p.path.string()));
        absl::Status s = local_cache_->Read(p.digest, 0, 0, [fd](absl::string_view piece) -> absl::Status {
          while (!piece.empty()) {
            ssize_t n = ::write(fd, piece.data(), piece.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return absl::InternalError("write failed");
            piece.remove_prefix(static_cast<size_t>(n));
          }
          return absl::OkStatus();
        });
        ::close(fd);
        if (s.ok()) {
          stats.local_hits++;
        } else {
          remote.push_back(std::move(p));  // evicted meanwhile: fetch it
        }
      }
      files = std::move(remote);
    }
  }

  // Small files in batches, large ones streamed.
  std::vector<const Pending*> batch;
  int64_t batch_bytes = 0;
  auto flush = [&]() -> absl::Status {
    if (batch.empty()) return absl::OkStatus();
    reapi::BatchReadBlobsRequest request;
    request.set_instance_name(instance_name_);
    absl::flat_hash_map<Digest, std::vector<const Pending*>> wanted;
    for (const Pending* p : batch) {
      if (wanted[p->digest].empty()) *request.add_digests() = p->digest.ToProto();
      wanted[p->digest].push_back(p);
    }
    reapi::BatchReadBlobsResponse response;
    grpc::ClientContext context;
    grpc::Status status = cas_->BatchReadBlobs(&context, request, &response);
    if (!status.ok()) return Annotate(FromGrpc(status), "BatchReadBlobs");
    for (const auto& r : response.responses()) {
      if (r.status().code() != 0) {
        return absl::Status(static_cast<absl::StatusCode>(r.status().code()),
                            absl::StrCat("input ", r.digest().hash(), ": ", r.status().message()));
      }
      auto d = Digest::FromProto(r.digest());
      if (!d.ok()) return d.status();
      stats.fetched_bytes += static_cast<int64_t>(r.data().size());
      if (local_cache_ != nullptr) local_cache_->Put(*d, r.data()).IgnoreError();
      for (const Pending* p : wanted[*d]) {
        if (absl::Status s = WriteFile(p->path, r.data(), p->executable); !s.ok()) return s;
      }
    }
    batch.clear();
    batch_bytes = 0;
    return absl::OkStatus();
  };
  for (const Pending& p : files) {
    if (p.digest.empty_blob()) {
      if (absl::Status s = WriteFile(p.path, "", p.executable); !s.ok()) return s;
    } else if (p.digest.size() > kBatchBlobLimit) {
      if (absl::Status s = DownloadToFile(p.digest, p.path, p.executable); !s.ok()) return s;
      stats.fetched_bytes += p.digest.size();
      if (local_cache_ != nullptr) CopyToLocal(p.digest, p.path).IgnoreError();
    } else {
      if (batch_bytes + p.digest.size() > kBatchTotalLimit) {
        if (absl::Status s = flush(); !s.ok()) return s;
      }
      batch.push_back(&p);
      batch_bytes += p.digest.size();
    }
  }
  if (absl::Status s = flush(); !s.ok()) return s;
  return stats;
}

}  // namespace assay
