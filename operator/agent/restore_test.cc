#include "operator/agent/restore.h"

#include "operator/agent/archiving.h"

#include <gtest/gtest.h>

namespace pgrs::agent {
namespace {

// What `pgbackrest info --output=json` (2.45) printed for a stanza with one
// full and one incremental backup, trimmed to the fields pgrs reads.
constexpr char kInfo[] = R"([{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1",
  "max":"000000020000000000000009","min":"000000010000000000000001"}],
 "backup":[
  {"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},"error":false,
   "info":{"delta":22992551,"repository":{"delta":3043463,"size":3043463},"size":22992551},
   "label":"20261203-113949F","lsn":{"start":"0/2000028","stop":"0/2000100"},
   "timestamp":{"start":1796297989,"stop":1796297993},"type":"full"},
  {"archive":{"start":"000000010000000000000005","stop":"000000010000000000000005"},"error":false,
   "info":{"size":23000000,"repository":{"size":40000}},
   "label":"20261203-113949F_20261203-114500I","lsn":{"start":"0/5000028","stop":"0/5000138"},
   "timestamp":{"start":1796298300,"stop":1796298302},"type":"incr"}],
 "cipher":"none","db":[{"id":1,"system-id":7715041078780958592,"version":"15"}],"name":"bk",
 "status":{"code":0,"message":"ok"}},
 {"archive":[],"backup":[],"db":[],"name":"other","status":{"code":2,"message":"no valid backups"}}])";

TEST(ParseBackupInfo, ReadsTheSourcesPostgresVersionForARestore) {
  auto info = ParseBackupInfo(kInfo, "bk");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->postgresVersion, "15");
  ASSERT_EQ(info->backups.size(), 2u);
  EXPECT_EQ(info->backups[0].stopLsn, "0/2000100");
}

RestoreConfig Target(const std::string& kind, const std::string& value) {
  RestoreConfig r;
  r.repositoryPath = "/backups";
  r.stanza = "bk";
  if (kind == "time") r.targetTime = value;
  if (kind == "lsn") r.targetLsn = value;
  if (kind == "name") r.targetName = value;
  if (kind == "immediate") r.targetImmediate = true;
  return r;
}

TEST(ChooseRestoreBackup, TakesTheNewestBackupThatEndsBeforeTheTarget) {
  auto info = ParseBackupInfo(kInfo, "bk");
  ASSERT_TRUE(info.ok());
  struct Case {
    std::string kind, value, label;
  };
  // The full ends at 11:39:53 (1796297993), the incremental at 11:45:02.
  const Case cases[] = {
      {"", "", "20261203-113949F_20261203-114500I"},           // end of the archive: the newest
      {"name", "before-migration", "20261203-113949F_20261203-114500I"},
      {"immediate", "", "20261203-113949F_20261203-114500I"},
      {"time", "2026-12-03T11:40:00Z", "20261203-113949F"},    // after the full, before the incremental
      {"time", "2026-12-03T11:45:03Z", "20261203-113949F_20261203-114500I"},
      {"time", "2026-12-03T11:45:02.900Z", "20261203-113949F"},  // the incremental may not be over yet
      {"lsn", "0/3000000", "20261203-113949F"},
      {"lsn", "0/5000138", "20261203-113949F_20261203-114500I"},
  };
  for (const auto& c : cases) {
    auto chosen = ChooseRestoreBackup(*info, Target(c.kind, c.value), 15);
    ASSERT_TRUE(chosen.ok()) << c.kind << " " << c.value << ": " << chosen.status().ToString();
    EXPECT_EQ(chosen->label, c.label) << c.kind << " " << c.value;
  }
}

