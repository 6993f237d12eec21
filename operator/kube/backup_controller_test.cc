#include "operator/kube/backup_controller.h"

#include <gtest/gtest.h>

namespace pgrs::kube {
namespace {

BackupFacts Ready() {
  BackupFacts f;
  f.name = "nightly";
  f.replicaSet = "shop";
  f.type = "full";
  f.setFound = true;
  f.setHasBackup = true;
  f.primary = "shop-1";
  f.primarySettled = true;
  return f;
}

agent::BackupJob Job(const std::string& id, const std::string& state) {
  agent::BackupJob j;
  j.id = id;
  j.state = state;
  j.progress = "backing up";
  j.error = "pgbackrest failed";
  return j;
}

TEST(DecideBackupTest, Table) {
  struct Row {
    const char* name;
    BackupFacts facts;
    BackupStep step;
    std::string message;
  };
  std::vector<Row> rows;
  rows.push_back({"New", Ready(), BackupStep::kStart, ""});
  {
    BackupFacts f = Ready();
    f.phase = kBackupCompletedPhase;
    rows.push_back({"Completed", f, BackupStep::kNothing, ""});
    f.phase = kBackupFailedPhase;
    rows.push_back({"Failed", f, BackupStep::kNothing, ""});
  }
  {
    BackupFacts f = Ready();
    f.type = "weekly";
    rows.push_back({"BadType", f, BackupStep::kFail, "postgresbackup nightly: spec.type: \"weekly\" must be full, diff or incr"});
  }
  {
    BackupFacts f = Ready();
    f.replicaSet = "";
    rows.push_back({"NoSet", f, BackupStep::kFail, "postgresbackup nightly: spec.replicaSet: is required"});
  }
  {
    BackupFacts f = Ready();
    f.setFound = false;
    rows.push_back({"SetNotThereYet", f, BackupStep::kWait, "waiting for postgresreplicaset shop (not found)"});
  }
  {
    BackupFacts f = Ready();
    f.setHasBackup = false;
    rows.push_back({"SetWithoutBackup", f, BackupStep::kFail,
                    "postgresbackup nightly: spec.replicaSet: postgresreplicaset shop has no spec.backup (no "
                    "repository to back up to)"});
  }
  {
    BackupFacts f = Ready();
    f.primarySettled = false;
    rows.push_back({"FailoverInProgress", f, BackupStep::kWait,
                    "waiting for postgresreplicaset shop to have a settled primary"});
    f.job = Job("uid-1", agent::kBackupRunning);
    rows.push_back({"OursRunsThroughAFailover", f, BackupStep::kRunning, "backing up"});
  }
  {
    BackupFacts f = Ready();
    f.job = Job("uid-1", agent::kBackupCompleted);
    rows.push_back({"OursCompleted", f, BackupStep::kComplete, ""});
    f.job = Job("uid-1", agent::kBackupFailed);
    rows.push_back({"OursFailed", f, BackupStep::kFail, "pgbackrest failed"});
    f.job = Job("uid-0", agent::kBackupRunning);
    rows.push_back({"AnotherRuns", f, BackupStep::kWait, "waiting for another backup to finish on shop-1"});
    f.job = Job("uid-0", agent::kBackupCompleted);
    rows.push_back({"AnotherFinished", f, BackupStep::kStart, ""});
  }
  for (const Row& row : rows) {
    BackupDecision d = DecideBackup(row.facts, "uid-1");
    EXPECT_EQ(d.step, row.step) << row.name;
    EXPECT_EQ(d.message, row.message) << row.name;
  }
}

TEST(ScheduledBackupNameTest, SetTypeAndTheCronTime) {
  EXPECT_EQ(ScheduledBackupName("shop", "full", "2026-12-03T02:00:00Z"), "shop-full-20261203020000");
  EXPECT_EQ(ScheduledBackupName("shop", "incr", "2026-12-03T02:15:00.000Z"), "shop-incr-20261203021500");
}

}  // namespace
}  // namespace pgrs::kube
