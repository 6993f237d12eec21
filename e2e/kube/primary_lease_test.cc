// The primary lease as a coordination.k8s.io/v1 Lease (KubeLease), against
// the in-memory API server over loopback HTTP.
#include "operator/kube/primary_lease.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <thread>

#include "e2e/kube/test_util.h"

namespace pgrs::e2e {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr char kNs[] = "db";
constexpr char kName[] = "demo-primary";

class PrimaryLeaseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = PlainClient(server_, kube::LeaseClientOptions());
    ASSERT_NE(client_, nullptr);
  }
  std::unique_ptr<kube::KubeLease> Open(const std::string& name = kName, kube::KubeLeaseOptions options = {}) {
    return std::make_unique<kube::KubeLease>(client_.get(), kNs, name, options);
  }
  Json Stored(const std::string& name = kName) {
    return server_.CallJson("GET", kube::LeaseResource().Path(kNs, name));
  }

  ApiServer server_;
  std::unique_ptr<kube::Client> client_;
};

Json OwnerReference() {
  Json owner = Json::object();
  owner["apiVersion"] = Json::string("pgrs.dev/v1alpha1");
  owner["kind"] = Json::string("PostgresReplicaSet");
  owner["name"] = Json::string("demo");
  owner["uid"] = Json::string("uid-1");
  owner["controller"] = Json::boolean(true);
  owner["blockOwnerDeletion"] = Json::boolean(true);
  return owner;
}

TEST_F(PrimaryLeaseTest, AcquireOnAnAbsentLeaseCreatesItOwnedByTheSet) {
  kube::KubeLeaseOptions options;
  options.ownerReference = OwnerReference();
  auto lease = Open(kName, options);
  EXPECT_FALSE(lease->Get()->exists);
  auto got = lease->Acquire("demo-1", "", 5, false);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->holder, "demo-1");
  EXPECT_EQ(got->transitions, 0);
  EXPECT_FALSE(got->ExpiredAt(lease::NowMs()));

  Json stored = Stored();
  EXPECT_EQ(kube::GetString(stored, {"spec", "holderIdentity"}), "demo-1");
  EXPECT_EQ(kube::GetInt(stored, {"spec", "leaseDurationSeconds"}), 5);
  std::string renewTime = kube::GetString(stored, {"spec", "renewTime"});
  EXPECT_EQ(renewTime.size(), std::string("2026-11-28T04:05:06.123456Z").size()) << renewTime;
  EXPECT_TRUE(kube::ParseTime(renewTime).has_value());
  EXPECT_EQ(kube::GetString(stored, {"spec", "acquireTime"}), renewTime);
  ASSERT_TRUE(stored["metadata"]["ownerReferences"].is_array());
  EXPECT_EQ(kube::GetString(stored["metadata"]["ownerReferences"][0], {"name"}), "demo");
  // Another handle (another process) sees the same record.
  EXPECT_EQ(Open()->Get()->holder, "demo-1");
}

TEST_F(PrimaryLeaseTest, TheHolderRenewsAndNobodyElseDoes) {
  auto lease = Open();
  EXPECT_EQ(lease->Renew("demo-1", 5).status().code(), StatusCode::kConflict) << "Renew never creates";
  EXPECT_TRUE(Stored().is_null());
  auto first = lease->Acquire("demo-1", "", 5, false);
  ASSERT_TRUE(first.ok());
  std::this_thread::sleep_for(milliseconds(5));  // so that the renewal's time differs
  auto renewed = lease->Renew("demo-1", 7);
  ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  EXPECT_GT(renewed->renewTimeMs, first->renewTimeMs);
  EXPECT_EQ(renewed->durationSeconds, 7);
  EXPECT_EQ(renewed->acquireTimeMs, first->acquireTimeMs);
  EXPECT_EQ(kube::GetInt(Stored(), {"spec", "leaseDurationSeconds"}), 7);

  auto other = Open()->Renew("demo-2", 5);
  EXPECT_EQ(other.status().code(), StatusCode::kConflict);
  EXPECT_NE(other.status().message().find("demo-1"), std::string::npos) << other.status().message();
  EXPECT_EQ(kube::GetString(Stored(), {"spec", "holderIdentity"}), "demo-1");
}

