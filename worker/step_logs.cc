#include "worker/step_logs.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/digest/digest.h"

namespace assay {

void StepLogs::WriteToFile(Stream& s, absl::string_view data) {
  s.status = WriteAll(s.file.get(), data);
  s.hash->Update(data);
  s.file_bytes += static_cast<int64_t>(data.size());
}

void StepLogs::Append(int stream, absl::string_view data) {
  Stream& s = streams_[stream == 0 ? 0 : 1];
  if (!s.status.ok() || data.empty()) return;
  if (!s.file.valid() && static_cast<int64_t>(s.memory.size() + data.size()) <= kMemoryBytes) {
    s.memory.append(data.data(), data.size());
    return;
  }
  if (!s.file.valid()) {
    const std::string path = PathOf(stream).string();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      s.status = absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
      return;
    }
    s.file = ScopedFd(fd);
    s.hash = std::make_unique<Sha256>();
    WriteToFile(s, s.memory);
    std::string().swap(s.memory);
    if (!s.status.ok()) return;
  }
  WriteToFile(s, data);
}

absl::StatusOr<TreeBlob> StepLogs::TakeBlob(int stream) {
  Stream& s = streams_[stream == 0 ? 0 : 1];
  if (!s.status.ok()) return s.status;
  if (!s.file.valid()) {
    const Digest digest = Digest::OfBytes(s.memory);
    return TreeBlob{digest, std::move(s.memory), {}};
  }
  auto digest = Digest::Create(s.hash->FinishHex(), s.file_bytes);
  if (!digest.ok()) return digest.status();
  return TreeBlob{*digest, "", PathOf(stream)};
}

}  // namespace assay
