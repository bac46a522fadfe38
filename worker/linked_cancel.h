// A CancelToken that follows another: `inner` is cancelled as soon as `outer` is, so a run can be
// ended by either the task's cancel or the worker itself. No thread: `outer` cancels its followers.
#pragma once

#include "worker/executor.h"

namespace assay {

class LinkedCancel {
 public:
  LinkedCancel(const CancelToken& outer, CancelToken* inner) : outer_(outer), inner_(inner) { outer_.Follow(inner_); }
  ~LinkedCancel() { outer_.Unfollow(inner_); }
  LinkedCancel(const LinkedCancel&) = delete;
  LinkedCancel& operator=(const LinkedCancel&) = delete;

 private:
  const CancelToken& outer_;
  CancelToken* const inner_;
};

}  // namespace assay
