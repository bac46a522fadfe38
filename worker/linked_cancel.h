// A CancelToken that follows another: `inner` is cancelled as soon as `outer` is (a watcher thread
// waits on both descriptors), so a run can be ended by either the task's cancel or the worker itself.
#pragma once

#include <thread>

#include "worker/executor.h"

namespace assay {

class LinkedCancel {
 public:
  LinkedCancel(const CancelToken& outer, CancelToken* inner);
  ~LinkedCancel();
  LinkedCancel(const LinkedCancel&) = delete;
  LinkedCancel& operator=(const LinkedCancel&) = delete;

 private:
  int done_;
  std::thread thread_;
};

}  // namespace assay
