// status.backup and BackupsHealthy, one row per situation.
#include "reconcilers/backup.h"

#include <gtest/gtest.h>

namespace pgrs::reconcilers {
namespace {

// 2026-12-03T10:00:00Z and on, in the units each source reports.
constexpr int64_t kT0 = 1796292000;

agent::BackupInfo Full(const std::string& label, int64_t start) {
  return {label, "full", start, start + 4, "0/2000028", "0/2000100", 22992541, 3043463};
}

ObservedInstance Primary() {
  ObservedInstance p;
  p.name = "bk-1";
  p.agentReachable = true;
  p.archiver.observed = true;
  p.archiver.archivedCount = 3;
  p.archiver.lastArchivedWal = "000000010000000000000004";
  p.archiver.lastArchivedTimeMs = (kT0 + 60) * 1000;
  p.repository.checkedMs = (kT0 + 70) * 1000;
  p.repository.backups = {Full("20261203-100000F", kT0)};
  return p;
}

api::PostgresReplicaSet Set() {
  api::PostgresReplicaSet set;
  set.metadata.name = "bk";
  set.metadata.generation = 3;
  set.spec.backup = api::BackupSpec{};
  set.spec.backup->repository.path = "/var/lib/pgrs-backups";
  return set;
}

struct Row {
  std::string name;
  std::function<void(api::PostgresReplicaSet&, ObservedInstance&)> change;
  bool noPrimary = false;
  std::string status, reason, messagePart;
};

TEST(DescribeBackups, BackupsHealthyFollowsTheRepositoryAndTheArchiver) {
  const std::vector<Row> rows = {
      {"BackupAndArchiving", [](auto&, auto&) {}, false, "True", "BackupsAvailable",
       "1 backup, newest 20261203-100000F (full) finished at 2026-12-03T10:00:04Z; WAL archived up to "
       "000000010000000000000004 at 2026-12-03T10:01:00Z"},
      {"LastArchiveAttemptFailed",
       [](auto&, ObservedInstance& p) {
         p.archiver.failedCount = 2;
         p.archiver.lastFailedWal = "000000010000000000000005";
         p.archiver.lastFailedTimeMs = (kT0 + 90) * 1000;
       },
       false, "False", "ArchivingFailing",
       "archiving WAL fails: 000000010000000000000005 failed at 2026-12-03T10:01:30Z (2 failures)"},
      {"FailureBeforeTheLastSuccessIsOver",
       [](auto&, ObservedInstance& p) {
         p.archiver.failedCount = 2;
         p.archiver.lastFailedWal = "000000010000000000000003";
         p.archiver.lastFailedTimeMs = (kT0 + 30) * 1000;
       },
       false, "True", "BackupsAvailable", ""},
      {"NoBackupYet", [](auto&, ObservedInstance& p) { p.repository.backups.clear(); }, false, "False", "NoBackup",
       "the repository has no backup yet"},
      {"RepositoryUnreadable",
       [](auto&, ObservedInstance& p) { p.repository.error = "pgbackrest info exited with 41: permission denied"; },
       false, "False", "RepositoryUnavailable", "permission denied"},
      {"RepositoryNotReadYet", [](auto&, ObservedInstance& p) { p.repository = {}; }, false, "Unknown", "Pending", ""},
      {"NewPrimaryHasArchivedNothingYetKeepsThePreviousSegment",
       [](api::PostgresReplicaSet& set, ObservedInstance& p) {
         set.status.backup = api::BackupStatus{};
         set.status.backup->lastArchivedWal = "000000010000000000000003";
         set.status.backup->lastArchivedTime = "2026-12-03T10:00:50Z";
         p.archiver = {true, 0, "", 0, 0, "", 0};
       },
       false, "True", "BackupsAvailable", "WAL archived up to 000000010000000000000003 at 2026-12-03T10:00:50Z"},
      {"NoPrimaryKeepsWhatWasSeen",
       [](api::PostgresReplicaSet& set, auto&) {
         api::BackupStatus before;
         before.backups = {{"20261203-090000F", "full", "2026-12-03T09:00:00Z", "2026-12-03T09:00:04Z", "0/1", "0/2",
                            1, 1}};
         before.repositoryCheckedTime = "2026-12-03T09:00:10Z";
         set.status.backup = before;
       },
       true, "True", "BackupsAvailable", "newest 20261203-090000F"},
      {"ScheduledBackupFailed",
       [](api::PostgresReplicaSet& set, auto&) {
         set.status.backup = api::BackupStatus{};
         set.status.backup->lastScheduledBackup = api::ScheduledBackupRun{
             "incr", "2026-12-03T10:01:00Z", "2026-12-03T10:01:00Z", "2026-12-03T10:01:02Z", "Failed", "",
             "pgbackrest backup failed (exit code 56): no prior backup exists"};
       },
       false, "False", "ScheduledBackupFailed",
       "; the scheduled incr backup of 2026-12-03T10:01:00Z failed: pgbackrest backup failed (exit code 56)"},
      {"ScheduledBackupFailedWhileArchivingFailsKeepsTheWorseReason",
       [](api::PostgresReplicaSet& set, ObservedInstance& p) {
         p.archiver.failedCount = 1;
         p.archiver.lastFailedWal = "000000010000000000000005";
         p.archiver.lastFailedTimeMs = (kT0 + 90) * 1000;
         set.status.backup = api::BackupStatus{};
         set.status.backup->lastScheduledBackup =
             api::ScheduledBackupRun{"full", "2026-12-03T10:01:00Z", "", "", "Failed", "", "no settled primary"};
       },
       false, "False", "ArchivingFailing", "the scheduled full backup of 2026-12-03T10:01:00Z failed: no settled primary"},
      {"ScheduledBackupSucceeded",
       [](api::PostgresReplicaSet& set, auto&) {
         set.status.backup = api::BackupStatus{};
         set.status.backup->lastScheduledBackup = api::ScheduledBackupRun{
             "full", "2026-12-03T10:01:00Z", "", "", "Succeeded", "20261203-100100F", ""};
       },
       false, "True", "BackupsAvailable", "1 backup, newest 20261203-100000F"},
  };
  for (const Row& row : rows) {
    api::PostgresReplicaSet set = Set();
    ObservedInstance primary = Primary();
    row.change(set, primary);
    auto report = DescribeBackups(set, row.noPrimary ? nullptr : &primary);
    ASSERT_TRUE(report) << row.name;
    EXPECT_EQ(report->condition.type, "BackupsHealthy") << row.name;
    EXPECT_EQ(report->condition.status, row.status) << row.name << ": " << report->condition.message;
    EXPECT_EQ(report->condition.reason, row.reason) << row.name;
    EXPECT_NE(report->condition.message.find(row.messagePart), std::string::npos)
        << row.name << ": " << report->condition.message;
    EXPECT_EQ(report->condition.observedGeneration, 3) << row.name;
  }
}

TEST(DescribeBackups, StatusListsBackupsAndTheRecoverableWindow) {
  api::PostgresReplicaSet set = Set();
  ObservedInstance primary = Primary();
  primary.repository.backups.push_back(
      {"20261203-100000F_20261203-100030I", "incr", kT0 + 30, kT0 + 32, "0/3000028", "0/4000050", 22992541, 430});
  auto report = DescribeBackups(set, &primary);
  ASSERT_TRUE(report);
  const api::BackupStatus& s = report->status;
  ASSERT_EQ(s.backups.size(), 2u);
  EXPECT_EQ(s.backups[0], (api::BackupRecord{"20261203-100000F", "full", "2026-12-03T10:00:00Z",
                                             "2026-12-03T10:00:04Z", "0/2000028", "0/2000100", 22992541, 3043463}));
  EXPECT_EQ(s.backups[1].type, "incr");
  EXPECT_EQ(s.backups[1].repositorySize, 430);
  EXPECT_EQ(s.firstRecoverableTime, "2026-12-03T10:00:04Z");
  // The newest archived WAL is later than the newest backup's end.
  EXPECT_EQ(s.lastRecoverableTime, "2026-12-03T10:01:00Z");
  EXPECT_EQ(s.lastArchivedWal, "000000010000000000000004");
  EXPECT_EQ(s.repositoryCheckedTime, "2026-12-03T10:01:10Z");
  EXPECT_FALSE(s.archivingFailing);

  // Nothing archived since the newest backup: its end is the last point.
  primary.archiver.lastArchivedTimeMs = kT0 * 1000;
  EXPECT_EQ(DescribeBackups(set, &primary)->status.lastRecoverableTime, "2026-12-03T10:00:32Z");
}

TEST(DescribeBackups, NothingWithoutSpecBackup) {
  api::PostgresReplicaSet set = Set();
  set.spec.backup.reset();
  ObservedInstance primary = Primary();
  EXPECT_FALSE(DescribeBackups(set, &primary));
}

}  // namespace
}  // namespace pgrs::reconcilers

