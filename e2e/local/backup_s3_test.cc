// Backups to an S3 repository, end to end with real PostgreSQL 15, real
// pgBackRest 2.45 and a real S3-compatible server: s3rver (npm, pinned by
// e2e/local/s3/package-lock.json, installed by scripts/install-deps.sh),
// started here on 127.0.0.1 over HTTPS with a CA this test makes with
// openssl. A local set with spec.backup.repository.s3 archives its WAL,
// `pgrs local backup` takes a full backup that `pgbackrest info` lists; wrong
// keys and a wrong CA fail clearly while the set keeps serving writes.
//
// s3rver 3.7.1 checks the access key id but not SigV4 signatures, so a
// wrong secret alone goes unnoticed by it: the wrong-key case changes the
// access key id (AWS answers both with 403 the same way).
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>

#include "e2e/local/harness.h"
#include "e2e/local/s3_server.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

using namespace std::chrono_literals;

// s3rver's built-in account.
constexpr char kGoodCredentials[] = "AWS_ACCESS_KEY_ID=S3RVER\nAWS_SECRET_ACCESS_KEY=S3RVER\n";

class BackupS3 : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = c_.stateDir() + "/s3";
    ASSERT_TRUE(MakeDirs(dir_, 0700).ok());
    Status started = s3_.Start(PGRS_S3RVER, dir_);
    ASSERT_TRUE(started.ok()) << started.ToString();
    port_ = s3_.port();
  }

  // The set stops first: its last archive-push at shutdown needs the server
  // (pgBackRest would retry an unreachable one for 60 s).
  void TearDown() override {
    if (c_.runPid() > 0) c_.StopRun();
    s3_.Stop();
  }

  std::string S3rverLog() { return s3_.Tail(); }

  void Create() {
    base_ = FreePortRange(1);
    ASSERT_GT(base_, 0);
    ASSERT_TRUE(WriteFileAtomic(credentials(), kGoodCredentials, 0600).ok());
    ASSERT_TRUE(CopyCa("ca.pem"));
    c_.StartRun();
    std::ostringstream s3;
    s3 << "  backup:\n    repository:\n      s3:\n"
       << "        endpoint: localhost:" << port_ << "\n"
       << "        bucket: pgrs\n        region: us-east-1\n        uriStyle: path\n        path: /sets\n"
       << "        credentialsFile: " << credentials() << "\n        caFile: " << caFile() << "\n";
    auto applied = c_.ApplyText(Manifest(name_, 1, base_, s3.str()));
    ASSERT_EQ(applied.exitCode, 0) << applied.output;
    ASSERT_TRUE(c_.WaitReady(name_));
  }

  std::string credentials() const { return dir_ + "/credentials"; }
  std::string caFile() const { return dir_ + "/repository-ca.pem"; }
  bool CopyCa(const std::string& which) {
    auto pem = ReadFile(dir_ + "/" + which);
    return pem.ok() && WriteFileAtomic(caFile(), *pem, 0600).ok();
  }
  std::string Primary() { return c_.Get(name_).status.currentPrimary; }
  std::string ConfigFile() { return c_.InstanceDir(name_, Primary()) + "/pgbackrest/pgbackrest.conf"; }

  std::pair<int64_t, int64_t> Archiver() {
    auto rows = c_.Sql(name_, base_, "SELECT archived_count, failed_count FROM pg_stat_archiver");
    if (!rows.ok() || rows->empty()) return {-1, -1};
    return {std::stoll((*rows)[0][0].value_or("-1")), std::stoll((*rows)[0][1].value_or("-1"))};
  }

  // `pgbackrest ARGS` as postgres with the primary's configuration.
  Result<CommandResult> PgBackRest(const std::vector<std::string>& args) {
    ProcessSpec spec;
    spec.argv = {"/usr/bin/pgbackrest", "--config=" + ConfigFile(), "--stanza=" + name_};
    spec.argv.insert(spec.argv.end(), args.begin(), args.end());
    if (RunningAsRoot()) spec.runAs = *PostgresUser();
    return RunCommand(spec, 60s);
  }

  // Waits until the agent has rewritten pgbackrest.conf with `line`.
  void WaitForConfigLine(const std::string& line) {
    EXPECT_TRUE(Eventually([&] {
      auto conf = ReadFile(ConfigFile());
      return conf.ok() && conf->find(line + "\n") != std::string::npos;
    }, 30s)) << "pgbackrest.conf never got " << line.substr(0, line.find('='));
  }

  // Waits until the agent's copy of the CA bundle is `which`.
  void WaitForAgentCa(const std::string& which) {
    auto pem = ReadFile(dir_ + "/" + which);
    ASSERT_TRUE(pem.ok());
    EXPECT_TRUE(Eventually([&] {
      auto copied = ReadFile(c_.InstanceDir(name_, Primary()) + "/pgbackrest/s3-ca.pem");
      return copied.ok() && *copied == *pem;
    }, 30s)) << which;
  }

  std::optional<std::string> One(const std::string& set, int port, const std::string& sql) {
    auto rows = c_.Sql(set, port, sql);
    if (!rows.ok() || rows->empty()) return std::nullopt;
    return (*rows)[0][0];
  }

  // Switches to a new WAL segment and waits for its .done status file:
  // everything committed so far is in the bucket.
  void ArchiveEverything() {
    auto wal = One(name_, base_, "SELECT pg_walfile_name(pg_switch_wal())");
    ASSERT_TRUE(wal.has_value());
    EXPECT_TRUE(Eventually([&] {
      return One(name_, base_, "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name = '" + *wal + ".done'") ==
             std::optional<std::string>("1");
    }, 60s)) << "waiting for " << *wal << " to be archived\n" << S3rverLog();
  }

  // spec.bootstrap.recovery from this test's bucket, with `credentials`.
  std::string RecoveryFromBucket(const std::string& credentials, const std::string& target) {
    std::ostringstream out;
    out << "  bootstrap:\n    recovery:\n      source: " << name_ << "\n      repository:\n        s3:\n"
        << "          endpoint: localhost:" << port_ << "\n"
        << "          bucket: pgrs\n          region: us-east-1\n          uriStyle: path\n          path: /sets\n"
        << "          credentialsFile: " << credentials << "\n          caFile: " << caFile() << "\n"
        << target;
    return out.str();
  }

  void ExpectWritesServed(const std::string& table) {
    EXPECT_TRUE(c_.Sql(name_, base_, "CREATE TABLE " + table + " (n int); INSERT INTO " + table + " VALUES (1)").ok());
    auto rows = c_.Sql(name_, base_, "SELECT count(*) FROM " + table);
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ((*rows)[0][0], std::optional<std::string>("1"));
  }

  LocalCluster c_;
  std::string name_ = "s3bk";
  std::string dir_;
  TestS3Server s3_;
  int port_ = 0;
  int base_ = 0;
};