TEST(ChooseRestoreBackup, NamesTheFieldThatCannotBeSatisfied) {
  auto info = ParseBackupInfo(kInfo, "bk");
  ASSERT_TRUE(info.ok());
  auto early = ChooseRestoreBackup(*info, Target("time", "2026-12-03T11:39:50Z"), 15);
  ASSERT_FALSE(early.ok());
  EXPECT_NE(early.status().message().find("spec.bootstrap.recovery.target.time: 2026-12-03T11:39:50Z is before the "
                                          "end of the oldest backup of stanza bk in repository /backups "
                                          "(20261203-113949F, ended by 2026-12-03T11:39:54Z)"),
            std::string::npos)
      << early.status().message();
  auto lsn = ChooseRestoreBackup(*info, Target("lsn", "0/1000000"), 15);
  ASSERT_FALSE(lsn.ok());
  EXPECT_NE(lsn.status().message().find("spec.bootstrap.recovery.target.lsn: 0/1000000"), std::string::npos);
  auto version = ChooseRestoreBackup(*info, Target("", ""), 16);
  ASSERT_FALSE(version.ok());
  EXPECT_NE(version.status().message().find("spec.postgres.version: is 16 but the backups of stanza bk"),
            std::string::npos);
  auto other = ParseBackupInfo(kInfo, "other");
  ASSERT_TRUE(other.ok());
  auto none = ChooseRestoreBackup(*other, Target("", ""), 15);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("spec.bootstrap.recovery.source: stanza bk in repository /backups has no "
                                         "backup to restore"),
            std::string::npos)
      << none.status().message();
}

TEST(RestoreRepositoryProblem, NamesTheFieldOfWhatTheRepositoryAnswered) {
  RestoreConfig s3 = Target("", "");
  s3.repositoryPath = "/sets";
  s3.s3 = S3RepositoryConfig{"localhost", 9000, "pgrs", "us-east-1", "path", true, "KEY", "SECRET", ""};
  RestoreConfig encrypted = Target("", "");
  encrypted.encryption = true;
  encrypted.cipherPass = "SECRET";
  struct Case {
    const RestoreConfig& restore;
    std::string error;
    std::string problem;  // its beginning; "" = none (ChooseRestoreBackup names the source)
  };
  const Case cases[] = {
      {s3, "", ""},
      {Target("", ""), "pgbackrest info: stanza bk: missing stanza path", ""},
      {s3, "pgbackrest info: stanza bk: [ProtocolError] HTTP request failed with 403 (Forbidden): *** Path/Query ***: "
           "/pgrs *** Response Content ***: <Error><Code>InvalidAccessKeyId</Code>",
       "spec.bootstrap.recovery.repository.s3: s3://localhost/pgrs/sets refused the access keys (credentialsFile, or "
       "credentialsSecret in Kubernetes): pgbackrest info: stanza bk: [ProtocolError]"},
      {s3, "SignatureDoesNotMatch", "spec.bootstrap.recovery.repository.s3: s3://localhost/pgrs/sets refused"},
      {Target("", ""),
       "pgbackrest info: stanza bk: [FormatError] unable to load info file '/backups/backup/bk/backup.info' or "
       "'/backups/backup/bk/backup.info.copy': FormatError: key/value found outside of section at line 1: Salted__??",
       "spec.bootstrap.recovery.repository.encryption: stanza bk in repository /backups is encrypted: set it to true"},
      {encrypted, "FormatError: key/value found outside of section at line 1: ??z??",
       "spec.bootstrap.recovery.repository.encryption: the passphrase does not decrypt stanza bk in repository "
       "/backups (wrong spec.bootstrap.recovery.encryptionPassphraseFile"},
      {encrypted, "[CryptoError] unable to load info file: CryptoError: cipher header invalid HINT: is or was the repo "
                  "encrypted?",
       "spec.bootstrap.recovery.repository.encryption: stanza bk in repository /backups is not encrypted: set it to "
       "false"},
      {Target("", ""), "pgbackrest info: stanza bk: [PathOpenError] unable to list file info for path '/backups'",
       "spec.bootstrap.recovery.repository: /backups cannot be read: pgbackrest info: stanza bk: [PathOpenError]"},
  };
  for (const auto& c : cases) {
    const std::string problem = RestoreRepositoryProblem(c.error, c.restore);
    EXPECT_EQ(problem.substr(0, c.problem.size()), c.problem) << c.error;
    EXPECT_EQ(problem.empty(), c.problem.empty()) << c.error;
    EXPECT_EQ(problem.find("SECRET"), std::string::npos);
  }
  // And ChooseRestoreBackup returns it for a stanza it could not read.
  RepositoryInfo unreadable;
  unreadable.error = "pgbackrest info: stanza bk: [ProtocolError] InvalidAccessKeyId";
  EXPECT_EQ(ChooseRestoreBackup(unreadable, s3, 15).status().message().rfind("spec.bootstrap.recovery.repository.s3: ", 0),
            0u);
}

