// Backups end to end with real PostgreSQL 15 and pgBackRest: a local set
// with spec.backup.repository.path archives its WAL, `pgrs local backup`
// takes full, incremental and differential backups from the streaming
// standby, status.backup lists them with BackupsHealthy, after a failover
// the new primary archives its new timeline, and retention keeps two fulls.
// The primary's agent takes a backup over its API (POST /backup, what the
// Kubernetes PostgresBackup controller asks).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <sstream>

#include "e2e/local/harness.h"
#include "operator/agent/protocol.h"
#include "operator/util/files.h"
#include "operator/util/http.h"

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
  void Create(int instances, const std::string& repository, const std::string& extraBackupSpec = "") {
    base_ = FreePortRange(instances);
    ASSERT_GT(base_, 0);
    repository_ = repository;
    c_.StartRun();
    auto applied = c_.ApplyText(Manifest(
        name_, instances, base_, "  backup:\n    repository:\n      path: " + repository_ + "\n" + extraBackupSpec));
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

  // The last line `pgrs local backup` printed on stdout (its label);
  // `output` gets all it printed.
  std::string TakeBackup(const std::string& type, std::string* output = nullptr) {
    auto result = c_.Local("backup", {name_, "--type", type}, 300s);
    EXPECT_EQ(result.exitCode, 0) << result.output;
    if (output != nullptr) *output = result.output;
    std::istringstream lines(result.output);
    std::string line, last;
    while (std::getline(lines, line)) {
      if (!line.empty()) last = line;
    }
    return last;
  }

  // What pgBackRest recorded of how the backup was taken.
  std::string BackupManifest(const std::string& label) {
    auto text = ReadFile(repository_ + "/backup/" + name_ + "/" + label + "/backup.manifest");
    EXPECT_TRUE(text.ok()) << label << ": " << text.status().ToString();
    return text.ok() ? *text : "";
  }

  // Waits until status.backup lists exactly `labels` (oldest first) and
  // BackupsHealthy is `healthy`; returns the last status seen.
  api::ReplicaSetStatus WaitForBackupStatus(const std::vector<std::string>& labels, const std::string& healthy) {
    api::ReplicaSetStatus status;
    EXPECT_TRUE(Eventually([&] {
      status = c_.Get(name_).status;
      const api::Condition* condition = api::FindCondition(status, "BackupsHealthy");
      if (!status.backup || condition == nullptr || condition->status != healthy) return false;
      std::vector<std::string> seen;
      for (const auto& b : status.backup->backups) seen.push_back(b.label);
      return seen == labels;
    }, 90s)) << api::EncodeYaml(c_.Get(name_));
    return status;
  }

  LocalCluster c_;
  std::string name_ = "bk";
  int base_ = 0;
  std::string repository_;
};

