#include "worker/step_logs.h"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/digest/digest.h"

namespace assay {

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
    s.status = WriteAll(fd, s.memory);
    std::string().swap(s.memory);
    if (!s.status.ok()) return;
  }
  s.status = WriteAll(s.file.get(), data);
}

absl::StatusOr<TreeBlob> StepLogs::Blob(int stream) const {
  const Stream& s = streams_[stream == 0 ? 0 : 1];
  if (!s.status.ok()) return s.status;
  if (!s.file.valid()) return TreeBlob{Digest::OfBytes(s.memory), s.memory, {}};
  auto digest = DigestFile(PathOf(stream).string());
  if (!digest.ok()) return digest.status();
  return TreeBlob{*digest, "", PathOf(stream)};
}

}  // namespace assay
