#include "common/base/fd_copies.h"

#include <unistd.h>

namespace assay {

absl::Mutex& FdCopiesLock() {
  static absl::Mutex* const lock = new absl::Mutex();  // never destroyed: closes may run during exit
  return *lock;
}

void CloseFd(int fd) {
  if (fd < 0) return;
  absl::ReaderMutexLock lock(&FdCopiesLock());
  ::close(fd);
}

}  // namespace assay
