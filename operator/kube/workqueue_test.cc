#include "operator/kube/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace pgrs::kube {
namespace {

using std::chrono::milliseconds;

TEST(WorkQueueTest, AKeyAddedManyTimesIsQueuedOnce) {
  FakeClock clock;
  WorkQueue queue(&clock);
  queue.Add("ns/a");
  queue.Add("ns/b");
  queue.Add("ns/a");
  EXPECT_EQ(queue.Len(), 2u);
  std::string key;
  ASSERT_TRUE(queue.TryGet(&key));
  EXPECT_EQ(key, "ns/a");
  ASSERT_TRUE(queue.TryGet(&key));
  EXPECT_EQ(key, "ns/b");
  EXPECT_FALSE(queue.TryGet(&key));
}

TEST(WorkQueueTest, AKeyAddedWhileProcessingWaitsForDone) {
  FakeClock clock;
  WorkQueue queue(&clock);
  queue.Add("ns/a");
  std::string key;
  ASSERT_TRUE(queue.TryGet(&key));
  queue.Add("ns/a");
  queue.Add("ns/a");
  std::string other;
  EXPECT_FALSE(queue.TryGet(&other)) << "ns/a must not go to a second worker";
  queue.Done("ns/a");
  ASSERT_TRUE(queue.TryGet(&other));
  EXPECT_EQ(other, "ns/a");
  queue.Done("ns/a");
  EXPECT_FALSE(queue.TryGet(&other));
}

TEST(WorkQueueTest, AddAfterWaitsForTheClock) {
  FakeClock clock;
  WorkQueue queue(&clock);
  queue.AddAfter("ns/a", milliseconds(500));
  queue.AddAfter("ns/a", milliseconds(900));  // the earlier time wins
  std::string key;
  EXPECT_FALSE(queue.TryGet(&key));
  clock.Advance(milliseconds(499));
  EXPECT_FALSE(queue.TryGet(&key));
  clock.Advance(milliseconds(1));
  ASSERT_TRUE(queue.TryGet(&key));
  EXPECT_EQ(key, "ns/a");
  queue.Done(key);
  EXPECT_EQ(queue.Delayed(), 0u);
}

TEST(WorkQueueTest, AChangeGoesBeforePeriodicLooksThatPiledUp) {
  FakeClock clock;
  WorkQueue queue(&clock);
  for (const char* k : {"ns/a", "ns/b", "ns/c"}) queue.AddAfter(k, milliseconds(100));
  clock.Advance(milliseconds(100));
  std::string key;
  ASSERT_TRUE(queue.TryGet(&key));  // the look at ns/a is due and taken
  EXPECT_EQ(key, "ns/a");
  queue.Add("ns/x");  // a watch event
  queue.Add("ns/c");  // an event for a key already waiting its turn: moved ahead
  ASSERT_TRUE(queue.TryGet(&key));
  EXPECT_EQ(key, "ns/x");
  ASSERT_TRUE(queue.TryGet(&key));
  EXPECT_EQ(key, "ns/c");
  ASSERT_TRUE(queue.TryGet(&key));
  EXPECT_EQ(key, "ns/b");
  // Changed while being worked on: next in line once Done.
  queue.AddAfter("ns/d", milliseconds(0));
  queue.Add("ns/a");
  queue.Done("ns/a");
  ASSERT_TRUE(queue.TryGet(&key));
  EXPECT_EQ(key, "ns/a");
  ASSERT_TRUE(queue.TryGet(&key));
  EXPECT_EQ(key, "ns/d");
  EXPECT_FALSE(queue.TryGet(&key));
}

TEST(WorkQueueTest, RateLimitedRequeuesBackOffExponentiallyUntilForgotten) {
  FakeClock clock;
  WorkQueue queue(&clock, {milliseconds(100), milliseconds(1000), 2.0, 0.0});
  std::string key;
  std::vector<int> expected = {100, 200, 400, 800, 1000, 1000};
  for (int delay : expected) {
    queue.AddRateLimited("ns/a");
    clock.Advance(milliseconds(delay - 1));
    EXPECT_FALSE(queue.TryGet(&key)) << "too early for delay " << delay;
    clock.Advance(milliseconds(1));
    ASSERT_TRUE(queue.TryGet(&key)) << "delay " << delay;
    queue.Done(key);
  }
  EXPECT_EQ(queue.NumRequeues("ns/a"), 6);
  queue.Forget("ns/a");
  EXPECT_EQ(queue.NumRequeues("ns/a"), 0);
  queue.AddRateLimited("ns/a");
  clock.Advance(milliseconds(100));
  EXPECT_TRUE(queue.TryGet(&key));
}

TEST(WorkQueueTest, ShutDownWakesABlockedGet) {
  WorkQueue queue;
  std::atomic<bool> returned{false};
  bool result = true;
  std::thread worker([&] {
    std::string key;
    result = queue.Get(&key);
    returned = true;
  });
  queue.ShutDown();
  worker.join();
  EXPECT_TRUE(returned);
  EXPECT_FALSE(result);
}

TEST(WorkQueueTest, GetWakesForADelayedKeyOnTheRealClock) {
  WorkQueue queue;
  queue.AddAfter("ns/a", milliseconds(30));
  std::string key;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(queue.Get(&key));
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(29));
  EXPECT_EQ(key, "ns/a");
}

TEST(WorkQueueTest, ConcurrentWorkersNeverHoldTheSameKey) {
  WorkQueue queue;
  std::mutex mu;
  std::set<std::string> held;
  std::atomic<int> processed{0};
  std::atomic<bool> overlap{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      std::string key;
      while (queue.Get(&key)) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!held.insert(key).second) overlap = true;
        }
        std::this_thread::yield();
        {
          std::lock_guard<std::mutex> lock(mu);
          held.erase(key);
        }
        processed++;
        queue.Done(key);
      }
    });
  }
  for (int i = 0; i < 20000; ++i) queue.Add("ns/k" + std::to_string(i % 5));
  // Every key is processed after its last Add: wait for the queue to drain.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (queue.Len() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  queue.ShutDown();
  for (auto& t : workers) t.join();
  EXPECT_FALSE(overlap);
  EXPECT_GE(processed.load(), 5);
  EXPECT_LE(processed.load(), 20000);
}

}  // namespace
}  // namespace pgrs::kube
