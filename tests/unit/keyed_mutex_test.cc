// KeyedMutex: holders of one key exclude each other; holders of different keys never wait on each
// other (a holder of A waits for B to be taken and given back: with one lock for all keys, that
// would never end, and the test fails at its deadline instead of hanging).
#include "common/base/keyed_mutex.h"

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace assay {
namespace {

TEST(KeyedMutexTest, AHolderOfOneKeyDoesNotStopAnother) {
  KeyedMutex locks;
  absl::Notification b_done;
  {
    KeyedMutex::Lock a(&locks, "a");
    std::thread other([&] {
      KeyedMutex::Lock b(&locks, "b");
      b_done.Notify();
    });
    EXPECT_TRUE(b_done.WaitForNotificationWithTimeout(absl::Seconds(30))) << "b waited for a";
    other.join();
    EXPECT_EQ(locks.held(), 1u);
  }
  EXPECT_EQ(locks.held(), 0u);
}

TEST(KeyedMutexTest, HoldersOfOneKeyTakeTurns) {
  KeyedMutex locks;
  // Plain counters, each only ever touched under its key's lock: a lost update (or, under TSan, a
  // data race) shows a second holder got in.
  int counts[3] = {0, 0, 0};
  int inside[3] = {0, 0, 0};
  std::vector<int> overlap(3, 0);  // a holder found another inside, per key
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const int k = (t + i) % 3;
        KeyedMutex::Lock lock(&locks, std::string(1, static_cast<char>('x' + k)));
        if (++inside[k] != 1) ++overlap[k];
        ++counts[k];
        --inside[k];
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counts[0] + counts[1] + counts[2], 6 * 2000);
  EXPECT_EQ(counts[0], 4000);
  EXPECT_EQ(counts[1], 4000);
  EXPECT_EQ(counts[2], 4000);
  EXPECT_EQ(overlap, std::vector<int>(3, 0));
  EXPECT_EQ(locks.held(), 0u);
}

}  // namespace
}  // namespace assay
