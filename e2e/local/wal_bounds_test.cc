// Bounded WAL retention and data checksums, end to end with real PostgreSQL
// 15 (and pgBackRest): a set with spec.replication.maxSlotWalKeepSize: 64MB
// whose standby is kept down while the primary writes more than that loses
// the standby's slot; status says so; once the standby is back it is cloned
// again (or, with spec.backup, reads the missing WAL from the archive) and
// streams through a fresh slot. Both data directories have data checksums
// (spec.postgres.dataChecksums defaults to true).
#include <gtest/gtest.h>
#include <signal.h>

#include "e2e/local/harness.h"
#include "operator/util/files.h"
#include "operator/util/process.h"

namespace pgrs::e2e {
namespace {

using namespace std::chrono_literals;

// Sends SIGCONT to a stopped process when it goes out of scope, so that a
// failed assertion never leaves an agent frozen (the cluster could not stop it).
struct ContinueOnExit {
  pid_t pid = 0;
  ~ContinueOnExit() {
    if (pid > 0) ::kill(pid, SIGCONT);
  }
};

// Gone, or a zombie its (frozen) parent has not reaped yet.
bool Exited(pid_t pid) {
  auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  return !ProcessExists(pid) || !stat.ok() || stat->find(") Z") != std::string::npos;
}

class WalBounds : public ::testing::Test {
 protected:
  int PortOf(const std::string& instance) { return base_ + api::InstanceIndex(name_, instance) - 1; }

  std::string One(const std::string& instance, const std::string& sql) {
    auto rows = c_.Sql(name_, PortOf(instance), sql);
    if (!rows.ok() || rows->empty() || (*rows)[0].empty()) return "";
    return (*rows)[0][0].value_or("");
  }

  std::string Tail(const std::string& instance, const char* file) {
    auto log = ReadFile(c_.InstanceDir(name_, instance) + "/" + file);
    return log.ok() ? log->substr(log->size() > 3000 ? log->size() - 3000 : 0) : "";
  }

  const api::InstanceStatus* Find(const api::PostgresReplicaSet& set, const std::string& instance) {
    for (const auto& i : set.status.instances) {
      if (i.name == instance) return &i;
    }
    return nullptr;
  }

  void LoseTheStandbysSlotAndBringItBack(bool backup);