TEST_F(Backup, ArchivesWalTakesBackupsFromTheStandbyReportsThemAndKeepsTwoFulls) {
  Create(2, c_.stateDir() + "/backups", "    retention:\n      full: 2\n");
  const std::string first = Primary();
  ASSERT_FALSE(first.empty());
  // Archiving works: a switched segment reaches the repository.
  Archiver archived = SwitchAndWaitArchived(first);
  EXPECT_EQ(archived.lastArchivedWal.substr(0, 8), "00000001");
  EXPECT_TRUE(PathExists(repository_ + "/archive/" + name_ + "/archive.info"));

  // A full backup, from the standby (fromStandby defaults to true), then an
  // incremental one on top of it.
  std::string standby;
  ASSERT_TRUE(Eventually([&] {
    for (const auto& inst : c_.Get(name_).status.instances) {
      if (inst.role == "standby" && inst.state == "Streaming") standby = inst.name;
    }
    return !standby.empty();
  }, 60s));
  std::string output;
  const std::string full = TakeBackup("full", &output);
  EXPECT_EQ(full.size(), 16u) << full;  // YYYYMMDD-HHMMSSF
  EXPECT_EQ(full.back(), 'F') << full;
  EXPECT_NE(output.find("from standby " + standby), std::string::npos) << output;
  // pgBackRest copied the files from the standby (pg2) and started and
  // stopped the backup on the primary.
  const std::string manifest = BackupManifest(full);
  EXPECT_NE(manifest.find("option-backup-standby=true"), std::string::npos) << manifest.substr(0, 3000);
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

  // status.backup lists them, oldest first, with their LSNs and sizes, and
  // the set's backups are healthy.
  api::ReplicaSetStatus status = WaitForBackupStatus({full, incr, diff}, "True");
  ASSERT_TRUE(status.backup);
  const api::BackupRecord& oldest = status.backup->backups.front();
  EXPECT_EQ(oldest.type, "full");
  EXPECT_FALSE(oldest.startLsn.empty());
  EXPECT_TRUE(api::ParseTime(oldest.stopTime).has_value()) << oldest.stopTime;
  EXPECT_GT(oldest.databaseSize, 1000000);
  EXPECT_GT(oldest.repositorySize, 0);
  EXPECT_EQ(status.backup->backups[1].type, "incr");
  EXPECT_EQ(status.backup->firstRecoverableTime, oldest.stopTime);
  EXPECT_FALSE(status.backup->lastArchivedWal.empty());
  EXPECT_FALSE(status.backup->archivingFailing);
  // `pgrs local get` shows the last backup and the archive's lag.
  auto table = c_.Local("get", {name_}, 30s);
  EXPECT_NE(table.output.find("backups: 3, last " + diff + " (diff) finished "), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("archive: last " + status.backup->lastArchivedWal), std::string::npos) << table.output;
  EXPECT_NE(table.output.find("BackupsHealthy=True (BackupsAvailable)"), std::string::npos) << table.output;

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
  // And a backup of the new timeline works (from the old primary once it
  // streams again, else from the new primary).
  const std::string after = TakeBackup("full");
  EXPECT_EQ(after.back(), 'F') << after;
  EXPECT_NE(after, full);

  // Retention (full: 2): a third full expires the first, and the backups
  // that depend on it.
  const std::string third = TakeBackup("full");
  EXPECT_EQ(third.back(), 'F') << third;
  const std::string kept = Info(next);
  EXPECT_EQ(kept.find("\"label\":\"" + full + "\""), std::string::npos) << kept;
  EXPECT_EQ(kept.find("\"label\":\"" + incr + "\""), std::string::npos) << kept;
  EXPECT_NE(kept.find("\"label\":\"" + after + "\""), std::string::npos) << kept;
  EXPECT_NE(kept.find("\"label\":\"" + third + "\""), std::string::npos) << kept;
  WaitForBackupStatus({after, third}, "True");
}

// A repository PostgreSQL's user cannot reach: the primary keeps serving
// writes, and the failure is in its status, in pg_stat_archiver and in
// BackupsHealthy (ArchivingFailing); once it can be reached, archiving
// resumes on its own.
TEST_F(Backup, UnreachableRepositoryIsReportedThePrimaryKeepsServingAndArchivingResumesOnceReachable) {
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
  // BackupsHealthy says so, with the segment that fails.
  std::string condition;
  EXPECT_TRUE(Eventually([&] {
    auto set = c_.Get(name_);
    const api::Condition* healthy = api::FindCondition(set.status, "BackupsHealthy");
    condition = healthy ? healthy->status + " " + healthy->reason + ": " + healthy->message : "";
    return healthy != nullptr && healthy->status == "False" && healthy->reason == "ArchivingFailing" &&
           set.status.backup && set.status.backup->archivingFailing && !set.status.backup->lastFailedWal.empty();
  }, 60s)) << condition;
  auto table = c_.Local("get", {name_}, 30s);
  EXPECT_NE(table.output.find("archive: FAILING: "), std::string::npos) << table.output;
  auto rows = c_.Sql(name_, PortOf(primary), "SELECT count(*) FROM kept");
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ((*rows)[0][0], std::optional<std::string>("1"));
  auto backup = c_.Local("backup", {name_}, 120s);
  EXPECT_EQ(backup.exitCode, 1) << backup.output;
  EXPECT_NE(backup.output.find("error: postgresreplicaset " + name_ + ": pgbackrest backup failed"), std::string::npos)
      << backup.output;

  // The repository becomes reachable: the stanza is created on the agent's
  // next try, archiving resumes with the next segment, and BackupsHealthy
  // goes from ArchivingFailing to NoBackup, then True after a backup (from
  // the primary: there is no standby).
  ASSERT_EQ(::chmod(locked.c_str(), 0755), 0);
  EXPECT_TRUE(Eventually([&] { return PathExists(repository_ + "/archive/" + name_ + "/archive.info"); }, 60s))
      << AgentLog(primary);
  SwitchAndWaitArchived(primary);
  std::string reason;
  EXPECT_TRUE(Eventually([&] {
    const api::Condition* healthy = api::FindCondition(c_.Get(name_).status, "BackupsHealthy");
    reason = healthy ? healthy->reason + ": " + healthy->message : "";
    return healthy != nullptr && healthy->reason == "NoBackup";
  }, 60s)) << reason;
  std::string output;
  const std::string label = TakeBackup("full", &output);
  EXPECT_NE(output.find("from primary " + primary + " (full; no standby streams)"), std::string::npos) << output;
  api::ReplicaSetStatus status = WaitForBackupStatus({label}, "True");
  ASSERT_TRUE(status.backup);
  EXPECT_FALSE(status.backup->archivingFailing);
  EXPECT_GT(status.backup->archiveFailedCount, 0);  // the failures before stay counted
}