TEST(ParseBackupInfo, AnUnreadableStanzaSaysWhyInPrintableText) {
  // pgBackRest 2.45 reading an encrypted repository without the passphrase:
  // the stanza says "other", the repository the reason, quoting the bytes.
  const std::string json = std::string(R"([{"archive":[],"backup":[],"cipher":"none","db":[],"name":"bk","repo":[{"cipher":"none","key":1,"status":{"code":99,"message":"[FormatError] unable to load info file: key/value found outside of section at line 1: Salted__)") +
                           "\x94\x01\xe9" + R"(
HINT: has a stanza-create been performed?"}}],"status":{"code":99,"message":"other"}}])";
  auto info = ParseBackupInfo(json, "bk");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->error, "pgbackrest info: stanza bk: [FormatError] unable to load info file: key/value found outside "
                         "of section at line 1: Salted__??? HINT: has a stanza-create been performed?");
}

TEST(RestoreRecoverySettings, RecoverToTheTargetThenPromoteAndAreRemovedAfter) {
  RestoreConfig r = Target("time", "2026-12-03T11:40:00Z");
  std::string text = RestoreRecoverySettings("/usr/bin/pgbackrest", "/i/pgbackrest/restore.conf", r);
  EXPECT_NE(text.find("restore_command = '/usr/bin/pgbackrest --config=/i/pgbackrest/restore.conf --stanza=bk "
                      "archive-get %f \"%p\"'\n"),
            std::string::npos)
      << text;
  // PostgreSQL reads neither RFC 3339's T nor its Z there.
  EXPECT_NE(text.find("recovery_target_time = '2026-12-03 11:40:00+00'\n"), std::string::npos) << text;
  EXPECT_NE(RestoreRecoverySettings("pgbackrest", "/c", Target("time", "2026-12-03T11:40:00.250Z"))
                .find("recovery_target_time = '2026-12-03 11:40:00.250+00'\n"),
            std::string::npos);
  EXPECT_NE(text.find("recovery_target_action = 'promote'\n"), std::string::npos);
  EXPECT_NE(text.find("recovery_target_timeline = 'latest'\n"), std::string::npos);
  EXPECT_EQ(text.find("recovery_target_lsn"), std::string::npos);
  EXPECT_NE(RestoreRecoverySettings("pgbackrest", "/c", Target("immediate", "")).find("recovery_target = 'immediate'"),
            std::string::npos);
  EXPECT_NE(RestoreRecoverySettings("pgbackrest", "/c", Target("lsn", "0/3000000")).find("recovery_target_lsn = '0/3000000'"),
            std::string::npos);
  EXPECT_NE(RestoreRecoverySettings("pgbackrest", "/c", Target("name", "it's")).find("recovery_target_name = 'it''s'"),
            std::string::npos);

  // What stays after the promotion: the header and whatever ALTER SYSTEM
  // added since; none of the restore's settings.
  std::string after = WithoutRestoreRecoverySettings(text + "work_mem = '64MB'\n");
  EXPECT_EQ(after,
            "# Do not edit this file manually!\n"
            "# It will be overwritten by the ALTER SYSTEM command.\n"
            "work_mem = '64MB'\n");
  EXPECT_EQ(WithoutRestoreRecoverySettings(after), after);
}

TEST(ParseRestoreProgress, ReadsThePercentOfARestoredFile) {
  EXPECT_EQ(ParseRestoreProgress("2026-12-03 11:41:58.955 P01 DETAIL: restore file /r/base/5/1255 (768KB, 3.42%) "
                                 "checksum adb7a4a7a6886be09982ada40de8e58a48dcb64a"),
            std::optional<std::string>("restore 3.42%"));
  EXPECT_EQ(ParseRestoreProgress("P00 DETAIL: restore file /r/global/pg_control (8KB, 100.00%) checksum x"),
            std::optional<std::string>("restore 100.00%"));
  EXPECT_EQ(ParseRestoreProgress("P00   INFO: restore size = 21.9MB, file total = 963"), std::nullopt);
}

TEST(RecoveryTargetMissed, RecognisesPostgresFatalMessage) {
  EXPECT_TRUE(RecoveryTargetMissed(
      "2026-12-03 11:50:00.000 UTC [1] FATAL:  recovery ended before configured recovery target was reached\n"));
  EXPECT_FALSE(RecoveryTargetMissed("LOG:  recovery stopping before commit of transaction 735\n"));
}

}  // namespace
}  // namespace pgrs::agent