TEST_F(PrimaryLeaseTest, ARenewalAfterAnotherWriterReReadsAndStillSucceeds) {
  auto agent = Open();
  ASSERT_TRUE(agent->Acquire("demo-1", "", 5, false).ok());
  // Someone else writes the Lease (a label, say): the agent's cached
  // version is stale, its PUT gets 409, it reads again and renews.
  Json changed = Stored();
  changed["metadata"]["labels"]["x"] = Json::string("y");
  ASSERT_FALSE(server_.CallJson("PUT", kube::LeaseResource().Path(kNs, kName), changed).is_null());
  auto renewed = agent->Renew("demo-1", 5);
  EXPECT_TRUE(renewed.ok()) << renewed.status().ToString();
  // The operator hands the lease over: the old holder's next renewal fails.
  ASSERT_TRUE(Open()->Acquire("demo-2", "demo-1", 5, /*holderFenced=*/true).ok());
  EXPECT_EQ(agent->Renew("demo-1", 5).status().code(), StatusCode::kConflict);
}

TEST_F(PrimaryLeaseTest, AnotherHolderNeedsExpiryOrFencing) {
  auto lease = Open();
  ASSERT_TRUE(lease->Acquire("demo-1", "", 60, false).ok());
  auto operatorSide = Open();
  EXPECT_EQ(operatorSide->Acquire("demo-2", "demo-1", 60, false).status().code(), StatusCode::kConflict);
  EXPECT_EQ(operatorSide->Acquire("demo-2", "demo-3", 60, true).status().code(), StatusCode::kConflict)
      << "the expected holder must match, even when fenced";
  auto taken = operatorSide->Acquire("demo-2", "demo-1", 60, true);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ(taken->holder, "demo-2");
  EXPECT_EQ(taken->transitions, 1);
  EXPECT_EQ(kube::GetInt(Stored(), {"spec", "leaseTransitions"}), 1);
  EXPECT_EQ(lease->Renew("demo-1", 60).status().code(), StatusCode::kConflict);
  // Acquiring what one holds already is a renewal: no transition.
  auto again = operatorSide->Acquire("demo-2", "demo-1", 60, false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->transitions, 1);
}

TEST_F(PrimaryLeaseTest, AnExpiredLeaseMayBeTakenWithoutFencing) {
  auto lease = Open();
  ASSERT_TRUE(lease->Acquire("demo-1", "", 0, false).ok());  // zero seconds: expires at once
  std::this_thread::sleep_for(milliseconds(5));
  EXPECT_TRUE(lease->Get()->ExpiredAt(lease::NowMs()));
  auto taken = Open()->Acquire("demo-2", "demo-1", 5, false);
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ(taken->holder, "demo-2");
}

TEST_F(PrimaryLeaseTest, OfTwoConcurrentAcquiresExactlyOneWins) {
  auto second = PlainClient(server_, kube::LeaseClientOptions());
  for (int round = 0; round < 40; ++round) {
    std::string name = "race-" + std::to_string(round);
    // Even rounds race for an absent Lease (both create), odd rounds for
    // one whose holder has expired (both PUT the same version).
    if (round % 2 == 1) {
      ASSERT_TRUE(Open(name)->Acquire("old", "", 0, false).ok());
      std::this_thread::sleep_for(milliseconds(2));
    }
    kube::KubeLease a(client_.get(), kNs, name);
    kube::KubeLease b(second.get(), kNs, name);
    std::atomic<int> ready{0};
    Result<lease::LeaseRecord> ra = Status::Internal("not run"), rb = Status::Internal("not run");
    auto run = [&](kube::KubeLease* lease, const std::string& holder, Result<lease::LeaseRecord>* out) {
      ready++;
      while (ready.load() < 2) {
      }
      *out = lease->Acquire(holder, "old", 5, false);
    };
    std::thread ta(run, &a, "a", &ra);
    std::thread tb(run, &b, "b", &rb);
    ta.join();
    tb.join();
    ASSERT_NE(ra.ok(), rb.ok()) << "round " << round << ": a=" << ra.status().ToString()
                                << " b=" << rb.status().ToString();
    const auto& loser = ra.ok() ? rb : ra;
    EXPECT_EQ(loser.status().code(), StatusCode::kConflict) << loser.status().ToString();
    std::string winner = ra.ok() ? "a" : "b";
    EXPECT_EQ(kube::GetString(Stored(name), {"spec", "holderIdentity"}), winner) << "round " << round;
  }
}