// spec.backup.schedule: `pgrs local run` takes the backup by itself at the
// next minute boundary (at most ~60 s away; real time, nothing faked), and
// status.backup shows it. pgBackRest turns the first incremental into a
// full: there is no full to build on yet.
TEST_F(Backup, ScheduledIncrementalRunsWithoutTheCliAndShowsInStatus) {
  const auto created = std::chrono::system_clock::now();
  Create(1, c_.stateDir() + "/backups", "    schedule:\n      incremental: \"* * * * *\"\n");
  api::ReplicaSetStatus status;
  EXPECT_TRUE(Eventually([&] {
    status = c_.Get(name_).status;
    const auto& run = status.backup ? status.backup->lastScheduledBackup : std::nullopt;
    if (!run || run->outcome != "Succeeded") return false;
    for (const auto& b : status.backup->backups) {
      if (b.label == run->label) return true;
    }
    return false;
  }, 150s)) << api::EncodeYaml(c_.Get(name_)) << "\n" << AgentLog(Primary());
  ASSERT_TRUE(status.backup && status.backup->lastScheduledBackup);
  const api::ScheduledBackupRun& run = *status.backup->lastScheduledBackup;
  EXPECT_EQ(run.type, "incr");
  EXPECT_EQ(run.message, "");
  // It ran for a whole minute after the set was created, and not before it.
  auto scheduled = api::ParseTime(run.scheduledTime);
  ASSERT_TRUE(scheduled) << run.scheduledTime;
  EXPECT_EQ(run.scheduledTime.substr(run.scheduledTime.size() - 4), ":00Z");
  EXPECT_GT(*scheduled, created - 1s);
  EXPECT_LE(run.scheduledTime, run.startTime);
  EXPECT_EQ(status.backup->lastScheduled.incremental, run.scheduledTime);
  EXPECT_EQ(status.backup->lastScheduled.full, "");
  // The backup is in the repository, pgBackRest's own listing.
  EXPECT_NE(Info(Primary()).find(run.label), std::string::npos);
  const api::Condition* healthy = api::FindCondition(status, "BackupsHealthy");
  ASSERT_NE(healthy, nullptr);
  EXPECT_EQ(healthy->status, "True") << healthy->message;
}

