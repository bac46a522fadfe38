// ThreadSanitizer builds only: teaches TSan what absl::Mutex does.
//
// Debian's abseil is not built with -fsanitize=thread, so its Mutex (futexes and atomics inside the
// shared library) is invisible to TSan, and every object shared under an absl::Mutex is reported as
// a race. This file, linked into each executable of a TSan build, defines the Mutex and CondVar
// entry points itself: each calls the library's own (found with dlsym(RTLD_NEXT)) between TSan's
// mutex annotations. The executable's definitions take precedence for every caller, gRPC included,
// so the happens-before edges of every absl::Mutex are seen, and real races still are reported.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>

#include "absl/synchronization/mutex.h"

namespace {

template <typename F>
F Real(const char* mangled) {
  void* p = ::dlsym(RTLD_NEXT, mangled);
  if (p == nullptr) {
    std::fprintf(stderr, "absl_mutex_tsan: %s not found in abseil\n", mangled);
    std::abort();
  }
  return reinterpret_cast<F>(p);
}

// Abseil's own entry points call each other (AwaitWithTimeout calls AwaitWithDeadline): only the
// outermost call of a thread is annotated.
thread_local int depth = 0;
struct Depth {
  Depth() { ++depth; }
  ~Depth() { --depth; }
  bool outer() const { return depth == 1; }
};

// The lock is let go inside `wait` and held again when it returns (Await, CondVar::Wait): TSan sees
// a release before and an acquire after; what abseil does in between is ignored.
template <typename F>
auto Rewait(void* mu, F wait) {
  Depth d;
  if (!d.outer()) return wait();
  __tsan_mutex_pre_unlock(mu, 0);
  __tsan_mutex_post_unlock(mu, 0);
  __tsan_mutex_pre_lock(mu, 0);
  auto result = wait();
  __tsan_mutex_post_lock(mu, 0, 0);
  return result;
}

template <typename F>
auto Locking(void* mu, unsigned flags, F lock) {
  Depth d;
  if (!d.outer()) return lock();
  __tsan_mutex_pre_lock(mu, flags);
  auto result = lock();
  __tsan_mutex_post_lock(mu, flags, 0);
  return result;
}

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

#define ASSAY_REAL(type, name) static const auto real = Real<type>(name)

void Mutex::Lock() {
  ASSAY_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex4LockEv");
  Locking(this, 0, [&] { return (real(this), 0); });
}

void Mutex::ReaderLock() {
  ASSAY_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex10ReaderLockEv");
  Locking(this, __tsan_mutex_read_lock, [&] { return (real(this), 0); });
}

void Mutex::Unlock() {
  ASSAY_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex6UnlockEv");
  Depth d;
  if (!d.outer()) return real(this);
  __tsan_mutex_pre_unlock(this, 0);
  real(this);
  __tsan_mutex_post_unlock(this, 0);
}

void Mutex::ReaderUnlock() {
  ASSAY_REAL(void (*)(Mutex*), "_ZN4absl7debian35Mutex12ReaderUnlockEv");
  Depth d;
  if (!d.outer()) return real(this);
  __tsan_mutex_pre_unlock(this, __tsan_mutex_read_lock);
  real(this);
  __tsan_mutex_post_unlock(this, __tsan_mutex_read_lock);
}

bool Mutex::TryLock() {
  ASSAY_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex7TryLockEv");
  Depth d;
  if (!d.outer()) return real(this);
  __tsan_mutex_pre_lock(this, __tsan_mutex_try_lock);
  const bool ok = real(this);
  __tsan_mutex_post_lock(this, __tsan_mutex_try_lock | (ok ? 0 : __tsan_mutex_try_lock_failed), 0);
  return ok;
}

bool Mutex::ReaderTryLock() {
  ASSAY_REAL(bool (*)(Mutex*), "_ZN4absl7debian35Mutex13ReaderTryLockEv");
  Depth d;
  if (!d.outer()) return real(this);
  const unsigned flags = __tsan_mutex_read_lock | __tsan_mutex_try_lock;
  __tsan_mutex_pre_lock(this, flags);
  const bool ok = real(this);
  __tsan_mutex_post_lock(this, flags | (ok ? 0 : __tsan_mutex_try_lock_failed), 0);
  return ok;
}

void Mutex::LockWhen(const Condition& cond) {
  ASSAY_REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex8LockWhenERKNS0_9ConditionE");
  Locking(this, 0, [&] { return (real(this, cond), 0); });
}

void Mutex::ReaderLockWhen(const Condition& cond) {
  ASSAY_REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Locking(this, __tsan_mutex_read_lock, [&] { return (real(this, cond), 0); });
}

bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  ASSAY_REAL(bool (*)(Mutex*, const Condition&, Duration),
             "_ZN4absl7debian35Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locking(this, 0, [&] { return real(this, cond, timeout); });
}

bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  ASSAY_REAL(bool (*)(Mutex*, const Condition&, Time),
             "_ZN4absl7debian35Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locking(this, 0, [&] { return real(this, cond, deadline); });
}

bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  ASSAY_REAL(bool (*)(Mutex*, const Condition&, Duration),
             "_ZN4absl7debian35Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Locking(this, __tsan_mutex_read_lock, [&] { return real(this, cond, timeout); });
}

bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  ASSAY_REAL(bool (*)(Mutex*, const Condition&, Time),
             "_ZN4absl7debian35Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Locking(this, __tsan_mutex_read_lock, [&] { return real(this, cond, deadline); });
}

void Mutex::Await(const Condition& cond) {
  ASSAY_REAL(void (*)(Mutex*, const Condition&), "_ZN4absl7debian35Mutex5AwaitERKNS0_9ConditionE");
  Rewait(this, [&] { return (real(this, cond), 0); });
}

bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  ASSAY_REAL(bool (*)(Mutex*, const Condition&, Duration),
             "_ZN4absl7debian35Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Rewait(this, [&] { return real(this, cond, timeout); });
}

bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  ASSAY_REAL(bool (*)(Mutex*, const Condition&, Time),
             "_ZN4absl7debian35Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Rewait(this, [&] { return real(this, cond, deadline); });
}

void CondVar::Wait(Mutex* mu) {
  ASSAY_REAL(void (*)(CondVar*, Mutex*), "_ZN4absl7debian37CondVar4WaitEPNS0_5MutexE");
  Rewait(mu, [&] { return (real(this, mu), 0); });
}

bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  ASSAY_REAL(bool (*)(CondVar*, Mutex*, Duration), "_ZN4absl7debian37CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return Rewait(mu, [&] { return real(this, mu, timeout); });
}

bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  ASSAY_REAL(bool (*)(CondVar*, Mutex*, Time), "_ZN4absl7debian37CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return Rewait(mu, [&] { return real(this, mu, deadline); });
}

#undef ASSAY_REAL

ABSL_NAMESPACE_END
}  // namespace absl
