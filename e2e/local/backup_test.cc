// Backups, first slice, end to end with real PostgreSQL 15 and pgBackRest: a
// local set with spec.backup.repository.path archives its WAL, `pgrs local
// backup` takes full, incremental and differential backups, and after a
// failover the new primary archives its new timeline.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>

#include "e2e/local/harness.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

using namespace std::chrono_literals;

struct Archiver {
  int64_t archived = -1;
  int64_t failed = -1;
  std::string lastArchivedWal;
  bool lastFailureBeforeLastSuccess = false;
};

class Backup : public ::testing::Test {
 protected:
  void Create(int instances, const std::string& repository) {
    base_ = FreePortRange(instances);
    ASSERT_GT(base_, 0);
    repository_ = repository;
    c_.StartRun();
    auto applied =
        c_.ApplyText(Manifest(name_, instances, base_, "  backup:\n    repository:\n      path: " + repository_ + "\n"));
    ASSERT_EQ(applied.exitCode, 0) << applied.output;
    ASSERT_TRUE(c_.WaitReady(name_));
  }

  std::string Primary() { return c_.Get(name_).status.currentPrimary; }
  int PortOf(const std::string& instance) { return base_ + api::InstanceIndex(name_, instance) - 1; }

  Archiver ArchiverOn(const std::string& instance) {
    Archiver a;
    auto rows = c_.Sql(name_, PortOf(instance),
                       "SELECT archived_count, failed_count, coalesce(last_archived_wal, ''), "
                       "coalesce(last_failed_time < last_archived_time, last_failed_time IS NULL) "
                       "FROM pg_stat_archiver");
    if (!rows.ok() || rows->empty()) return a;
    const auto& row = (*rows)[0];
    a.archived = std::stoll(row[0].value_or("-1"));
    a.failed = std::stoll(row[1].value_or("-1"));
    a.lastArchivedWal = row[2].value_or("");
    a.lastFailureBeforeLastSuccess = row[3] == std::optional<std::string>("t");
    return a;
  }

  // Writes a little, switches to a new segment and waits until the
  // primary's archiver has pushed it. Returns the archiver after.
  Archiver SwitchAndWaitArchived(const std::string& primary) {
    const Archiver before = ArchiverOn(primary);
    EXPECT_GE(before.archived, 0);
    EXPECT_TRUE(c_.Sql(name_, PortOf(primary),
                       "CREATE TABLE IF NOT EXISTS batch (n int); INSERT INTO batch SELECT generate_series(1, 1000)")
                    .ok());
    EXPECT_TRUE(c_.Sql(name_, PortOf(primary), "SELECT pg_switch_wal()").ok());
    Archiver after;
    EXPECT_TRUE(Eventually([&] {
      after = ArchiverOn(primary);
      return after.archived > before.archived && after.lastFailureBeforeLastSuccess;
    }, 60s)) << primary << " archived " << before.archived << " -> " << after.archived << ", failed " << after.failed
             << "\n" << AgentLog(primary);
    return after;
  }

  std::string AgentLog(const std::string& instance) {
    auto log = ReadFile(c_.InstanceDir(name_, instance) + "/agent.log");
    return log.ok() ? log->substr(log->size() > 3000 ? log->size() - 3000 : 0) : "";
  }

  // `pgbackrest info --output=json` with the instance's configuration.
  std::string Info(const std::string& instance) {
    ProcessSpec spec;
    spec.argv = {"/usr/bin/pgbackrest", "--config=" + c_.InstanceDir(name_, instance) + "/pgbackrest/pgbackrest.conf",
                 "--stanza=" + name_, "--log-level-console=off", "--log-level-stderr=off", "info", "--output=json"};
    if (RunningAsRoot()) spec.runAs = *PostgresUser();
    auto result = RunCommand(spec, 60s);
    EXPECT_TRUE(result.ok() && result->ok()) << (result.ok() ? result->output : result.status().ToString());
    return result.ok() ? result->output : "";
  }

  // The last line `pgrs local backup` printed on stdout (its label).
  std::string TakeBackup(const std::string& type) {
    auto result = c_.Local("backup", {name_, "--type", type}, 300s);
    EXPECT_EQ(result.exitCode, 0) << result.output;
    std::istringstream lines(result.output);
    std::string line, last;
    while (std::getline(lines, line)) {
      if (!line.empty()) last = line;
    }
    return last;
  }

  LocalCluster c_;
  std::string name_ = "bk";
  int base_ = 0;
  std::string repository_;
};

