// End to end failover, switchover and rejoin with real PostgreSQL 15: a
// writer commits a numbered row every ~20 ms through status.connection.
// readWrite, a watcher polls pg_is_in_recovery() on every instance, and no
// test may ever see two instances accepting writes at once.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>

#include "e2e/local/harness.h"
#include "e2e/local/workload.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

using namespace std::chrono_literals;

class Failover : public ::testing::Test {
 protected:
  // A set of `instances` on fresh ports, Ready, with a `ledger` table, a
  // writer and a watcher running.
  void Create(const std::string& name, int instances, const std::string& extraSpec = "") {
    name_ = name;
    base_ = FreePortRange(instances);
    ASSERT_GT(base_, 0);
    c_.StartRun();
    auto applied = c_.ApplyText(Manifest(name, instances, base_, extraSpec));
    ASSERT_EQ(applied.exitCode, 0) << applied.output;
    ASSERT_TRUE(c_.WaitReady(name));
    auto set = c_.Get(name);
    ASSERT_TRUE(c_.Sql(name, base_, "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz DEFAULT now())").ok());
    std::vector<int> ports;
    for (int i = 0; i < instances; ++i) ports.push_back(base_ + i);
    watcher_ = std::make_unique<PrimaryWatcher>(ports, c_.Params(name, base_).password);
    watcher_->Start();
    writer_ = std::make_unique<Writer>(set.status.connection.readWrite, "ledger");
    writer_->Start();
    ASSERT_TRUE(writer_->WaitForMoreAcks(10, 10s));
  }

  void TearDown() override {
    if (writer_) writer_->Stop();
    if (watcher_) {
      watcher_->Stop();
      EXPECT_EQ(watcher_->TwoPrimarySweeps(), 0) << "two instances accepted writes at once";
      EXPECT_GT(watcher_->Sweeps(), 10);
    }
  }

  std::string Primary() { return c_.Get(name_).status.currentPrimary; }
  int PortOf(const std::string& instance) { return base_ + api::InstanceIndex(name_, instance) - 1; }

  // Waits until currentPrimary is no longer `old` and no promotion is under
  // way; returns the new primary ("" on timeout).
  std::string WaitForNewPrimary(const std::string& old, std::chrono::seconds timeout = 60s) {
    std::string now;
    Eventually([&] {
      auto set = c_.Get(name_);
      now = set.status.currentPrimary;
      return now != old && !now.empty() && set.status.promotionReason.empty();
    }, timeout);
    if (now == old || now.empty()) {
      // Say why, for whoever reads the CI log.
      auto get = c_.Local("get", {name_}, 30s);
      auto log = ReadFile(c_.stateDir() + "/run.log");
      std::string tail = log.ok() ? log->substr(log->size() > 6000 ? log->size() - 6000 : 0) : "";
      auto agent = ReadFile(c_.InstanceDir(name_, old) + "/agent.log");
      std::string agentTail = agent.ok() ? agent->substr(agent->size() > 3000 ? agent->size() - 3000 : 0) : "";
      ADD_FAILURE() << "no new primary replaced " << old << "\n" << get.output << "\n--- run.log\n" << tail
                    << "\n--- " << old << " agent.log\n" << agentTail;
      return "";
    }
    return now;
  }

  // Every acknowledged id is on the current primary.
  void ExpectNoAcknowledgedRowLost() {
    std::string primary = Primary();
    // Only rows acknowledged before the query starts must be in its snapshot.
    auto acknowledged = writer_->Acknowledged();
    auto rows = c_.Sql(name_, PortOf(primary), "SELECT id FROM ledger");
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    std::set<int64_t> present;
    for (const auto& r : *rows) present.insert(std::atoll(r[0]->c_str()));
    int missing = 0;
    std::string which;
    auto now = std::chrono::steady_clock::now();
    for (const auto& ack : acknowledged) {
      if (!present.count(ack.id)) {
        missing++;
        which += " " + std::to_string(ack.id) + " (acknowledged " +
                 std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now - ack.at).count()) +
                 " ms ago)";
      }
    }
    EXPECT_EQ(missing, 0) << "acknowledged rows missing on " << primary << ":" << which;
  }

  // The old primary is back as a streaming standby of the new one.
  void ExpectRejoined(const std::string& old) {
    ASSERT_TRUE(c_.WaitReady(name_, 120s));
    auto set = c_.Get(name_);
    for (const auto& i : set.status.instances) {
      if (i.name == old) {
        EXPECT_EQ(i.role, "standby");
        EXPECT_EQ(i.state, "Streaming");
      }
    }
    auto inRecovery = c_.Sql(name_, PortOf(old), "SELECT pg_is_in_recovery()");
    ASSERT_TRUE(inRecovery.ok());
    EXPECT_EQ((*inRecovery)[0][0], "t");
  }

  LocalCluster c_;
  std::string name_;
  int base_ = 0;
  std::unique_ptr<Writer> writer_;
  std::unique_ptr<PrimaryWatcher> watcher_;
};

