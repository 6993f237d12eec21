// The agent's side of the primary lease, on a file lease: renewals at the
// retry pace, a lease that another instance holds, and the renew deadline.
#include "operator/agent/lease_keeper.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "operator/agent/temp_dir_for_test.h"

namespace pgrs::agent {
namespace {

class LeaseKeeperTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.empty());
    config_.lease = "file:" + dir_ + "/lease.json";
    config_.retryPeriodSeconds = 60;  // no second renewal within a test, unless asked
    config_.renewDeadlineSeconds = 3;
    config_.leaseDurationSeconds = 5;
  }
  lease::LeaseRecord Read() { return lease::OpenLease(config_.lease).value()->Get().value(); }
  TempDirForTest temp_{"pgrs-lease-keeper"};
  const std::string& dir_ = temp_.path();
  AgentConfig config_;
};

TEST_F(LeaseKeeperTest, TheHolderRenewsAtTheRetryPaceAndAlwaysBeforeAStart) {
  ASSERT_TRUE(lease::OpenLease(config_.lease).value()->Acquire("t-1", "", 5, false).ok());
  LeaseKeeper keeper("t-1");
  EXPECT_EQ(keeper.lastRenewMs(), 0);
  EXPECT_TRUE(keeper.RenewOverdue(config_)) << "never renewed";
  ASSERT_TRUE(keeper.Renew(config_, false).ok());
  int64_t first = keeper.lastRenewMs();
  EXPECT_GT(first, 0);
  int64_t renewedAt = Read().renewTimeMs;
  EXPECT_GE(renewedAt, first) << "lastRenewMs is taken before the renewal: the deadline errs early";
  EXPECT_FALSE(keeper.RenewOverdue(config_));

  usleep(20 * 1000);
  ASSERT_TRUE(keeper.Renew(config_, false).ok());
  EXPECT_EQ(keeper.lastRenewMs(), first) << "within the retry period: skipped";
  ASSERT_TRUE(keeper.Renew(config_, /*beforeStart=*/true).ok());
  EXPECT_GT(keeper.lastRenewMs(), first);
  EXPECT_GT(Read().renewTimeMs, renewedAt);

  keeper.ForgetRenewal();
  EXPECT_TRUE(keeper.RenewOverdue(config_));
}

TEST_F(LeaseKeeperTest, ALeaseHeldByAnotherInstanceIsAConflictAndNotRenewed) {
  ASSERT_TRUE(lease::OpenLease(config_.lease).value()->Acquire("t-2", "", 5, false).ok());
  int64_t theirs = Read().renewTimeMs;
  LeaseKeeper keeper("t-1");
  Status st = keeper.Renew(config_, true);
  EXPECT_EQ(st.code(), StatusCode::kConflict) << st.message();
  EXPECT_EQ(keeper.lastRenewMs(), 0);
  EXPECT_EQ(Read().holder, "t-2");
  EXPECT_EQ(Read().renewTimeMs, theirs);
}

TEST_F(LeaseKeeperTest, AMovedLeaseLocationIsOpenedAfresh) {
  LeaseKeeper keeper("t-1");
  auto first = keeper.Open(config_);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(keeper.Open(config_).value(), *first) << "kept while the location stays";
  AgentConfig moved = config_;
  moved.lease = "file:" + dir_ + "/other.json";
  ASSERT_TRUE(lease::OpenLease(moved.lease).value()->Acquire("t-1", "", 5, false).ok());
  ASSERT_TRUE(keeper.Renew(moved, true).ok());
  EXPECT_GE(lease::OpenLease(moved.lease).value()->Get().value().renewTimeMs, keeper.lastRenewMs());
  AgentConfig unknown = config_;
  unknown.lease = "nowhere:x";
  EXPECT_FALSE(keeper.Open(unknown).ok());
}

}  // namespace
}  // namespace pgrs::agent