TEST_F(Backup, ArchivesWalTakesBackupsAndArchivesTheNewTimelineAfterFailover) {
  Create(2, c_.stateDir() + "/backups");
  const std::string first = Primary();
  ASSERT_FALSE(first.empty());
  // Archiving works: a switched segment reaches the repository.
  Archiver archived = SwitchAndWaitArchived(first);
  EXPECT_EQ(archived.lastArchivedWal.substr(0, 8), "00000001");
  EXPECT_TRUE(PathExists(repository_ + "/archive/" + name_ + "/archive.info"));

  // A full backup, then an incremental one on top of it.
  const std::string full = TakeBackup("full");
  EXPECT_EQ(full.size(), 16u) << full;  // YYYYMMDD-HHMMSSF
  EXPECT_EQ(full.back(), 'F') << full;
  SwitchAndWaitArchived(first);
  const std::string incr = TakeBackup("incr");
  EXPECT_EQ(incr.rfind(full + "_", 0), 0u) << incr;
  EXPECT_EQ(incr.back(), 'I') << incr;
  const std::string diff = TakeBackup("diff");
  EXPECT_EQ(diff.rfind(full + "_", 0), 0u) << diff;
  EXPECT_EQ(diff.back(), 'D') << diff;
  const std::string info = Info(first);
  EXPECT_NE(info.find("\"label\":\"" + full + "\""), std::string::npos) << info;
  EXPECT_NE(info.find("\"label\":\"" + incr + "\""), std::string::npos) << info;
  EXPECT_NE(info.find("\"label\":\"" + diff + "\""), std::string::npos) << info;
  EXPECT_NE(info.find("\"type\":\"full\""), std::string::npos) << info;

  // Bad input: an unknown type is refused before anything runs.
  auto bad = c_.Local("backup", {name_, "--type", "weekly"}, 30s);
  EXPECT_EQ(bad.exitCode, 2) << bad.output;
  // A set without spec.backup has nothing to back up to (checked from the
  // stored spec, before it even runs).
  auto plain = c_.ApplyText(Manifest("plain", 1, FreePortRange(1)));
  ASSERT_EQ(plain.exitCode, 0) << plain.output;
  auto refused = c_.Local("backup", {"plain"}, 30s);
  EXPECT_EQ(refused.exitCode, 1) << refused.output;
  EXPECT_NE(refused.output.find("postgresreplicaset plain: spec.backup.repository.path"), std::string::npos)
      << refused.output;
  ASSERT_EQ(c_.Local("delete", {"plain"}, 60s).exitCode, 0);

  // Failover: the new primary archives timeline 2, its history file first.
  ASSERT_EQ(::kill(c_.PostmasterPid(name_, first), SIGKILL), 0);
  std::string next;
  ASSERT_TRUE(Eventually([&] {
    auto set = c_.Get(name_);
    next = set.status.currentPrimary;
    return next != first && !next.empty() && set.status.promotionReason.empty();
  }, 60s));
  const std::string timelineDir = repository_ + "/archive/" + name_ + "/15-1";
  EXPECT_TRUE(Eventually([&] { return PathExists(timelineDir + "/00000002.history"); }, 60s))
      << "no 00000002.history in " << timelineDir << "\n" << AgentLog(next);
  Archiver onNew = SwitchAndWaitArchived(next);
  EXPECT_EQ(onNew.lastArchivedWal.substr(0, 8), "00000002") << onNew.lastArchivedWal;
  // And a backup of the new timeline works from the new primary.
  const std::string after = TakeBackup("full");
  EXPECT_EQ(after.back(), 'F') << after;
  EXPECT_NE(after, full);
}

// A repository PostgreSQL's user cannot reach: the primary keeps serving
// writes, and the failure is in its status and in pg_stat_archiver.
TEST_F(Backup, UnreachableRepositoryIsReportedAndThePrimaryKeepsServing) {
  const std::string locked = c_.stateDir() + "/locked";
  ASSERT_TRUE(MakeDirs(locked, 0700).ok());  // ours (root's), closed to postgres
  Create(1, locked + "/repo");
  const std::string primary = Primary();
  std::string message;
  EXPECT_TRUE(Eventually([&] {
    for (const auto& inst : c_.Get(name_).status.instances) {
      if (inst.name == primary) message = inst.message;
    }
    return message.find("pgbackrest stanza-create") != std::string::npos;
  }, 60s)) << "message: " << message << "\n" << AgentLog(primary);
  EXPECT_TRUE(c_.Sql(name_, PortOf(primary), "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)").ok());
  EXPECT_TRUE(c_.Sql(name_, PortOf(primary), "SELECT pg_switch_wal()").ok());
  EXPECT_TRUE(Eventually([&] { return ArchiverOn(primary).failed > 0; }, 60s));
  auto rows = c_.Sql(name_, PortOf(primary), "SELECT count(*) FROM kept");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0][0], std::optional<std::string>("1"));
  auto backup = c_.Local("backup", {name_}, 120s);
  EXPECT_EQ(backup.exitCode, 1) << backup.output;
  EXPECT_NE(backup.output.find("error: postgresreplicaset " + name_ + ": pgbackrest backup failed"), std::string::npos)
      << backup.output;
}

}  // namespace
}  // namespace pgrs::e2e
