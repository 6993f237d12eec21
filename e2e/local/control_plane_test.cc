// End to end, with real PostgreSQL 15: the data plane outlives its control
// plane. `kill -9` of `pgrs local run` leaves every agent and PostgreSQL
// running (the primary keeps its lease and takes writes), `get` and `wait`
// say that nothing observes the set any more, and a new `run` adopts every
// instance without restarting PostgreSQL; agents of sets deleted meanwhile
// are stopped when it comes back.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdio>

#include "e2e/local/harness.h"
#include "e2e/local/workload.h"
#include "operator/lease/lease.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

using namespace std::chrono_literals;

bool Alive(pid_t pid) { return pid > 0 && ProcessStartTime(pid).has_value(); }

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t LeaseRenewedMs(LocalCluster& c, const std::string& set, std::string* holder) {
  auto lease = lease::OpenLease("file:" + c.stateDir() + "/sets/" + set + "/primary-lease.json");
  if (!lease.ok()) return 0;
  auto record = (*lease)->Get();
  if (!record.ok() || !record->exists) return 0;
  *holder = record->holder;
  return record->renewTimeMs;
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) n++;
  return n;
}

// Starts `run` and applies the sets (name, instances) on consecutive ports
// of one free range; returns the first port once all are Ready, else 0.
int StartReadySets(LocalCluster& c, const std::vector<std::pair<std::string, int>>& sets) {
  int total = 0;
  for (const auto& [name, instances] : sets) total += instances;
  const int base = FreePortRange(total);
  if (base <= 0) return 0;
  c.StartRun();
  int port = base;
  for (const auto& [name, instances] : sets) {
    auto applied = c.ApplyText(Manifest(name, instances, port));
    if (applied.exitCode != 0) {
      ADD_FAILURE() << applied.output;
      return 0;
    }
    port += instances;
  }
  for (const auto& [name, instances] : sets) {
    if (!c.WaitReady(name)) return 0;
  }
  return base;
}

TEST(LocalControlPlane, KilledRunLeavesTheDataPlaneRunningAndARestartedRunAdoptsIt) {
  LocalCluster c;
  const int base = StartReadySets(c, {{"survive", 2}});
  ASSERT_GT(base, 0);
  ASSERT_TRUE(c.Sql("survive", base, "CREATE TABLE ledger (id bigint PRIMARY KEY, at timestamptz DEFAULT now())").ok());
  Writer writer(c.Get("survive").status.connection.readWrite, "ledger");
  writer.Start();
  ASSERT_TRUE(writer.WaitForMoreAcks(10, 10s));
  const pid_t postmaster1 = c.PostmasterPid("survive", "survive-1");
  const pid_t postmaster2 = c.PostmasterPid("survive", "survive-2");
  const pid_t agent1 = c.AgentPid("survive-1");
  const pid_t agent2 = c.AgentPid("survive-2");
  ASSERT_TRUE(Alive(postmaster1) && Alive(postmaster2) && Alive(agent1) && Alive(agent2));

  // The crash of the control plane.
  const auto killedAt = std::chrono::steady_clock::now();
  const int64_t killedAtMs = NowMs();
  c.KillRun();

  // Writes go on past several lease durations (5 s): the primary's agent
  // renews its lease without a control plane.
  const size_t acksAtKill = writer.AcknowledgedCount();
  ASSERT_TRUE(Eventually([&] { return std::chrono::steady_clock::now() - killedAt > 12s; }, 20s));
  EXPECT_GT(writer.AcknowledgedCount(), acksAtKill + 100);
  EXPECT_LT(writer.LongestGapAround(killedAt), 2.0);
  EXPECT_GT(writer.Acknowledged().back().at, killedAt + 11s) << "no commit acknowledged lately";
  std::string holder;
  EXPECT_GT(LeaseRenewedMs(c, "survive", &holder), killedAtMs + 10000);
  EXPECT_EQ(holder, "survive-1");
  for (pid_t pid : {postmaster1, postmaster2, agent1, agent2}) EXPECT_TRUE(Alive(pid)) << pid;
  auto standbyRows = c.Sql("survive", base + 1, "SELECT count(*) FROM ledger");
  ASSERT_TRUE(standbyRows.ok());
  EXPECT_GT(std::atoi((*standbyRows)[0][0]->c_str()), static_cast<int>(acksAtKill)) << "the standby streams on";

  // `get` says nothing observes the set; its conditions are Unknown.
  auto table = c.Local("get", {"survive"});
  EXPECT_EQ(table.exitCode, 0) << table.output;
  EXPECT_NE(table.output.find("Control plane: pgrs local run is not running since "), std::string::npos)
      << table.output;
  EXPECT_NE(table.output.find("Ready=Unknown (ControlPlaneNotRunning)"), std::string::npos) << table.output;
  auto seen = c.Get("survive");
  EXPECT_EQ(seen.status.phase, "Unknown");
  ASSERT_FALSE(seen.status.conditions.empty());
  for (const auto& condition : seen.status.conditions) {
    EXPECT_EQ(condition.status, "Unknown") << condition.type;
    EXPECT_EQ(condition.reason, "ControlPlaneNotRunning") << condition.type;
  }
  // `wait` fails with that reason instead of a stale success.
  const auto waitStart = std::chrono::steady_clock::now();
  auto waited = c.Local("wait", {"survive", "--for", "condition=Ready", "--timeout", "60s"});
  EXPECT_EQ(waited.exitCode, 1) << waited.output;
  EXPECT_NE(waited.output.find("condition Ready=True cannot be observed: pgrs local run is not running since"),
            std::string::npos)
      << waited.output;
  EXPECT_LT(std::chrono::steady_clock::now() - waitStart, 20s);

  // Started again, `run` adopts both agents: same agents, same postmasters.
  const auto restartedAt = std::chrono::steady_clock::now();
  c.StartRun();
  ASSERT_TRUE(c.WaitReady("survive", 60s));
  auto set = c.Get("survive");
  EXPECT_EQ(set.status.phase, "Healthy");
  EXPECT_EQ(set.status.currentPrimary, "survive-1");
  EXPECT_EQ(c.PostmasterPid("survive", "survive-1"), postmaster1);
  EXPECT_EQ(c.PostmasterPid("survive", "survive-2"), postmaster2);
  EXPECT_EQ(c.AgentPid("survive-1"), agent1);
  EXPECT_EQ(c.AgentPid("survive-2"), agent2);
  for (pid_t pid : {postmaster1, postmaster2}) EXPECT_TRUE(Alive(pid)) << pid;
  auto log = ReadFile(c.stateDir() + "/run.log");
  ASSERT_TRUE(log.ok());
  EXPECT_EQ(Count(*log, "adopted running agent set=survive"), 2u) << *log;
  EXPECT_EQ(Count(*log, "started agent set=survive"), 2u) << "only the first run started agents\n" << *log;
  EXPECT_TRUE(writer.WaitForMoreAcks(20, 10s));
  EXPECT_LT(writer.LongestGapAround(restartedAt), 2.0);
  auto table2 = c.Local("get", {"survive"});
  EXPECT_EQ(table2.output.find("Control plane:"), std::string::npos) << table2.output;
  writer.Stop();

  // A clean stop still stops the data plane.
  EXPECT_EQ(c.StopRun(), 0);
  EXPECT_TRUE(c.ProcessesUsingStateDir().empty());
}

