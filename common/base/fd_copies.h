#pragma once

// A child started with a copy of the worker's descriptor table (fork, or clone without
// CLONE_FILES) holds every descriptor the worker had open at that moment, writable files included,
// until it closes them. While any process holds a file open for writing, exec of that file fails
// with ETXTBSY: a step's script written by one thread, copied by the supervisor another thread
// starts, cannot then be run by its own step. Go's ForkLock closes the same race.
//
// The rule: a child that copies the table drops the copies before `StartCopyingChild` returns
// (it holds the lock exclusively until then), and the worker closes its descriptors with
// `CloseFd`, which waits for such a start in flight. So once `CloseFd` returns, no child holds the
// file open.

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace assay {

// Held shared by `CloseFd`, exclusively across the start of a child that copies descriptors.
absl::Mutex& FdCopiesLock();

// close(2), after any child being started has dropped its copies.
void CloseFd(int fd);

}  // namespace assay
