// One lock per key, for work that must not interleave on the same key (check a blob's entry, then
// write or delete it) while work on other keys goes on: the only shared state is the set of keys in
// use, held under a mutex for a few instructions, so no caller ever waits on another key's disk I/O.
#pragma once

#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

namespace assay {

class KeyedMutex {
 public:
  // Holds `key` for its lifetime; waits while another holder has it.
  class Lock {
   public:
    Lock(KeyedMutex* owner, std::string key) : owner_(owner), key_(std::move(key)) { owner_->Acquire(key_); }
    ~Lock() { owner_->Release(key_); }
    Lock(const Lock&) = delete;
    Lock& operator=(const Lock&) = delete;

   private:
    KeyedMutex* owner_;
    std::string key_;
  };

  // Keys held now (for tests).
  size_t held() const {
    absl::MutexLock lock(&mu_);
    return held_.size();
  }

 private:
  struct Wait {
    const absl::flat_hash_set<std::string>* held;
    const std::string* key;
  };
  // Evaluated by absl::Mutex with mu_ held.
  static bool Free(Wait* w) { return !w->held->contains(*w->key); }

  void Acquire(const std::string& key) {
    absl::MutexLock lock(&mu_);
    Wait wait{&held_, &key};
    mu_.Await(absl::Condition(&Free, &wait));
    held_.insert(key);
  }
  void Release(const std::string& key) {
    absl::MutexLock lock(&mu_);
    held_.erase(key);
  }

  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> held_ ABSL_GUARDED_BY(mu_);
};

}  // namespace assay
