#include "operator/kube/backoff.h"

#include <gtest/gtest.h>

namespace pgrs::kube {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesUpToTheCapWithoutJitter) {
  Backoff backoff({milliseconds(100), milliseconds(1000), 2.0, 0.0});
  EXPECT_EQ(backoff.Next(), milliseconds(100));
  EXPECT_EQ(backoff.Next(), milliseconds(200));
  EXPECT_EQ(backoff.Next(), milliseconds(400));
  EXPECT_EQ(backoff.Next(), milliseconds(800));
  EXPECT_EQ(backoff.Next(), milliseconds(1000));
  EXPECT_EQ(backoff.Next(), milliseconds(1000));
  backoff.Reset();
  EXPECT_EQ(backoff.Next(), milliseconds(100));
}

TEST(BackoffTest, JitterStaysWithinItsBandAndUnderTheCap) {
  double r = 0.0;
  Backoff backoff({milliseconds(1000), milliseconds(1500), 2.0, 0.25}, [&] { return r; });
  EXPECT_EQ(backoff.DelayFor(1), milliseconds(750));
  r = 0.999999;
  EXPECT_EQ(backoff.DelayFor(1).count() / 10, 124);  // just under 1250
  EXPECT_EQ(backoff.DelayFor(3), milliseconds(1500));  // capped after jitter too
}

TEST(BackoffTest, RandomJitterSpreadsDelays) {
  Backoff backoff({milliseconds(1000), milliseconds(60000), 2.0, 0.5});
  bool differ = false;
  auto first = backoff.DelayFor(2);
  for (int i = 0; i < 20; ++i) {
    auto d = backoff.DelayFor(2);
    EXPECT_GE(d, milliseconds(1000));
    EXPECT_LE(d, milliseconds(3000));
    if (d != first) differ = true;
  }
  EXPECT_TRUE(differ);
}

}  // namespace
}  // namespace pgrs::kube