TEST_F(BackupS3, ArchivesBacksUpAndFailsClearlyWithWrongKeysOrCa) {
  const auto start = std::chrono::steady_clock::now();
  auto phase = [&](const char* what) {
    std::fprintf(stderr, "%.1f s: %s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                 what);
  };
  Create();
  phase("set ready");
  if (HasFatalFailure()) return;
  // The keys are in the instance's pgbackrest.conf (0600), not on any
  // command line.
  EXPECT_TRUE(HasMode(ConfigFile(), 0600));

  // The stanza exists once `pgbackrest info` finds it in the bucket.
  EXPECT_TRUE(Eventually([&] {
    auto info = PgBackRest({"--log-level-console=off", "--log-level-stderr=off", "info", "--output=json"});
    return info.ok() && info->ok() && info->output.find("\"archive\":[{") != std::string::npos;
  }, 60s)) << S3rverLog();
  phase("stanza exists");
  const auto before = Archiver();
  ASSERT_TRUE(c_.Sql(name_, base_, "CREATE TABLE batch AS SELECT generate_series(1, 1000) n").ok());
  ASSERT_TRUE(c_.Sql(name_, base_, "SELECT pg_switch_wal()").ok());
  std::pair<int64_t, int64_t> after;
  EXPECT_TRUE(Eventually([&] {
    after = Archiver();
    return after.first > before.first;
  }, 60s)) << "archived " << before.first << " -> " << after.first;
  EXPECT_EQ(after.second, before.second) << "archive_command failed after the stanza existed";

  phase("WAL archived");
  auto backup = c_.Local("backup", {name_, "--type", "full"}, 180s);
  ASSERT_EQ(backup.exitCode, 0) << backup.output;
  std::istringstream lines(backup.output);
  std::string line, label;
  while (std::getline(lines, line)) {
    if (!line.empty()) label = line;
  }
  ASSERT_NE(label.find('F'), std::string::npos) << backup.output;
  auto info = PgBackRest({"info"});
  ASSERT_TRUE(info.ok() && info->ok()) << (info.ok() ? info->output : info.status().ToString());
  EXPECT_NE(info->output.find("full backup: " + label), std::string::npos) << info->output;
  EXPECT_EQ(Archiver().second, before.second);

  phase("full backup listed");
  // Rows after the backup, a restore point, rows after it; all archived.
  ASSERT_TRUE(c_.Sql(name_, base_, "CREATE TABLE after_backup AS SELECT generate_series(1, 500) n").ok());
  ASSERT_TRUE(c_.Sql(name_, base_, "SELECT pg_create_restore_point('before_late_rows')").ok());
  ASSERT_TRUE(c_.Sql(name_, base_, "INSERT INTO after_backup SELECT generate_series(501, 600)").ok());
  ArchiveEverything();
  phase("rows after the backup archived");

  // A recovery repository whose credentials file is missing, or whose keys
  // the server refuses: refused by apply with the field named, nothing stored.
  const int restoredBase = FreePortRange(2);
  ASSERT_GT(restoredBase, 0);
  auto missing = c_.ApplyText(Manifest("nokeys", 1, restoredBase, RecoveryFromBucket(dir_ + "/nosuch", "")));
  EXPECT_EQ(missing.exitCode, 1) << missing.output;
  EXPECT_NE(missing.output.find("error: postgresreplicaset nokeys: spec.bootstrap.recovery.repository.s3."
                                "credentialsFile " + dir_ + "/nosuch: "),
            std::string::npos)
      << missing.output;
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/wrong-credentials", "AWS_ACCESS_KEY_ID=WRONGKEY\nAWS_SECRET_ACCESS_KEY=x\n", 0600)
                  .ok());
  auto refusedKeys =
      c_.ApplyText(Manifest("badkeys", 1, restoredBase, RecoveryFromBucket(dir_ + "/wrong-credentials", "")));
  EXPECT_EQ(refusedKeys.exitCode, 1) << refusedKeys.output;
  EXPECT_NE(refusedKeys.output.find("error: postgresreplicaset badkeys: spec.bootstrap.recovery.repository.s3: "
                                    "s3://localhost/pgrs/sets refused the access keys"),
            std::string::npos)
      << refusedKeys.output;
  EXPECT_FALSE(PathExists(c_.stateDir() + "/sets/nokeys"));
  EXPECT_FALSE(PathExists(c_.stateDir() + "/sets/badkeys"));
  phase("wrong recovery keys refused");

  // Restored from the bucket to the restore point: the backup's rows and
  // those before the point. Its own repository is another path in the same
  // bucket; its standby (bootstrapStandbys) finds no backup of its own stanza
  // there yet and is cloned from the primary.
  const std::string restored = "s3back";
  const std::string ownBackup =
      "  backup:\n    bootstrapStandbys: true\n    repository:\n      s3:\n        endpoint: localhost:" +
      std::to_string(port_) + "\n        bucket: pgrs\n        region: us-east-1\n        uriStyle: path\n" +
      "        path: /restored\n        credentialsFile: " + credentials() + "\n        caFile: " + caFile() + "\n";
  auto applied = c_.ApplyText(Manifest(
      restored, 2, restoredBase,
      RecoveryFromBucket(credentials(), "      target:\n        name: before_late_rows\n") + ownBackup));
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_TRUE(c_.WaitReady(restored, 180s)) << [&] {
    auto log = ReadFile(c_.InstanceDir(restored, restored + "-1") + "/agent.log");
    return log.ok() ? log->substr(log->size() > 4000 ? log->size() - 4000 : 0) : "";
  }();
  phase("restored set ready");
  auto set = c_.Get(restored);
  EXPECT_EQ(set.status.readyInstances, 2);
  for (const auto& inst : set.status.instances) {
    const int port = restoredBase + api::InstanceIndex(restored, inst.name) - 1;
    EXPECT_EQ(One(restored, port, "SELECT (SELECT count(*) FROM batch) || ' ' || (SELECT count(*) FROM after_backup)"),
              std::optional<std::string>("1000 500"))
        << inst.name;
  }
  const std::string restoredPrimary = set.status.currentPrimary;
  const std::string restoredStandby = restoredPrimary == restored + "-1" ? restored + "-2" : restored + "-1";
  auto standbyLog = ReadFile(c_.InstanceDir(restored, restoredStandby) + "/agent.log");
  EXPECT_TRUE(standbyLog.ok() && standbyLog->find("no backup to restore the standby from yet") != std::string::npos);
  // The source repository's configuration (with its keys) is gone once the
  // restore is complete; the set's own names its own path.
  const std::string pgbackrestDir = c_.InstanceDir(restored, restoredPrimary) + "/pgbackrest";
  EXPECT_FALSE(PathExists(pgbackrestDir + "/restore.conf"));
  EXPECT_FALSE(PathExists(pgbackrestDir + "/restore-s3-ca.pem"));
  auto ownConf = ReadFile(pgbackrestDir + "/pgbackrest.conf");
  EXPECT_TRUE(ownConf.ok() && ownConf->find("repo1-path=/restored\n") != std::string::npos);
  // Gone before the wrong keys and CA below, which it would share.
  ASSERT_EQ(c_.Local("delete", {restored}, 120s).exitCode, 0);
  phase("restored set checked and deleted");
  // Wrong keys: read again from the file, pushed to the agent, and refused
  // by the server; `pgrs local backup` says so and exits 1.
  ASSERT_TRUE(WriteFileAtomic(credentials(), "AWS_ACCESS_KEY_ID=WRONGKEY\nAWS_SECRET_ACCESS_KEY=wrong\n", 0600).ok());
  WaitForConfigLine("repo1-s3-key=WRONGKEY");
  auto refused = c_.Local("backup", {name_}, 120s);
  EXPECT_EQ(refused.exitCode, 1) << refused.output;
  EXPECT_NE(refused.output.find("error: postgresreplicaset " + name_ + ": pgbackrest backup failed"),
            std::string::npos)
      << refused.output;
  EXPECT_NE(refused.output.find("InvalidAccessKeyId"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("AWS_SECRET_ACCESS_KEY=wrong"), std::string::npos);
  ExpectWritesServed("kept_wrong_key");

  phase("wrong keys refused");
  // The right keys but a CA that did not sign the server's certificate.
  ASSERT_TRUE(WriteFileAtomic(credentials(), kGoodCredentials, 0600).ok());
  ASSERT_TRUE(CopyCa("other-ca.pem"));
  WaitForConfigLine("repo1-s3-key=S3RVER");
  WaitForAgentCa("other-ca.pem");
  phase("wrong CA in place");
  // pgBackRest retries a failed TLS handshake until io-timeout (60 s by
  // default): a shorter one keeps the test short; the error is the same.
  auto untrusted = PgBackRest({"--io-timeout=3", "--log-level-console=warn", "backup"});
  ASSERT_TRUE(untrusted.ok()) << untrusted.status().ToString();
  EXPECT_NE(untrusted->exitCode, 0) << untrusted->output;
  EXPECT_NE(untrusted->output.find("unable to verify certificate presented by 'localhost:" + std::to_string(port_)),
            std::string::npos)
      << untrusted->output;
  ExpectWritesServed("kept_wrong_ca");
  phase("wrong CA refused");

  // The right CA again, so that the set archives as it stops.
  ASSERT_TRUE(CopyCa("ca.pem"));
  WaitForAgentCa("ca.pem");
}

}  // namespace
}  // namespace pgrs::e2e
