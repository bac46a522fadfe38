#include "worker/linked_cancel.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace assay {

LinkedCancel::LinkedCancel(const CancelToken& outer, CancelToken* inner) : done_(::eventfd(0, EFD_CLOEXEC)) {
  thread_ = std::thread([&outer, inner, done = done_] {
    pollfd fds[2] = {{outer.fd(), POLLIN, 0}, {done, POLLIN, 0}};
    while (::poll(fds, 2, -1) < 0 && errno == EINTR) {
    }
    if ((fds[0].revents & POLLIN) != 0) inner->Cancel();
  });
}

LinkedCancel::~LinkedCancel() {
  uint64_t one = 1;
  (void)!::write(done_, &one, sizeof(one));
  thread_.join();
  ::close(done_);
}

}  // namespace assay