TEST(LocalControlPlane, AgentsOfSetsDeletedWhileRunWasDownAreStoppedWhenItReturns) {
  LocalCluster c;
  const int base = StartReadySets(c, {{"kept", 1}, {"doomed", 1}, {"vanished", 1}});
  ASSERT_GT(base, 0);
  const pid_t kept = c.PostmasterPid("kept", "kept-1");
  const pid_t doomed = c.PostmasterPid("doomed", "doomed-1");
  const pid_t doomedAgent = c.AgentPid("doomed-1");
  const pid_t vanished = c.PostmasterPid("vanished", "vanished-1");
  const pid_t vanishedAgent = c.AgentPid("vanished-1");
  ASSERT_TRUE(Alive(kept) && Alive(doomed) && Alive(doomedAgent) && Alive(vanished) && Alive(vanishedAgent));

  c.KillRun();
  // Deleted while no control plane runs: marked, its instances still run.
  auto deleted = c.Local("delete", {"doomed"});
  EXPECT_EQ(deleted.exitCode, 0) << deleted.output;
  EXPECT_NE(deleted.output.find("marked for deletion"), std::string::npos) << deleted.output;
  EXPECT_TRUE(Alive(doomedAgent));
  EXPECT_TRUE(c.Sql("doomed", base + 1, "SELECT 1").ok());
  // Moved away by hand (removing it would race its PostgreSQL's writes):
  // nothing is left in the store that names it but its agent.
  EXPECT_EQ(::rename((c.stateDir() + "/sets/vanished").c_str(), (c.stateDir() + "/vanished-by-hand").c_str()), 0);
  EXPECT_TRUE(Alive(vanishedAgent));

  c.StartRun();
  EXPECT_TRUE(Eventually([&] { return !Alive(doomedAgent) && !Alive(doomed); }, 60s));
  EXPECT_TRUE(Eventually([&] { return !PathExists(c.stateDir() + "/sets/doomed"); }, 30s));
  EXPECT_TRUE(Eventually([&] { return !Alive(vanishedAgent) && !Alive(vanished); }, 60s));
  ASSERT_TRUE(c.WaitReady("kept", 60s));
  EXPECT_EQ(c.PostmasterPid("kept", "kept-1"), kept);
  EXPECT_TRUE(Alive(kept));
  auto log = ReadFile(c.stateDir() + "/run.log");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("stopping orphan agent set=vanished instance=vanished-1"), std::string::npos) << *log;
  EXPECT_NE(log->find("deleted replica set set=doomed"), std::string::npos) << *log;
  auto names = c.Local("get");
  EXPECT_EQ(names.output.find("doomed"), std::string::npos) << names.output;
  EXPECT_EQ(names.output.find("vanished"), std::string::npos) << names.output;
  // Nothing of the two sets runs any more; "kept" runs on.
  for (pid_t pid : c.ProcessesUsingStateDir()) {
    auto args = ProcessArguments(pid);
    std::string joined;
    for (const auto& a : args) joined += a + " ";
    EXPECT_EQ(joined.find("/sets/doomed/"), std::string::npos) << joined;
    EXPECT_EQ(joined.find("/sets/vanished/"), std::string::npos) << joined;
  }
}

}  // namespace
}  // namespace pgrs::e2e
