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
      bytestream_(google::bytestream::ByteStream::NewStub(channel)),
      direct_(channel, instance_name_) {}

absl::Time CasClient::TransferDeadline(absl::Time deadline, int64_t bytes) const {
  return deadline + absl::Seconds(bytes >> 20);
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
    auto got = ReadFull(fd->get(), data.data(), data.size());
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
  if (direct_.available()) {
    absl::Status direct = direct_.Upload(blob, TransferDeadline(absl::Now() + absl::Seconds(60), digest.size()));
    if (direct.ok()) return direct;
    if (!absl::IsUnimplemented(direct)) {
      spdlog::debug("uploading {} to the bucket itself: {}; through the coordinator instead", digest.ToString(),
                    direct.message());
    }
  }
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
        auto got = ReadFull(fd.get(), buffer.data(), std::min<size_t>(kStreamChunk, static_cast<size_t>(digest.size() - offset)));
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

absl::Status CasClient::ReadInto(const Digest& digest, VerifiedFileWriter* writer, BlobWriter* tee) {
  if (direct_.available()) {
    absl::Status direct = direct_.Download(digest, writer, tee, TransferDeadline(absl::Now() + absl::Seconds(60), digest.size()));
    if (direct.ok()) {
      if (absl::Status s = writer->Commit(); !s.ok()) return s;
      if (tee != nullptr) tee->Commit().IgnoreError();
      return absl::OkStatus();
    }
    if (absl::IsDataLoss(direct)) return direct;  // more bytes than the blob has: the file is removed
    if (!absl::IsUnimplemented(direct)) {
      spdlog::debug("reading {} from the bucket itself: {}; through the coordinator instead", digest.ToString(),
                    direct.message());
    }
    if (writer->written() > 0) tee = nullptr;  // a copy for the local cache cannot resume mid-way
  }
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
  return ReadInto(digest, &*writer, nullptr);
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

absl::StatusOr<std::vector<CasClient::BatchEntry>> CasClient::BatchRead(const std::vector<Digest>& digests) {
  std::vector<BatchEntry> out;
  if (digests.empty()) return out;
  reapi::BatchReadBlobsRequest request;
  request.set_instance_name(instance_name_);
  int64_t bytes = 0;
  for (const Digest& d : digests) {
    *request.add_digests() = d.ToProto();
    bytes += d.size();
  }
  reapi::BatchReadBlobsResponse response;
  absl::Status status = retrier_.Run("BatchReadBlobs", [&](absl::Time deadline) {
    grpc::ClientContext context;
    SetDeadline(&context, TransferDeadline(deadline, bytes));
    response.Clear();
    return Annotate(FromGrpc(cas_->BatchReadBlobs(&context, request, &response)), "BatchReadBlobs");
  });
  if (!status.ok()) return status;
  for (auto& r : *response.mutable_responses()) {
    auto d = Digest::FromProto(r.digest());
    if (!d.ok()) return d.status();
    out.push_back(BatchEntry{*d, EntryStatus(r.status(), d->ToString()), std::move(*r.mutable_data())});
  }
  return out;
}

}  // namespace assay