TEST_F(Failover, KilledPrimaryPostmasterFailsOverAndRejoins) {
  Create("crash", 3);
  std::string old = Primary();
  ASSERT_EQ(::kill(c_.PostmasterPid(name_, old), SIGKILL), 0);
  auto killedAt = std::chrono::steady_clock::now();
  std::string next = WaitForNewPrimary(old);
  ASSERT_FALSE(next.empty());
  EXPECT_TRUE(writer_->WaitForMoreAcks(10, 20s)) << "no writes accepted by the new primary";
  ExpectRejoined(old);
  auto set = c_.Get(name_);
  ASSERT_FALSE(set.status.failovers.empty());
  EXPECT_EQ(set.status.failovers.back().from, old);
  EXPECT_EQ(set.status.failovers.back().to, next);
  EXPECT_EQ(set.status.failovers.back().reason, "PostmasterDown");
  EXPECT_EQ(set.status.timeline, 2);
  std::printf("write unavailability after postmaster SIGKILL: %.3f s\n", writer_->LongestGapAround(killedAt));
}

TEST_F(Failover, SyncRequiredLosesNoAcknowledgedCommit) {
  Create("sync", 3, "  replication:\n    mode: sync\n    syncReplicas: 1\n    dataDurability: required\n");
  for (int round = 0; round < 2; ++round) {
    std::string old = Primary();
    ASSERT_EQ(::kill(c_.PostmasterPid(name_, old), SIGKILL), 0);
    ASSERT_FALSE(WaitForNewPrimary(old).empty());
    EXPECT_TRUE(writer_->WaitForMoreAcks(10, 20s));
    ExpectNoAcknowledgedRowLost();
    ExpectRejoined(old);
  }
}

TEST_F(Failover, KilledAgentAndPostmasterTogether) {
  Create("both", 3);
  std::string old = Primary();
  pid_t postmaster = c_.PostmasterPid(name_, old);
  pid_t agent = c_.AgentPid(old);
  ASSERT_GT(agent, 0);
  ::kill(agent, SIGKILL);
  ::kill(postmaster, SIGKILL);
  ASSERT_FALSE(WaitForNewPrimary(old).empty());
  EXPECT_TRUE(writer_->WaitForMoreAcks(10, 20s));
  ExpectRejoined(old);
}

TEST_F(Failover, HungPrimaryFailsOverAndNeverWritesAgain) {
  Create("hang", 3);
  std::string old = Primary();
  pid_t postmaster = c_.PostmasterPid(name_, old);
  ASSERT_EQ(::kill(postmaster, SIGSTOP), 0);
  std::string next = WaitForNewPrimary(old, 60s);
  ::kill(postmaster, SIGCONT);
  ASSERT_FALSE(next.empty());
  EXPECT_EQ(c_.Get(name_).status.failovers.back().reason, "Unresponsive");
  EXPECT_TRUE(writer_->WaitForMoreAcks(10, 20s));
  // After SIGCONT the old primary does not accept a write: it was fenced
  // (killed) and comes back only as a standby.
  auto write = c_.Sql(name_, PortOf(old), "INSERT INTO ledger (id) VALUES (-1)");
  EXPECT_FALSE(write.ok());
  ExpectRejoined(old);
}

