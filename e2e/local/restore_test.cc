// Restore and point-in-time recovery end to end, with real PostgreSQL 15 and
// pgBackRest: a set archives across a failover, new sets are restored from
// its repository to a time before the failover and to the end of the
// archive (after the source set is gone), and bad restore targets are
// refused with the field named.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>
#include <thread>

#include "e2e/local/harness.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

using namespace std::chrono_literals;

class Restore : public ::testing::Test {
 protected:
  int PortOf(const std::string& set, int base, const std::string& instance) {
    return base + api::InstanceIndex(set, instance) - 1;
  }

  std::optional<std::string> One(const std::string& set, int port, const std::string& sql) {
    auto rows = c_.Sql(set, port, sql);
    if (!rows.ok() || rows->empty()) return std::nullopt;
    return (*rows)[0][0];
  }

  // Rows of batch `tag` committed on the set's primary, one transaction.
  void Batch(const std::string& set, int port, const std::string& tag, int rows = 100) {
    auto done = c_.Sql(set, port,
                       "CREATE TABLE IF NOT EXISTS batches (tag text, n int); INSERT INTO batches SELECT '" + tag +
                           "', generate_series(1, " + std::to_string(rows) + ")");
    ASSERT_TRUE(done.ok()) << done.status().ToString();
  }

  // Which batches a set holds, with their row counts: "A:100 B:100".
  std::string Batches(const std::string& set, int port) {
    auto rows = c_.Sql(set, port, "SELECT string_agg(tag || ':' || c, ' ' ORDER BY tag) FROM "
                                  "(SELECT tag, count(*) c FROM batches GROUP BY tag) t");
    if (!rows.ok()) return "error: " + rows.status().ToString();
    return rows->empty() ? "" : (*rows)[0][0].value_or("");
  }

  // Switches the primary to a new WAL segment and waits until the archiver
  // has pushed it (everything committed so far is then in the archive).
  void ArchiveEverything(const std::string& set, int port) {
    auto wal = One(set, port, "SELECT pg_walfile_name(pg_switch_wal())");
    ASSERT_TRUE(wal.has_value());
    // Its .done status file says so (pg_stat_archiver's last segment may be
    // a .history file archived after it).
    EXPECT_TRUE(Eventually([&] {
      return One(set, port, "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name = '" + *wal + ".done'") ==
             std::optional<std::string>("1");
    }, 60s)) << "waiting for " << *wal << " to be archived: "
             << One(set, port, "SELECT row(pg_stat_archiver.*)::text FROM pg_stat_archiver").value_or("") << "\n"
             << AgentLog(set, c_.Get(set).status.currentPrimary) << "\n"
             << PostgresLog(set, c_.Get(set).status.currentPrimary);
  }

  std::string RecoverySpec(const std::string& target) {
    return "  bootstrap:\n    recovery:\n      source: " + source_ + "\n      repository:\n        path: " + repository_ +
           "\n" + (target.empty() ? "" : "      target:\n" + target);
  }

  std::string AgentLog(const std::string& set, const std::string& instance) {
    auto log = ReadFile(c_.InstanceDir(set, instance) + "/agent.log");
    return log.ok() ? log->substr(log->size() > 4000 ? log->size() - 4000 : 0) : "";
  }

  std::string PostgresLog(const std::string& set, const std::string& instance) {
    auto log = ReadFile(c_.InstanceDir(set, instance) + "/postgres.log");
    return log.ok() ? log->substr(log->size() > 4000 ? log->size() - 4000 : 0) : "";
  }

  std::string Message(const std::string& set, const std::string& instance) {
    for (const auto& inst : c_.Get(set).status.instances) {
      if (inst.name == instance) return inst.state + ": " + inst.message;
    }
    return "";
  }

  LocalCluster c_;
  std::string source_ = "src";
  std::string repository_;
};

