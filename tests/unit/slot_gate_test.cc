#include "worker/slot_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

namespace assay {
namespace {

// Waits (with a deadline) until `n` tickets stand in line.
bool WaitForLine(SlotGate& gate, int n) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (gate.waiting() != n) {
    if (absl::Now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

TEST(SlotGateTest, TasksEnterInTheOrderTheyCameAsSlotsFree) {
  SlotGate gate(1);
  CancelToken never;
  const uint64_t first = gate.Join();
  ASSERT_EQ(gate.Enter(first, never), SlotGate::Admission::kEntered);
  // Three tasks held ahead; their threads start in reverse order, yet they enter in arrival order.
  std::vector<uint64_t> tickets = {gate.Join(), gate.Join(), gate.Join()};
  absl::Mutex mu;
  std::vector<uint64_t> order;
  std::vector<std::thread> threads;
  for (int i = 2; i >= 0; --i) {
    threads.emplace_back([&, i]() {
      ASSERT_EQ(gate.Enter(tickets[static_cast<size_t>(i)], never), SlotGate::Admission::kEntered);
      {
        absl::MutexLock lock(&mu);
        order.push_back(tickets[static_cast<size_t>(i)]);
      }
      gate.Leave();
    });
  }
  ASSERT_TRUE(WaitForLine(gate, 3));
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(order.empty()) << "no slot is free";
  }
  gate.Leave();  // the first task ends
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, tickets);
}

TEST(SlotGateTest, AWaitingTaskCanBeWithdrawnOrCancelledAndARunningOneCannotBeWithdrawn) {
  SlotGate gate(1);
  CancelToken never;
  const uint64_t running = gate.Join();
  ASSERT_EQ(gate.Enter(running, never), SlotGate::Admission::kEntered);
  EXPECT_FALSE(gate.Withdraw(running)) << "a task that started stays";

  const uint64_t held = gate.Join();
  std::atomic<int> admission{-1};
  std::thread waiter([&]() { admission = static_cast<int>(gate.Enter(held, never)); });
  ASSERT_TRUE(WaitForLine(gate, 1));
  EXPECT_TRUE(gate.Withdraw(held));
  waiter.join();
  EXPECT_EQ(admission.load(), static_cast<int>(SlotGate::Admission::kWithdrawn));

  CancelToken cancel;
  const uint64_t cancelled = gate.Join();
  std::thread waiter2([&]() { admission = static_cast<int>(gate.Enter(cancelled, cancel)); });
  ASSERT_TRUE(WaitForLine(gate, 1));
  cancel.Cancel();
  gate.Wake();
  waiter2.join();
  EXPECT_EQ(admission.load(), static_cast<int>(SlotGate::Admission::kCancelled));

  // The line is empty again and the one slot still belongs to the running task.
  EXPECT_EQ(gate.waiting(), 0);
  gate.Leave();
  EXPECT_EQ(gate.Enter(gate.Join(), never), SlotGate::Admission::kEntered);
}

TEST(SlotGateTest, WithdrawAllEmptiesTheLine) {
  SlotGate gate(1);
  CancelToken never;
  ASSERT_EQ(gate.Enter(gate.Join(), never), SlotGate::Admission::kEntered);
  const uint64_t a = gate.Join(), b = gate.Join();
  EXPECT_EQ(gate.WithdrawAll(), 2);
  EXPECT_EQ(gate.Enter(a, never), SlotGate::Admission::kWithdrawn);
  EXPECT_EQ(gate.Enter(b, never), SlotGate::Admission::kWithdrawn);
  EXPECT_EQ(gate.WithdrawAll(), 0);
}

}  // namespace
}  // namespace assay