TEST_F(Failover, FrozenAgentLosesItsLeaseAndItsPrimaryIsStoppedFromOutside) {
  Create("frozen", 3);
  std::string old = Primary();
  pid_t agent = c_.AgentPid(old);
  ASSERT_GT(agent, 0);
  pid_t postmaster = c_.PostmasterPid(name_, old);
  ASSERT_EQ(::kill(agent, SIGSTOP), 0);
  // PostgreSQL keeps serving while the lease runs; then it is stopped from
  // outside and a standby takes over.
  std::string next = WaitForNewPrimary(old, 60s);
  ::kill(agent, SIGCONT);
  ASSERT_FALSE(next.empty());
  EXPECT_EQ(c_.Get(name_).status.failovers.back().reason, "LeaseExpired");
  EXPECT_FALSE(ProcessExists(postmaster) && ReadFile("/proc/" + std::to_string(postmaster) + "/stat").ok() &&
               ReadFile("/proc/" + std::to_string(postmaster) + "/stat")->find(") Z") == std::string::npos);
  EXPECT_TRUE(writer_->WaitForMoreAcks(10, 20s));
  ExpectRejoined(old);
}

TEST_F(Failover, TenFailoversInARow) {
  Create("ten", 3);
  for (int round = 1; round <= 10; ++round) {
    std::string old = Primary();
    ASSERT_EQ(::kill(c_.PostmasterPid(name_, old), SIGKILL), 0) << "round " << round;
    ASSERT_FALSE(WaitForNewPrimary(old).empty()) << "round " << round;
    ASSERT_TRUE(c_.WaitReady(name_, 120s)) << "round " << round;
    ASSERT_TRUE(writer_->WaitForMoreAcks(5, 20s)) << "round " << round;
  }
  auto set = c_.Get(name_);
  EXPECT_EQ(set.status.timeline, 11);
  EXPECT_EQ(set.status.failovers.size(), 10u);
  EXPECT_EQ(set.status.readyInstances, 3);
}

TEST_F(Failover, SwitchoverLosesNothingAndBack) {
  Create("switch", 3);
  std::string first = Primary();
  std::string target = first == "switch-2" ? "switch-3" : "switch-2";
  auto moved = c_.Local("switchover", {name_, "--to", target, "--timeout", "60s"});
  ASSERT_EQ(moved.exitCode, 0) << moved.output;
  EXPECT_EQ(Primary(), target);
  EXPECT_TRUE(writer_->WaitForMoreAcks(10, 20s));
  ExpectNoAcknowledgedRowLost();
  ExpectRejoined(first);
  EXPECT_EQ(c_.Get(name_).status.failovers.back().reason, "Switchover");

  auto back = c_.Local("switchover", {name_, "--to", first, "--timeout", "60s"});
  ASSERT_EQ(back.exitCode, 0) << back.output;
  EXPECT_EQ(Primary(), first);
  EXPECT_TRUE(writer_->WaitForMoreAcks(10, 20s));
  ExpectNoAcknowledgedRowLost();
  ExpectRejoined(target);
}

TEST_F(Failover, ControlPlaneKilledMidFailoverFinishesIt) {
  Create("resume", 3);
  std::string old = Primary();
  ASSERT_EQ(::kill(c_.PostmasterPid(name_, old), SIGKILL), 0);
  // Kill the control plane as soon as status shows the failover under way.
  bool caught = Eventually([&] {
    auto text = ReadFile(c_.stateDir() + "/sets/" + name_ + "/status.json");
    return text.ok() && text->find("\"promotionReason\"") != std::string::npos;
  }, 10s);
  ::kill(c_.runPid(), SIGKILL);
  c_.StopRun();  // reaps it
  if (!caught) std::printf("note: the failover finished before the control plane was killed\n");
  c_.StartRun();
  std::string next = WaitForNewPrimary(old, 90s);
  ASSERT_FALSE(next.empty());
  ASSERT_TRUE(c_.WaitReady(name_, 120s));
  int writable = 0;
  for (int i = 0; i < 3; ++i) {
    auto r = c_.Sql(name_, base_ + i, "SELECT pg_is_in_recovery()");
    if (r.ok() && (*r)[0][0] == "f") writable++;
  }
  EXPECT_EQ(writable, 1);
  EXPECT_TRUE(writer_->WaitForMoreAcks(10, 30s));
}

}  // namespace
}  // namespace pgrs::e2e
