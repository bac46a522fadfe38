#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>
#include <vector>

#include "worker/executor.h"

namespace assay {

CancelToken::CancelToken() : fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
CancelToken::~CancelToken() {
  if (fd_ >= 0) ::close(fd_);
}
void CancelToken::Cancel() {
  if (cancelled_.exchange(true)) return;
  uint64_t one = 1;
  if (fd_ >= 0) (void)!::write(fd_, &one, sizeof(one));
  absl::MutexLock lock(&mu_);
  for (CancelToken* follower : followers_) follower->Cancel();
}

void CancelToken::Follow(CancelToken* follower) const {
  absl::MutexLock lock(&mu_);
  followers_.push_back(follower);
  // Cancel may have set the flag and not yet taken the lock: then both cancel it (it counts once).
  if (cancelled()) follower->Cancel();
}

void CancelToken::Unfollow(CancelToken* follower) const {
  absl::MutexLock lock(&mu_);
  std::erase(followers_, follower);
}

}  // namespace assay