  LocalCluster c_;
  std::string name_ = "walkeep";
  int base_ = 0;
};

// The scenario of both tests below: with `backup`, spec.backup is set and the
// standby catches up from the archive; without, it is cloned again.
void WalBounds::LoseTheStandbysSlotAndBringItBack(bool backup) {
  const auto started = std::chrono::steady_clock::now();
  base_ = FreePortRange(2);
  ASSERT_GT(base_, 0);
  c_.StartRun();
  std::string extra = "  replication:\n    maxSlotWalKeepSize: 64MB\n";
  if (backup) extra += "  backup:\n    repository:\n      path: " + c_.stateDir() + "/backups\n";
  auto applied = c_.ApplyText(Manifest(name_, 2, base_, extra));
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_TRUE(c_.WaitReady(name_));
  const std::string primary = c_.Get(name_).status.currentPrimary;
  ASSERT_FALSE(primary.empty());
  const std::string standby = primary == api::InstanceName(name_, 1) ? api::InstanceName(name_, 2)
                                                                      : api::InstanceName(name_, 1);
  const std::string slot = "pgrs_" + name_ + "_" + std::to_string(api::InstanceIndex(name_, standby));

  // spec.postgres.dataChecksums (default): initdb --data-checksums on the
  // primary, and the standby is its clone.
  EXPECT_EQ(One(primary, "SHOW data_checksums"), "on");
  EXPECT_EQ(One(standby, "SHOW data_checksums"), "on");
  EXPECT_EQ(One(primary, "SHOW max_slot_wal_keep_size"), "64MB");
  EXPECT_EQ(One(primary, "SHOW wal_keep_size"), "64MB");

  // The standby goes down and stays down: its agent frozen (it would
  // restart PostgreSQL), its PostgreSQL stopped with a fast shutdown.
  const pid_t agent = c_.AgentPid(standby);
  ASSERT_GT(agent, 0);
  const pid_t postmaster = c_.PostmasterPid(name_, standby);
  ASSERT_GT(postmaster, 0);
  ASSERT_EQ(::kill(agent, SIGSTOP), 0);
  ContinueOnExit thaw{agent};
  ASSERT_EQ(::kill(postmaster, SIGINT), 0);
  ASSERT_TRUE(Eventually([&] { return Exited(postmaster); }, 30s));
  ASSERT_TRUE(Eventually([&] {
    return One(primary, "SELECT active FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == "f";
  }, 30s));

  // More than 64MB of WAL: ten segments, each switched to after a write,
  // then checkpoints until the slot is invalidated (with spec.backup, once
  // the segments are archived: only then may the primary remove them).
  ASSERT_TRUE(c_.Sql(name_, PortOf(primary),
                     "CREATE TABLE filler (n int); DO $$ BEGIN FOR i IN 1..10 LOOP "
                     "INSERT INTO filler SELECT generate_series(1, 1000); PERFORM pg_switch_wal(); END LOOP; END $$")
                  .ok());
  ASSERT_TRUE(Eventually([&] {
    c_.Sql(name_, PortOf(primary), "CHECKPOINT").ok();
    return One(primary, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '" + slot + "'") == "lost";
  }, 60s)) << One(primary, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = '" + slot + "'");

  // Status says so while the standby is away: in its message and Degraded.
  api::PostgresReplicaSet seen;
  const std::string how = backup ? "it catches up from the archive" : "it catches up by being cloned again";
  EXPECT_TRUE(Eventually([&] {
    seen = c_.Get(name_);
    const api::InstanceStatus* s = Find(seen, standby);
    const api::Condition* degraded = api::FindCondition(seen.status, "Degraded");
    return s != nullptr && s->message.find("replication slot " + slot + " lost WAL") != std::string::npos &&
           s->message.find(how) != std::string::npos &&
           degraded != nullptr && degraded->status == "True" &&
           degraded->message.find("maxSlotWalKeepSize (64MB)") != std::string::npos;
  }, 20s)) << api::EncodeYaml(seen);
  EXPECT_EQ(seen.status.phase, "Degraded");

  // Back: its upstream no longer has the WAL it needs, so it reads it from
  // the archive, or is cloned again; then it streams through a slot made
  // afresh.
  ASSERT_EQ(::kill(agent, SIGCONT), 0);
  thaw.pid = 0;
  EXPECT_TRUE(Eventually([&] {
    seen = c_.Get(name_);
    const api::InstanceStatus* s = Find(seen, standby);
    return s != nullptr && s->state == "Streaming" && seen.status.phase == "Healthy";
  }, 60s)) << api::EncodeYaml(seen) << "\n" << Tail(standby, "agent.log") << "\n" << Tail(standby, "postgres.log");
  const bool recloned = Tail(standby, "agent.log").find("re-cloning standby") != std::string::npos;
  EXPECT_EQ(recloned, !backup) << Tail(standby, "agent.log");
  if (backup) {
    EXPECT_NE(Tail(standby, "postgres.log").find("restored log file"), std::string::npos) << Tail(standby, "postgres.log");
  }
  const std::string slotState =
      One(primary, "SELECT active::text || ' ' || wal_status FROM pg_replication_slots WHERE slot_name = '" + slot + "'");
  EXPECT_TRUE(slotState == "true reserved" || slotState == "true extended") << slotState;
  EXPECT_EQ(One(standby, "SELECT count(*) FROM filler"), "10000");
  EXPECT_EQ(One(standby, "SHOW data_checksums"), "on");
  EXPECT_EQ(api::FindCondition(c_.Get(name_).status, "Degraded")->status, "False");

  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started);
  std::printf("wal bounds scenario (%s) took %llds\n", backup ? "archive" : "re-clone",
              static_cast<long long>(seconds.count()));
}

TEST_F(WalBounds, StandbyWhoseSlotLostItsWalIsReportedClonedAgainAndStreams) {
  LoseTheStandbysSlotAndBringItBack(false);
}

TEST_F(WalBounds, WithAnArchiveTheStandbyWhoseSlotLostItsWalCatchesUpFromItWithoutAClone) {
  LoseTheStandbysSlotAndBringItBack(true);
}

// Off, initdb runs without --data-checksums. Turned on later, nothing on
// disk changes: a standby added then is a clone of the primary and matches
// it, not the field.
TEST_F(WalBounds, DataChecksumsOffMakesAPrimaryWithoutAndTurningThemOnLaterChangesNoDataDirectory) {
  base_ = FreePortRange(2);
  ASSERT_GT(base_, 0);
  c_.StartRun();
  auto applied = c_.ApplyText(Manifest(name_, 1, base_, "  postgres:\n    dataChecksums: false\n"));
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_TRUE(c_.WaitReady(name_));
  const std::string primary = c_.Get(name_).status.currentPrimary;
  EXPECT_EQ(One(primary, "SHOW data_checksums"), "off");

  applied = c_.ApplyText(Manifest(name_, 2, base_, "  postgres:\n    dataChecksums: true\n"));
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  api::PostgresReplicaSet seen;
  ASSERT_TRUE(Eventually([&] {
    seen = c_.Get(name_);
    return seen.status.readyInstances == 2 && seen.status.phase == "Healthy";
  }, 120s)) << api::EncodeYaml(seen);
  EXPECT_EQ(seen.status.currentPrimary, primary);
  for (const auto& instance : {api::InstanceName(name_, 1), api::InstanceName(name_, 2)}) {
    EXPECT_EQ(One(instance, "SHOW data_checksums"), "off") << instance;
  }
}

}  // namespace
}  // namespace pgrs::e2e