// POST /backup to the primary's agent, as the Kubernetes PostgresBackup
// controller drives backups: 202 with a Running job, the same id again
// starts nothing, another id while it runs is 409, GET /backup follows it to
// Completed with the label pgBackRest lists; a standby's agent is 503. The
// job waits for the stanza's backup lock, which the test holds (flock, as
// pgBackRest takes it) so that the job is still running when asked again;
// `pgrs local run` stopping during a backup leaves no pgbackrest behind.
TEST_F(Backup, ThePrimarysAgentTakesABackupOverItsApiOnceByIdAndOneAtATime) {
  Create(2, c_.stateDir() + "/backups");
  const std::string primary = Primary();
  std::string standby;
  for (const auto& inst : c_.Get(name_).status.instances) {
    if (inst.name != primary) standby = inst.name;
  }
  ASSERT_FALSE(standby.empty());
  const LocalCluster::AgentApi onPrimary = c_.AgentEndpoint(name_, primary);
  const LocalCluster::AgentApi onStandby = c_.AgentEndpoint(name_, standby);
  ASSERT_FALSE(onPrimary.url.empty());
  ASSERT_FALSE(onStandby.url.empty());
  auto post = [](const LocalCluster::AgentApi& agent, const std::string& id, const std::string& type) {
    agent::BackupRequest request;
    request.id = id;
    request.type = type;
    auto r = agent.Call("POST", "/backup", agent::EncodeBackupRequest(request), agent.token);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{0, r.status().ToString()};
  };
  auto get = [](const LocalCluster::AgentApi& agent) {
    auto r = agent.Call("GET", "/backup", "", agent.token);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : HttpResponse{0, r.status().ToString()};
  };
  auto job = [](const HttpResponse& r) {
    auto decoded = agent::DecodeBackupJob(r.body);
    EXPECT_TRUE(decoded.ok()) << r.body;
    return decoded.ok() ? *decoded : agent::BackupJob{};
  };

  // A standby's agent cannot take one; it was asked for none.
  HttpResponse refused = post(onStandby, "s1", "full");
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_NE(refused.body.find("instance " + standby + " is not the primary"), std::string::npos) << refused.body;
  EXPECT_EQ(get(onStandby).status, 404);
  EXPECT_EQ(get(onPrimary).status, 404);
  // Without the token: 401, nothing started.
  auto anonymous = onPrimary.Call("POST", "/backup", R"({"id":"b1","type":"full"})", "");
  ASSERT_TRUE(anonymous.ok());
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_EQ(post(onPrimary, "b1", "weekly").status, 400);

  // The stanza exists (the primary's agent created it); then the test takes
  // the stanza's backup lock, as a concurrent pgBackRest command would.
  ASSERT_TRUE(Eventually([&] { return PathExists(repository_ + "/backup/" + name_ + "/backup.info"); }, 60s))
      << AgentLog(primary);
  ProcessSpec lock;
  // --no-fork: flock becomes the sleep holding the lock, which dies with it.
  lock.argv = {"/usr/bin/flock", "--no-fork",
               c_.InstanceDir(name_, primary) + "/pgbackrest/lock/" + name_ + "-backup.lock", "/bin/sleep", "300"};
  if (RunningAsRoot()) lock.runAs = *PostgresUser();
  auto locker = SpawnProcess(lock);
  ASSERT_TRUE(locker.ok()) << locker.status().ToString();
  struct StopLocker {
    pid_t pid;
    ~StopLocker() {
      if (pid > 0) StopChild(pid, SIGKILL, 5s);
    }
  } stopLocker{*locker};
  ASSERT_TRUE(Eventually([&] { return PathExists(lock.argv[2]); }, 10s));

  // Accepted (a 503 only while the agent has not yet seen its stanza).
  HttpResponse accepted;
  ASSERT_TRUE(Eventually([&] {
    accepted = post(onPrimary, "b1", "full");
    return accepted.status != 503;
  }, 30s)) << accepted.body;
  ASSERT_EQ(accepted.status, 202) << accepted.body;
  const agent::BackupJob started = job(accepted);
  EXPECT_EQ(started.id, "b1");
  EXPECT_EQ(started.type, "full");
  EXPECT_EQ(started.state, agent::kBackupRunning);
  EXPECT_EQ(started.progress, "backing up " + name_ + " from primary " + primary + " (full)");
  EXPECT_GT(started.startedMs, 0);
  // It waits for the lock, and says so.
  agent::BackupJob seen;
  EXPECT_TRUE(Eventually([&] {
    HttpResponse r = get(onPrimary);
    seen = job(r);
    return r.status == 200 && seen.progress.find("waiting for the stanza's backup lock") == 0;
  }, 30s)) << seen.progress << " " << seen.state << " " << seen.error;
  // The same id again: the same job, nothing new started.
  HttpResponse again = post(onPrimary, "b1", "full");
  EXPECT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(job(again).startedMs, started.startedMs);
  EXPECT_EQ(job(again).state, agent::kBackupRunning);
  // Another id while it runs: 409.
  HttpResponse conflict = post(onPrimary, "b2", "incr");
  EXPECT_EQ(conflict.status, 409) << conflict.body;
  EXPECT_NE(conflict.body.find("backup b1 is running on " + primary), std::string::npos) << conflict.body;

  // The lock goes: the backup runs to its end.
  StopChild(stopLocker.pid, SIGKILL, 5s);
  stopLocker.pid = 0;
  agent::BackupJob done;
  EXPECT_TRUE(Eventually([&] {
    done = job(get(onPrimary));
    return done.state != agent::kBackupRunning;
  }, 180s)) << done.progress << "\n" << AgentLog(primary);
  ASSERT_EQ(done.state, agent::kBackupCompleted) << done.error << "\n" << AgentLog(primary);
  EXPECT_EQ(done.id, "b1");
  EXPECT_EQ(done.label.size(), 16u) << done.label;  // YYYYMMDD-HHMMSSF
  EXPECT_EQ(done.label.back(), 'F') << done.label;
  EXPECT_GE(done.finishedMs, done.startedMs);
  ASSERT_TRUE(done.backup.has_value());
  EXPECT_EQ(done.backup->label, done.label);
  EXPECT_EQ(done.backup->type, "full");
  EXPECT_FALSE(done.backup->stopLsn.empty());
  // pgBackRest lists exactly that backup; status.backup too.
  const std::string info = Info(primary);
  EXPECT_NE(info.find("\"label\":\"" + done.label + "\""), std::string::npos) << info;
  EXPECT_EQ(info.find("\"label\":", info.find("\"label\":") + 1), std::string::npos) << "one backup only: " << info;
  WaitForBackupStatus({done.label}, "True");
  // Taken on the primary (pg1), not from the standby.
  EXPECT_EQ(BackupManifest(done.label).find("option-backup-standby=true"), std::string::npos);
  EXPECT_NE(AgentLog(primary).find("backup completed instance=" + primary + " id=b1 type=full label=" + done.label),
            std::string::npos);

  // Asked again once finished: the finished job, still one backup.
  HttpResponse after = post(onPrimary, "b1", "full");
  EXPECT_EQ(after.status, 202) << after.body;
  EXPECT_EQ(job(after), done);
  const std::string infoAfter = Info(primary);
  EXPECT_EQ(infoAfter.find("\"label\":", infoAfter.find("\"label\":") + 1), std::string::npos) << infoAfter;

  // A backup running while `pgrs local run` stops: the agent kills its
  // pgbackrest instead of waiting for it (the test freezes pgbackrest with
  // SIGSTOP, so it cannot finish first), and none is left behind.
  HttpResponse running = post(onPrimary, "b3", "full");
  EXPECT_EQ(running.status, 202) << running.body;
  const std::string backupArgs = std::string("backup") + '\0' + "--type=full" + '\0';
  pid_t pgbackrest = 0;
  ASSERT_TRUE(Eventually([&] {
    for (pid_t pid : c_.ProcessesUsingStateDir()) {
      auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
      if (cmdline.ok() && cmdline->find(backupArgs) != std::string::npos) pgbackrest = pid;
    }
    return pgbackrest > 0;
  }, 30s));
  ASSERT_EQ(::kill(pgbackrest, SIGSTOP), 0);
  const auto stopping = std::chrono::steady_clock::now();
  EXPECT_EQ(c_.StopRun(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 60s);
  const std::string log = AgentLog(primary);
  EXPECT_NE(log.find("backup failed instance=" + primary + " id=b3 type=full"), std::string::npos) << log;
  EXPECT_NE(log.find("cancelled"), std::string::npos) << log;
  EXPECT_TRUE(Eventually([&] { return c_.ProcessesUsingStateDir().empty(); }, 30s));
}

}  // namespace
}  // namespace pgrs::e2e
