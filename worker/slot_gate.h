// Admits a worker's tasks to its slots in the order they arrived. The coordinator may hand a worker
// a few tasks beyond its slots (its prefetch); they wait here and start the moment a slot frees, with
// no round trip to the coordinator between two tasks. A task still waiting can be withdrawn (the
// coordinator asks for it back, or the worker is stopping) and is then handed back unstarted.
#pragma once

#include <cstdint>
#include <set>

#include "absl/synchronization/mutex.h"
#include "worker/executor.h"

namespace assay {

class SlotGate {
 public:
  explicit SlotGate(int slots) : free_(slots) {}

  // A place in line, taken as the task arrives (before its thread starts).
  uint64_t Join();
  enum class Admission { kEntered, kCancelled, kWithdrawn };
  // Waits until the ticket is first in line and a slot is free (kEntered: the slot is the caller's
  // until Leave), or until `cancel` fires (kCancelled; call Wake after cancelling) or the ticket is
  // withdrawn (kWithdrawn). Either way the ticket leaves the line.
  Admission Enter(uint64_t ticket, const CancelToken& cancel);
  void Leave();
  // The ticket's task will not ask to enter (it failed before): it leaves the line.
  void Abandon(uint64_t ticket);
  // True if the ticket was still waiting: it will not enter.
  bool Withdraw(uint64_t ticket);
  // Withdraws every waiting ticket; returns how many.
  int WithdrawAll();
  // Makes waiters look at their cancel tokens again (after CancelToken::Cancel).
  void Wake();
  int waiting();

 private:
  absl::Mutex mu_;
  int free_ ABSL_GUARDED_BY(mu_);
  uint64_t next_ ABSL_GUARDED_BY(mu_) = 1;
  std::set<uint64_t> line_ ABSL_GUARDED_BY(mu_);       // waiting, in arrival order
  std::set<uint64_t> withdrawn_ ABSL_GUARDED_BY(mu_);  // taken out of line, not yet told
};

}  // namespace assay