namespace pgrs::reconcilers {
namespace {

api::InstanceStatus Instance(const std::string& name, const std::string& role, const std::string& state,
                             std::optional<int64_t> lag, const std::string& host = "127.0.0.1") {
  api::InstanceStatus s;
  s.name = name;
  s.role = role;
  s.state = state;
  s.host = host;
  s.lagBytes = lag;
  return s;
}

TEST(ChooseBackupSource, StreamingStandbyWithTheLeastLagElseThePrimary) {
  struct SourceRow {
    std::string name;
    std::vector<api::InstanceStatus> standbys;
    std::optional<bool> fromStandby;
    std::string standby, whyPart;
    bool otherHosts = false;
  };
  const std::vector<SourceRow> rows = {
      {"LeastLag", {Instance("bk-2", "standby", "Streaming", 800), Instance("bk-3", "standby", "Streaming", 100)},
       std::nullopt, "bk-3", "100 bytes behind"},
      {"TieByName", {Instance("bk-3", "standby", "Streaming", 0), Instance("bk-2", "standby", "Streaming", 0)},
       true, "bk-2", "streaming"},
      {"ConnectingStandbyIsNotUsed", {Instance("bk-2", "standby", "Connecting", 0)}, true, "", "no standby streams"},
      {"NoStandby", {}, true, "", "no standby streams"},
      {"FromStandbyOff", {Instance("bk-2", "standby", "Streaming", 0)}, false, "",
       "spec.backup.fromStandby is false"},
      {"OtherHostNotReached", {Instance("bk-2", "standby", "Streaming", 0, "10.0.0.2")}, true, "",
       "no standby streams"},
      {"OtherHostThroughTlsServer", {Instance("bk-2", "standby", "Streaming", 0, "10.0.0.2")}, true, "bk-2",
       "streaming", true},
  };
  for (const SourceRow& row : rows) {
    api::PostgresReplicaSet set;
    set.metadata.name = "bk";
    set.spec.backup = api::BackupSpec{};
    set.spec.backup->fromStandby = row.fromStandby;
    set.status.currentPrimary = "bk-1";
    set.status.instances = row.standbys;
    set.status.instances.push_back(Instance("bk-1", "primary", "Running", std::nullopt));
    BackupSource source = ChooseBackupSource(set, row.otherHosts);
    EXPECT_EQ(source.primary, "bk-1") << row.name;
    EXPECT_EQ(source.standby, row.standby) << row.name;
    EXPECT_NE(source.why.find(row.whyPart), std::string::npos) << row.name << ": " << source.why;
  }
}

}  // namespace
}  // namespace pgrs::reconcilers
