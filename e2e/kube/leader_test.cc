// Leader election between in-process candidates on the test API server.
#include <gtest/gtest.h>

#include "e2e/kube/test_util.h"
#include "operator/kube/leader.h"

namespace pgrs::e2e {
namespace {

using std::chrono::milliseconds;

struct Candidate {
  std::atomic<int> started{0};
  std::atomic<int> stopped{0};
  std::atomic<bool> lost{false};
  std::unique_ptr<kube::LeaderElector> elector;
};

class LeaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    kube::ClientOptions options;
    options.maxAttempts = 1;
    options.requestTimeout = milliseconds(500);
    client_ = PlainClient(server_, options);
  }
  std::unique_ptr<Candidate> Campaign(const std::string& identity, bool releaseOnStop = true) {
    auto c = std::make_unique<Candidate>();
    kube::LeaderElectionConfig config;
    config.ns = "pgrs-system";
    config.name = "pgrs-operator";
    config.identity = identity;
    config.leaseDuration = milliseconds(1500);
    config.renewDeadline = milliseconds(1000);
    config.retryPeriod = milliseconds(100);
    config.releaseOnStop = releaseOnStop;
    Candidate* raw = c.get();
    kube::LeaderCallbacks callbacks;
    callbacks.onStartedLeading = [raw] { raw->started++; };
    callbacks.onStoppedLeading = [raw](bool lost) {
      raw->lost = lost;
      raw->stopped++;
    };
    c->elector = std::make_unique<kube::LeaderElector>(client_.get(), config, callbacks);
    c->elector->Start();
    return c;
  }
  std::string Holder() {
    auto lease = server_.CallJson("GET", kube::LeaseResource().Path("pgrs-system", "pgrs-operator"));
    return kube::GetString(lease, {"spec", "holderIdentity"});
  }

  ApiServer server_;
  std::unique_ptr<kube::Client> client_;
};

TEST_F(LeaderTest, ConfigurationMustOrderDurationDeadlineAndPeriod) {
  kube::LeaderElectionConfig config{"ns", "lease", "me", milliseconds(15000), milliseconds(10000), milliseconds(2000)};
  EXPECT_TRUE(kube::ValidateLeaderElectionConfig(config).ok());
  config.renewDeadline = milliseconds(15000);
  EXPECT_EQ(kube::ValidateLeaderElectionConfig(config).code(), StatusCode::kInvalid);
  config.renewDeadline = milliseconds(1000);
  EXPECT_EQ(kube::ValidateLeaderElectionConfig(config).code(), StatusCode::kInvalid);
}

TEST_F(LeaderTest, ExactlyOneOfTwoLeadsAndAStoppedLeaderHandsOverAtOnce) {
  auto a = Campaign("a");
  auto b = Campaign("b");
  ASSERT_TRUE(WaitFor([&] { return a->elector->IsLeader() || b->elector->IsLeader(); }));
  // Several renewals later, still exactly one.
  std::this_thread::sleep_for(milliseconds(400));  // a window to observe, not a wait for a condition
  EXPECT_NE(a->elector->IsLeader(), b->elector->IsLeader());
  Candidate& leader = a->elector->IsLeader() ? *a : *b;
  Candidate& standby = a->elector->IsLeader() ? *b : *a;
  std::string standbyName = a->elector->IsLeader() ? "b" : "a";
  EXPECT_EQ(Holder(), a->elector->IsLeader() ? "a" : "b");
  EXPECT_EQ(standby.started.load(), 0);

  auto start = std::chrono::steady_clock::now();
  leader.elector->Stop();
  EXPECT_EQ(leader.stopped.load(), 1);
  EXPECT_FALSE(leader.lost);
  ASSERT_TRUE(WaitFor([&] { return standby.elector->IsLeader(); }, milliseconds(3000)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1000)) << "a released lease is free at once";
  EXPECT_EQ(Holder(), standbyName);
  auto lease = server_.CallJson("GET", kube::LeaseResource().Path("pgrs-system", "pgrs-operator"));
  EXPECT_EQ(kube::GetInt(lease, {"spec", "leaseTransitions"}), 1);
}

TEST_F(LeaderTest, ACrashedLeaderIsReplacedOnlyAfterTheLeaseDuration) {
  auto a = Campaign("a", /*releaseOnStop=*/false);
  ASSERT_TRUE(WaitFor([&] { return a->elector->IsLeader(); }));
  auto b = Campaign("b");
  std::this_thread::sleep_for(milliseconds(300));  // b observes a renewing
  EXPECT_FALSE(b->elector->IsLeader());
  auto crashed = std::chrono::steady_clock::now();
  a->elector->Stop();  // no release: as if the process died
  ASSERT_TRUE(WaitFor([&] { return b->elector->IsLeader(); }, milliseconds(4000)));
  auto took = std::chrono::steady_clock::now() - crashed;
  EXPECT_GE(took, milliseconds(1300));
  EXPECT_LT(took, milliseconds(3000));
}

TEST_F(LeaderTest, ALeaderThatCannotRenewStepsDownWithinTheRenewDeadline) {
  auto a = Campaign("a");
  ASSERT_TRUE(WaitFor([&] { return a->elector->IsLeader(); }));
  auto broken = std::chrono::steady_clock::now();
  server_.AddFault({Fault::Kind::kStatus, "", "/leases/", 500, 0, milliseconds(0), -1});
  ASSERT_TRUE(WaitFor([&] { return a->stopped.load() == 1; }, milliseconds(3000)));
  auto took = std::chrono::steady_clock::now() - broken;
  EXPECT_TRUE(a->lost);
  EXPECT_FALSE(a->elector->IsLeader());
  EXPECT_GE(took, milliseconds(900));
  EXPECT_LT(took, milliseconds(1500)) << "must stop before the lease (1.5 s) can pass to another";
}

}  // namespace
}  // namespace pgrs::e2e