TEST_F(Restore, PointInTimeBeforeAFailoverAndTheWholeArchiveAfterTheSourceIsGone) {
  repository_ = c_.stateDir() + "/backups";
  const int base = FreePortRange(2);
  ASSERT_GT(base, 0);
  c_.StartRun();
  ASSERT_EQ(c_.ApplyText(Manifest(source_, 2, base, "  backup:\n    repository:\n      path: " + repository_ + "\n"))
                .exitCode,
            0);
  ASSERT_TRUE(c_.WaitReady(source_));
  const std::string first = c_.Get(source_).status.currentPrimary;
  const int firstPort = PortOf(source_, base, first);

  // A, a full backup, B, the time T, C: all archived on timeline 1.
  Batch(source_, firstPort, "A");
  auto backup = c_.Local("backup", {source_, "--type", "full"}, 300s);
  ASSERT_EQ(backup.exitCode, 0) << backup.output;
  // pgBackRest records the backup's end to the second: T comes after it.
  const std::string backupDone = One(source_, firstPort, "SELECT clock_timestamp()").value_or("");
  ASSERT_TRUE(Eventually([&] {
    return One(source_, firstPort, "SELECT clock_timestamp() > '" + backupDone + "'::timestamptz + interval '1.1 s'") ==
           std::optional<std::string>("t");
  }, 5s));
  Batch(source_, firstPort, "B");
  const std::string t =
      One(source_, firstPort, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
          .value_or("");
  ASSERT_FALSE(t.empty());
  // C commits measurably after T.
  ASSERT_TRUE(Eventually([&] {
    return One(source_, firstPort, "SELECT clock_timestamp() > '" + t + "'::timestamptz + interval '200 ms'") ==
           std::optional<std::string>("t");
  }, 5s));
  Batch(source_, firstPort, "C");
  ArchiveEverything(source_, firstPort);

  // The primary's postmaster dies: D is written on timeline 2.
  ASSERT_EQ(::kill(c_.PostmasterPid(source_, first), SIGKILL), 0);
  std::string second;
  ASSERT_TRUE(Eventually([&] {
    auto set = c_.Get(source_);
    second = set.status.currentPrimary;
    return !second.empty() && second != first && set.status.promotionReason.empty() && set.status.timeline == 2;
  }, 60s));
  const int secondPort = PortOf(source_, base, second);
  Batch(source_, secondPort, "D");
  ArchiveEverything(source_, secondPort);

  // Bad restores are refused before anything is stored.
  const int pitrBase = FreePortRange(2);
  auto early = c_.ApplyText(Manifest("early", 1, pitrBase, RecoverySpec("        time: 2000-01-01T00:00:00Z\n")));
  EXPECT_EQ(early.exitCode, 1) << early.output;
  EXPECT_NE(early.output.find("postgresreplicaset early: spec.bootstrap.recovery.target.time: 2000-01-01T00:00:00Z "
                              "is before the end of the oldest backup of stanza src"),
            std::string::npos)
      << early.output;
  auto future = c_.ApplyText(Manifest("future", 1, pitrBase, RecoverySpec("        time: 2200-01-01T00:00:00Z\n")));
  EXPECT_EQ(future.exitCode, 1) << future.output;
  EXPECT_NE(future.output.find("spec.bootstrap.recovery.target.time: 2200-01-01T00:00:00Z is in the future"),
            std::string::npos)
      << future.output;
  source_ = "nosuch";
  auto missing = c_.ApplyText(Manifest("missing", 1, pitrBase, RecoverySpec("")));
  source_ = "src";
  EXPECT_EQ(missing.exitCode, 1) << missing.output;
  EXPECT_NE(missing.output.find("spec.bootstrap.recovery.source: stanza nosuch in repository " + repository_ +
                                " has no backup to restore"),
            std::string::npos)
      << missing.output;
  auto both = c_.ApplyText(
      Manifest("both", 1, pitrBase, RecoverySpec("        time: " + t + "\n        immediate: true\n")));
  EXPECT_EQ(both.exitCode, 1) << both.output;
  EXPECT_NE(both.output.find("spec.bootstrap.recovery.target: must name at most one of"), std::string::npos)
      << both.output;
  EXPECT_FALSE(PathExists(c_.stateDir() + "/sets/early"));

  // Restored to T: exactly A and B, on a timeline of its own, with this
  // set's passwords, and a standby cloned from it; its own archive works.
  ASSERT_EQ(c_.ApplyText(Manifest("pitr", 2, pitrBase,
                                  RecoverySpec("        time: " + t + "\n") + "  backup:\n    repository:\n      path: " +
                                      repository_ + "\n"))
                .exitCode,
            0) << "target " << t;
  ASSERT_TRUE(c_.WaitReady("pitr", 180s)) << Message("pitr", "pitr-1") << "\n" << AgentLog("pitr", "pitr-1");
  auto pitr = c_.Get("pitr");
  const int pitrPort = PortOf("pitr", pitrBase, pitr.status.currentPrimary);
  EXPECT_EQ(Batches("pitr", pitrPort), "A:100 B:100")
      << "target " << t << "\n" << AgentLog("pitr", pitr.status.currentPrimary) << "\n"
      << PostgresLog("pitr", pitr.status.currentPrimary);
  EXPECT_GE(pitr.status.timeline, 2);
  EXPECT_EQ(pitr.status.readyInstances, 2);
  for (const auto& inst : pitr.status.instances) {
    EXPECT_EQ(Batches("pitr", PortOf("pitr", pitrBase, inst.name)), "A:100 B:100") << inst.name;
  }
  // The recovery settings are gone: nothing would stop a later standby of
  // this data directory at T.
  auto autoConf = ReadFile(c_.InstanceDir("pitr", pitr.status.currentPrimary) + "/data/postgresql.auto.conf");
  ASSERT_TRUE(autoConf.ok());
  EXPECT_EQ(autoConf->find("recovery_target"), std::string::npos) << *autoConf;
  Batch("pitr", pitrPort, "P");
  ArchiveEverything("pitr", pitrPort);
  EXPECT_TRUE(PathExists(repository_ + "/archive/pitr/archive.info"));
  // spec.bootstrap cannot change on a set that exists.
  auto changed = c_.ApplyText(Manifest("pitr", 2, pitrBase,
                                       RecoverySpec("        immediate: true\n") + "  backup:\n    repository:\n      path: " +
                                           repository_ + "\n"));
  EXPECT_EQ(changed.exitCode, 1) << changed.output;
  EXPECT_NE(changed.output.find("postgresreplicaset pitr: spec.bootstrap: cannot change once the set exists"),
            std::string::npos)
      << changed.output;

  // A target after the last archived commit: the restore fails with the
  // field named, in the instance's status.
  const std::string afterEverything =
      One(source_, secondPort, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')")
          .value_or("");
  const int lateBase = FreePortRange(1);
  ASSERT_EQ(c_.ApplyText(Manifest("late", 1, lateBase, RecoverySpec("        time: " + afterEverything + "\n"))).exitCode,
            0);
  EXPECT_TRUE(Eventually([&] {
    return Message("late", "late-1").find("spec.bootstrap.recovery.target: the archive ends before the recovery "
                                          "target was reached") != std::string::npos;
  }, 120s)) << Message("late", "late-1") << "\n" << AgentLog("late", "late-1") << "\n" << PostgresLog("late", "late-1");
  ASSERT_EQ(c_.Local("delete", {"late"}, 120s).exitCode, 0);

  // The source set is deleted, data directories and all: restored with no
  // target, a new set holds A to D.
  ASSERT_EQ(c_.Local("delete", {source_}, 120s).exitCode, 0);
  ASSERT_FALSE(PathExists(c_.stateDir() + "/sets/" + source_));
  const int allBase = FreePortRange(1);
  ASSERT_EQ(c_.ApplyText(Manifest("all", 1, allBase, RecoverySpec(""))).exitCode, 0);
  ASSERT_TRUE(c_.WaitReady("all", 180s)) << Message("all", "all-1") << "\n" << AgentLog("all", "all-1");
  EXPECT_EQ(Batches("all", allBase), "A:100 B:100 C:100 D:100");
  EXPECT_GE(c_.Get("all").status.timeline, 3);
}

// Total loss: the machine's set is gone, processes and data directories
// (SIGKILL, then removed), only the repository is left. A set restored from
// it holds every row committed more than archive_timeout before the loss
// (5 s here, 60 s by default): the RPO is printed.
TEST_F(Restore, AfterTotalLossEveryRowCommittedBeforeTheLastArchiveTimeoutIsBack) {
  repository_ = c_.stateDir() + "/backups";
  const int base = FreePortRange(1);
  ASSERT_GT(base, 0);
  c_.StartRun();
  ASSERT_EQ(c_.ApplyText(Manifest(source_, 1, base,
                                  "  postgres:\n    parameters:\n      archive_timeout: 5s\n"
                                  "  backup:\n    repository:\n      path: " +
                                      repository_ + "\n"))
                .exitCode,
            0);
  ASSERT_TRUE(c_.WaitReady(source_));
  ASSERT_TRUE(c_.Sql(source_, base, "CREATE TABLE ticks (at timestamptz NOT NULL DEFAULT clock_timestamp())").ok());
  auto backup = c_.Local("backup", {source_, "--type", "full"}, 300s);
  ASSERT_EQ(backup.exitCode, 0) << backup.output;
  // One commit every 50 ms for 15 s, as a steady application would.
  const auto until = std::chrono::steady_clock::now() + 15s;
  int written = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (c_.Sql(source_, base, "INSERT INTO ticks DEFAULT VALUES").ok()) written++;
    std::this_thread::sleep_for(50ms);
  }
  const std::string lossTime =
      One(source_, base, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
          .value_or("");
  ASSERT_FALSE(lossTime.empty());

  // The loss: everything of the set dies at once, PostgreSQL included (a
  // clean shutdown would archive the last segment), and its directory goes.
  for (pid_t pid : c_.ProcessesUsingStateDir()) ::kill(pid, SIGKILL);
  ::kill(c_.runPid(), SIGKILL);
  c_.StopRun();
  for (pid_t pid : c_.ProcessesUsingStateDir()) ::kill(pid, SIGKILL);
  ASSERT_TRUE(Eventually([&] { return c_.ProcessesUsingStateDir().empty(); }, 30s));
  ASSERT_TRUE(RemoveTree(c_.stateDir() + "/sets/" + source_).ok());

  c_.StartRun();
  const int restoredBase = FreePortRange(1);
  ASSERT_EQ(c_.ApplyText(Manifest("back", 1, restoredBase, RecoverySpec(""))).exitCode, 0);
  ASSERT_TRUE(c_.WaitReady("back", 180s)) << Message("back", "back-1") << "\n" << AgentLog("back", "back-1");
  auto rows = c_.Sql("back", restoredBase,
                     "SELECT count(*), extract(epoch FROM '" + lossTime + "'::timestamptz - max(at)), "
                     "count(*) FILTER (WHERE at < '" + lossTime + "'::timestamptz - interval '5 s') FROM ticks");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  const int restored = std::stoi((*rows)[0][0].value_or("0"));
  const double rpoSeconds = std::stod((*rows)[0][1].value_or("-1"));
  std::printf("total loss: %d of %d rows restored, RPO %.2f s (archive_timeout 5s)\n", restored, written, rpoSeconds);
  EXPECT_GT(restored, 0);
  EXPECT_LE(restored, written);
  // Every row older than archive_timeout (plus the time to push the
  // segment) was archived: at most the last ~10 s are lost.
  EXPECT_LT(rpoSeconds, 10.0) << restored << " of " << written;
  auto before = c_.Sql("back", restoredBase, "SELECT 1");
  EXPECT_TRUE(before.ok());
}

// spec.backup.encryption: the repository's files are not readable without
// the passphrase pgrs generated, which outlives the set; a set restored with
// it (the source's kept one, by default) has the rows; a wrong, missing or
// unrequested passphrase is refused with the field named, nothing stored;
// the encryption of an existing set cannot change.
TEST_F(Restore, EncryptedRepositoryIsUnreadableWithoutTheKeptPassphraseWhichRestoresIt) {
  const auto start = std::chrono::steady_clock::now();
  auto phase = [&](const char* what) {
    std::fprintf(stderr, "%.1f s: %s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                 what);
  };
  source_ = "enc";
  repository_ = c_.stateDir() + "/backups";
  const int base = FreePortRange(1);
  ASSERT_GT(base, 0);
  const std::string backupSpec = "  backup:\n    encryption: true\n    repository:\n      path: " + repository_ + "\n";
  c_.StartRun();
  ASSERT_EQ(c_.ApplyText(Manifest(source_, 1, base, backupSpec)).exitCode, 0);
  ASSERT_TRUE(c_.WaitReady(source_));
  // The primary's agent creates the stanza in the background; a backup
  // before it fails (pgBackRest error 55, no backup.info).
  ASSERT_TRUE(Eventually([&] { return PathExists(repository_ + "/backup/enc/backup.info"); }, 60s));
  Batch(source_, base, "A");
  auto backup = c_.Local("backup", {source_, "--type", "full"}, 300s);
  ASSERT_EQ(backup.exitCode, 0) << backup.output;
  Batch(source_, base, "B");
  ArchiveEverything(source_, base);
  phase("encrypted set backed up and archived");

  // The passphrase: generated, 0600, in pgbackrest.conf (0600) and nowhere
  // in the repository, whose info files are OpenSSL-encrypted ("Salted__").
  const std::string keyFile = c_.stateDir() + "/backup-keys/" + source_;
  auto key = ReadFile(keyFile);
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->size(), 64u);
  EXPECT_TRUE(HasMode(keyFile, 0600));
  const std::string conf = c_.InstanceDir(source_, source_ + "-1") + "/pgbackrest/pgbackrest.conf";
  EXPECT_TRUE(HasMode(conf, 0600));
  auto confText = ReadFile(conf);
  ASSERT_TRUE(confText.ok());
  EXPECT_NE(confText->find("repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=" + *key + "\n"), std::string::npos);
  for (const char* info : {"/backup/enc/backup.info", "/archive/enc/archive.info"}) {
    auto text = ReadFile(repository_ + std::string(info));
    ASSERT_TRUE(text.ok()) << info;
    EXPECT_EQ(text->rfind("Salted__", 0), 0u) << info << " is not encrypted: " << text->substr(0, 40);
  }
  EXPECT_EQ(c_.Get(source_).status.backup.value_or(api::BackupStatus{}).repositoryError, "");
  for (const std::string& log : {AgentLog(source_, source_ + "-1"), PostgresLog(source_, source_ + "-1")}) {
    EXPECT_EQ(log.find(*key), std::string::npos) << "the passphrase is in a log";
  }
  // pgbackrest info without the passphrase cannot read the stanza.
  ProcessSpec info;
  info.argv = {"/usr/bin/pgbackrest", "--no-config", "--repo1-path=" + repository_, "--stanza=" + source_,
               "--log-level-console=off", "--log-level-file=off", "--log-level-stderr=off", "info", "--output=json"};
  if (RunningAsRoot()) info.runAs = *PostgresUser();
  auto plain = RunCommand(info, 60s);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->output.find("\"label\""), std::string::npos) << plain->output.substr(0, 400);
  EXPECT_NE(plain->output.find("Salted__"), std::string::npos) << plain->output.substr(0, 400);

  // Encryption cannot change on the existing set.
  auto changed = c_.ApplyText(Manifest(source_, 1, base, "  backup:\n    repository:\n      path: " + repository_ + "\n"));
  EXPECT_EQ(changed.exitCode, 1) << changed.output;
  EXPECT_NE(changed.output.find("postgresreplicaset enc: spec.backup.encryption: cannot change once the set exists"),
            std::string::npos)
      << changed.output;

  // Restores refused before anything is stored: not asked to decrypt, a
  // wrong passphrase, a missing passphrase file, a set with no kept one.
  const int restoredBase = FreePortRange(1);
  ASSERT_GT(restoredBase, 0);
  auto notDecrypted = c_.ApplyText(Manifest("plain", 1, restoredBase, RecoverySpec("")));
  EXPECT_EQ(notDecrypted.exitCode, 1) << notDecrypted.output;
  EXPECT_NE(notDecrypted.output.find("postgresreplicaset plain: spec.bootstrap.recovery.repository.encryption: stanza "
                                     "enc in repository " + repository_ + " is encrypted: set it to true"),
            std::string::npos)
      << notDecrypted.output;
  auto encrypted = [&](const std::string& extra) {
    std::string spec = RecoverySpec("");
    spec.replace(spec.find("        path: "), 0, "        encryption: true\n");
    return spec + extra;
  };
  ASSERT_TRUE(WriteFileAtomic(c_.stateDir() + "/wrong.key", "not-the-passphrase\n", 0600).ok());
  auto wrong = c_.ApplyText(Manifest(
      "wrong", 1, restoredBase, encrypted("      encryptionPassphraseFile: " + c_.stateDir() + "/wrong.key\n")));
  EXPECT_EQ(wrong.exitCode, 1) << wrong.output;
  EXPECT_NE(wrong.output.find("postgresreplicaset wrong: spec.bootstrap.recovery.repository.encryption: the passphrase "
                              "does not decrypt stanza enc"),
            std::string::npos)
      << wrong.output;
  auto missing = c_.ApplyText(Manifest(
      "missing", 1, restoredBase, encrypted("      encryptionPassphraseFile: " + c_.stateDir() + "/nosuch.key\n")));
  EXPECT_EQ(missing.exitCode, 1) << missing.output;
  EXPECT_NE(missing.output.find("postgresreplicaset missing: spec.bootstrap.recovery.encryptionPassphraseFile " +
                                c_.stateDir() + "/nosuch.key: "),
            std::string::npos)
      << missing.output;
  for (const auto& refused : {"plain", "wrong", "missing"}) {
    EXPECT_FALSE(PathExists(c_.stateDir() + "/sets/" + refused)) << refused;
  }
  phase("bad restores refused");

  // The source set is deleted; its passphrase is kept, and says so.
  auto deleted = c_.Local("delete", {source_}, 120s);
  ASSERT_EQ(deleted.exitCode, 0) << deleted.output;
  EXPECT_NE(deleted.output.find("kept the repository encryption passphrase of enc in " + keyFile), std::string::npos)
      << deleted.output;
  auto keptKey = ReadFile(keyFile);
  EXPECT_TRUE(keptKey.ok() && *keptKey == *key);
  phase("source deleted, passphrase kept");

  // Restored with the kept passphrase (no passphrase field): A and B. Its
  // own set is not encrypted, in the same repository.
  ASSERT_EQ(c_.ApplyText(Manifest("decrypted", 1, restoredBase,
                                  encrypted("") + "  backup:\n    repository:\n      path: " + repository_ + "\n"))
                .exitCode,
            0);
  ASSERT_TRUE(c_.WaitReady("decrypted", 180s)) << Message("decrypted", "decrypted-1") << "\n"
                                               << AgentLog("decrypted", "decrypted-1");
  EXPECT_EQ(Batches("decrypted", restoredBase), "A:100 B:100");
  EXPECT_FALSE(PathExists(c_.InstanceDir("decrypted", "decrypted-1") + "/pgbackrest/restore.conf"));
  Batch("decrypted", restoredBase, "R");
  ArchiveEverything("decrypted", restoredBase);
  auto ownInfo = ReadFile(repository_ + "/archive/decrypted/archive.info");
  EXPECT_TRUE(ownInfo.ok() && ownInfo->rfind("[backrest]", 0) == 0) << "the restored set's own stanza is plain";
  phase("restored with the kept passphrase");
}

// spec.backup.bootstrapStandbys: a standby added after a backup is restored
// from it and catches up from the archive, then streams; before any backup,
// pg_basebackup.
TEST_F(Restore, NewStandbysComeFromTheRepositoryOnceItHoldsABackup) {
  repository_ = c_.stateDir() + "/backups";
  const int base = FreePortRange(3);
  ASSERT_GT(base, 0);
  const std::string backupSpec =
      "  backup:\n    bootstrapStandbys: true\n    repository:\n      path: " + repository_ + "\n";
  c_.StartRun();
  ASSERT_EQ(c_.ApplyText(Manifest(source_, 2, base, backupSpec)).exitCode, 0);
  ASSERT_TRUE(c_.WaitReady(source_));
  const std::string primary = c_.Get(source_).status.currentPrimary;
  EXPECT_NE(AgentLog(source_, source_ + "-2").find("no backup to restore the standby from yet"), std::string::npos)
      << AgentLog(source_, source_ + "-2");
  Batch(source_, base, "A");
  auto backup = c_.Local("backup", {source_, "--type", "full"}, 300s);
  ASSERT_EQ(backup.exitCode, 0) << backup.output;
  Batch(source_, base, "B");  // after the backup: from the archive or by streaming
  ArchiveEverything(source_, base);
  Batch(source_, base, "C");  // not archived yet: by streaming only

  ASSERT_EQ(c_.ApplyText(Manifest(source_, 3, base, backupSpec)).exitCode, 0);
  const std::string third = source_ + "-3";
  ASSERT_TRUE(Eventually([&] {
    auto set = c_.Get(source_);
    for (const auto& inst : set.status.instances) {
      if (inst.name == third && inst.state == "Streaming") return true;
    }
    return false;
  }, 180s)) << Message(source_, third) << "\n" << AgentLog(source_, third);
  EXPECT_NE(AgentLog(source_, third).find("restored standby from the repository"), std::string::npos)
      << AgentLog(source_, third);
  EXPECT_TRUE(Eventually([&] { return Batches(source_, PortOf(source_, base, third)) == "A:100 B:100 C:100"; }, 30s))
      << Batches(source_, PortOf(source_, base, third));
  EXPECT_EQ(c_.Get(source_).status.currentPrimary, primary);
}

}  // namespace
}  // namespace pgrs::e2e