TEST_F(PrimaryLeaseTest, AnUnansweringApiServerFailsARenewalInBoundedTime) {
  auto lease = Open();
  ASSERT_TRUE(lease->Acquire("demo-1", "", 5, false).ok());
  // Requests hang for longer than any renew deadline.
  server_.AddFault({Fault::Kind::kDelay, "", "/leases/", 500, 0, milliseconds(5000), -1});
  auto start = Clock::now();
  auto renewed = lease->Renew("demo-1", 5);
  auto took = Clock::now() - start;
  EXPECT_FALSE(renewed.ok());
  EXPECT_EQ(renewed.status().code(), StatusCode::kUnavailable) << renewed.status().ToString();
  EXPECT_LT(took, milliseconds(2000)) << "the smallest renewDeadlineSeconds is 2";
  // Errors (5xx) are not retried into the deadline either.
  server_.ClearFaults();
  server_.AddFault({Fault::Kind::kStatus, "", "/leases/", 503, 0, milliseconds(0), -1});
  start = Clock::now();
  EXPECT_EQ(lease->Renew("demo-1", 5).status().code(), StatusCode::kUnavailable);
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  // And a server that is gone altogether.
  server_.ClearFaults();
  server_.Stop();
  start = Clock::now();
  EXPECT_EQ(lease->Renew("demo-1", 5).status().code(), StatusCode::kUnavailable);
  EXPECT_LT(Clock::now() - start, milliseconds(2000));
  // Back: the holder renews again.
  ASSERT_TRUE(server_.Restart().ok());
  EXPECT_TRUE(WaitFor([&] { return lease->Renew("demo-1", 5).ok(); }, milliseconds(5000)));
}

TEST_F(PrimaryLeaseTest, OpenLeaseOpensKubeLocationsOnOneClientFromKUBECONFIG) {
  TempDir dir;
  std::string kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
                           "clusters:\n- name: test\n  cluster:\n    server: " + server_.url() +
                           "\nusers:\n- name: agent\n  user:\n    token: agent-token\n"
                           "contexts:\n- name: test\n  context: {cluster: test, user: agent, namespace: db}\n";
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/kubeconfig", kubeconfig).ok());
  ASSERT_EQ(::setenv("KUBECONFIG", (dir.path() + "/kubeconfig").c_str(), 1), 0);
  kube::RegisterKubeLeaseOpener(std::nullopt, [](const std::string& ns, const std::string& name) -> std::optional<Json> {
    if (ns != kNs || name != kName) return std::nullopt;
    return OwnerReference();
  });
  EXPECT_EQ(lease::OpenLease("kube:no-slash").status().code(), StatusCode::kInvalid);
  EXPECT_EQ(lease::OpenLease("kube:a/b/c").status().code(), StatusCode::kInvalid);

  auto opened = lease::OpenLease(std::string("kube:") + kNs + "/" + kName);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  ASSERT_TRUE((*opened)->Acquire("demo-1", "", 5, false).ok());
  EXPECT_EQ(kube::GetString(Stored()["metadata"]["ownerReferences"][0], {"kind"}), "PostgresReplicaSet");
  // Each renewal opens the lease anew, as an agent may: one PUT each, on
  // the same client (no new configuration read, no new connection pool).
  int before = server_.CountRequests("PUT ");
  for (int i = 0; i < 5; ++i) {
    auto again = lease::OpenLease(std::string("kube:") + kNs + "/" + kName);
    ASSERT_TRUE(again.ok());
    auto renewed = (*again)->Renew("demo-1", 5);
    ASSERT_TRUE(renewed.ok()) << renewed.status().ToString();
  }
  EXPECT_EQ(server_.CountRequests("PUT ") - before, 5);
  EXPECT_EQ(kube::GetString(Stored(), {"spec", "holderIdentity"}), "demo-1");
  ::unsetenv("KUBECONFIG");
}

}  // namespace
}  // namespace pgrs::e2e
