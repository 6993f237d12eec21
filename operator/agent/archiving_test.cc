#include "operator/agent/archiving.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "operator/agent/temp_dir_for_test.h"
#include "operator/util/files.h"

namespace pgrs::agent {
namespace {

TEST(NewestBackupLabelTest, TakesTheLastBackupOfTheStanza) {
  const std::string info = R"([
    {"name": "other", "backup": [{"label": "20260101-000000F"}]},
    {"name": "demo", "backup": [{"label": "20261203-101010F", "type": "full"},
                                 {"label": "20261203-101010F_20261203-102020I", "type": "incr"}]}
  ])";
  auto label = NewestBackupLabel(info, "demo");
  ASSERT_TRUE(label.ok()) << label.status().ToString();
  EXPECT_EQ(*label, "20261203-101010F_20261203-102020I");
}

TEST(NewestBackupLabelTest, StanzaWithoutBackupsOrUnknownIsNotFound) {
  EXPECT_EQ(NewestBackupLabel(R"([{"name": "demo", "backup": []}])", "demo").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(NewestBackupLabel("[]", "demo").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(NewestBackupLabel("not json", "demo").status().code(), StatusCode::kInvalid);
}

// What pgBackRest 2.45 printed for a full and an incremental backup.
constexpr char kInfo245[] = R"([{"archive":[{"database":{"id":1,"repo-key":1},"id":"15-1","max":"000000010000000000000004","min":"000000010000000000000002"}],"backup":[{"archive":{"start":"000000010000000000000002","stop":"000000010000000000000002"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":22992541,"repository":{"delta":3043463,"size":3043463},"size":22992541},"label":"20261203-114157F","lsn":{"start":"0/2000028","stop":"0/2000100"},"prior":null,"reference":null,"timestamp":{"start":1796298117,"stop":1796298121},"type":"full"},{"archive":{"start":"000000010000000000000003","stop":"000000010000000000000004"},"backrest":{"format":5,"version":"2.45"},"database":{"id":1,"repo-key":1},"error":false,"info":{"delta":8458,"repository":{"delta":430,"size":3043463},"size":22992541},"label":"20261203-114157F_20261203-114201I","lsn":{"start":"0/3000028","stop":"0/4000050"},"prior":"20261203-114157F","reference":["20261203-114157F"],"timestamp":{"start":1796298121,"stop":1796298123},"type":"incr"}],"cipher":"none","db":[{"id":1,"repo-key":1,"system-id":7715041660895409199,"version":"15"}],"name":"p","repo":[{"cipher":"none","key":1,"status":{"code":0,"message":"ok"}}],"status":{"code":0,"lock":{"backup":{"held":false}},"message":"ok"}}])";

TEST(ParseBackupInfoTest, ReadsPgBackRest245Output) {
  auto info = ParseBackupInfo(kInfo245, "p");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->error, "");
  ASSERT_EQ(info->backups.size(), 2u);
  const BackupInfo& full = info->backups[0];
  EXPECT_EQ(full.label, "20261203-114157F");
  EXPECT_EQ(full.type, "full");
  EXPECT_EQ(full.startTime, 1796298117);
  EXPECT_EQ(full.stopTime, 1796298121);
  EXPECT_EQ(full.startLsn, "0/2000028");
  EXPECT_EQ(full.stopLsn, "0/2000100");
  EXPECT_EQ(full.databaseSize, 22992541);
  EXPECT_EQ(full.repositorySize, 3043463);
  EXPECT_EQ(info->backups[1].type, "incr");
  EXPECT_EQ(info->backups[1].repositorySize, 430);  // what it added, not the set's total
  EXPECT_EQ(info->archiveMin, "000000010000000000000002");
  EXPECT_EQ(info->archiveMax, "000000010000000000000004");
  EXPECT_EQ(*NewestBackupLabel(kInfo245, "p"), "20261203-114157F_20261203-114201I");
}

TEST(ParseBackupInfoTest, StanzaErrorIsKeptNoValidBackupsIsNot) {
  auto missing = ParseBackupInfo(
      R"([{"name": "demo", "backup": [], "status": {"code": 1, "message": "missing stanza path"}}])", "demo");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->error, "pgbackrest info: stanza demo: missing stanza path");
  auto empty = ParseBackupInfo(
      R"([{"name": "demo", "backup": [], "status": {"code": 2, "message": "no valid backups"}}])", "demo");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->error, "");
  EXPECT_TRUE(empty->backups.empty());
  EXPECT_EQ(ParseBackupInfo("[]", "demo").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ParseBackupInfo("{}", "demo").status().code(), StatusCode::kInvalid);
}

TEST(AgentStatusRepositoryTest, RoundTripsAndIsAbsentUntilRead) {
  AgentStatus status;
  EXPECT_EQ(EncodeAgentStatus(status).find("repository"), std::string::npos);
  status.repository.checkedMs = 1796298130000;
  status.repository.error = "pgbackrest info exited with 41";
  status.repository.archiveMax = "000000010000000000000004";
  status.repository.backups = {{"20261203-114157F", "full", 1796298117, 1796298121, "0/2000028", "0/2000100",
                                22992541, 3043463}};
  auto decoded = DecodeAgentStatus(EncodeAgentStatus(status));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->repository, status.repository);
}

TEST(AgentConfigBackupTest, RetentionRoundTripsAndIsAbsentWhenAllAreKept) {
  AgentConfig config;
  config.role = "primary";
  config.port = 15432;
  config.backupRepositoryPath = "/var/lib/pgrs-backups";
  config.stanza = "demo";
  EXPECT_EQ(EncodeAgentConfig(config).find("backupRetentionFull"), std::string::npos);
  config.backupRetentionFull = 2;
  auto decoded = DecodeAgentConfig(EncodeAgentConfig(config));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->backupRetentionFull, 2);
}

TEST(AgentConfigBackupTest, RepositoryAndStanzaRoundTripAndAreAbsentWithoutBackup) {
  AgentConfig config;
  config.role = "primary";
  config.port = 15432;
  // A set without spec.backup encodes (and so hashes) as before.
  EXPECT_EQ(EncodeAgentConfig(config).find("stanza"), std::string::npos);
  config.backupRepositoryPath = "/var/lib/pgrs-backups";
  config.stanza = "demo";
  auto decoded = DecodeAgentConfig(EncodeAgentConfig(config));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->backupRepositoryPath, "/var/lib/pgrs-backups");
  EXPECT_EQ(decoded->stanza, "demo");
  config.stanza = "";
  // A repository without a stanza is refused.
  EXPECT_EQ(DecodeAgentConfig(EncodeAgentConfig(config)).status().code(), StatusCode::kInvalid);
}

AgentConfig::S3 DemoS3() {
  AgentConfig::S3 s3;
  s3.endpoint = "localhost";
  s3.port = 9000;
  s3.bucket = "pgrs";
  s3.region = "us-east-1";
  s3.key = "AKIAEXAMPLE";
  s3.keySecret = "wJalrXUtnFEMI";
  s3.ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  return s3;
}

TEST(AgentConfigBackupTest, S3RoundTripsWithItsSecrets) {
  AgentConfig config;
  config.role = "primary";
  config.port = 15432;
  config.backupRepositoryPath = "/demo";
  config.stanza = "demo";
  AgentConfig::S3& s3 = config.backupS3.emplace(DemoS3());
  s3.uriStyle = "path";
  s3.verifyTLS = false;
  auto decoded = DecodeAgentConfig(EncodeAgentConfig(config));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  ASSERT_TRUE(decoded->backupS3);
  EXPECT_EQ(*decoded->backupS3, s3);
  // A restore's S3 repository travels the same way, secrets and all.
  config.restore.emplace();
  config.restore->repositoryPath = "/sets";
  config.restore->s3 = DemoS3();
  config.restore->stanza = "old";
  decoded = DecodeAgentConfig(EncodeAgentConfig(config));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->restore, config.restore);
  config.restore->s3->bucket = "";
  EXPECT_EQ(DecodeAgentConfig(EncodeAgentConfig(config)).status().message(),
            "config.restore.s3: endpoint and bucket are required");
  config.restore->s3->bucket = "pgrs";
  config.restore->encryption = true;
  config.restore->cipherPass = "passphrase";
  decoded = DecodeAgentConfig(EncodeAgentConfig(config));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->restore, config.restore);
  config.restore.reset();
  // The secrets are part of the hash: a new key is pushed again.
  const std::string hash = ConfigHash(config);
  config.backupS3->keySecret = "other";
  EXPECT_NE(ConfigHash(config), hash);
  config.backupRepositoryPath = "";
  config.stanza = "";
  EXPECT_EQ(DecodeAgentConfig(EncodeAgentConfig(config)).status().code(), StatusCode::kInvalid);
}

class PgBackRestConfigurationTest : public testing::Test {
 protected:
  void SetUp() override {
    layout_ = InstanceLayout{"demo-1", dir_.path(), "/usr/lib/postgresql", {::getuid(), ::getgid(), "", ""}};
    config_.role = "primary";
    config_.port = 15432;
    config_.superuserPassword = "s3cret";
    config_.stanza = "demo";
    config_.backupRepositoryPath = dir_.path() + "/repo";
  }
  TempDirForTest dir_{"pgrs-archiving"};
  InstanceLayout layout_;
  AgentConfig config_;
};

TEST_F(PgBackRestConfigurationTest, WritesConfigPassfileAndDirectoriesUnderTheInstance) {
  ASSERT_TRUE(WritePgBackRestConfiguration(layout_, config_).ok());
  auto conf = ReadFile(layout_.PgBackRestConfigFile());
  ASSERT_TRUE(conf.ok());
  EXPECT_NE(conf->find("repo1-path=" + dir_.path() + "/repo\n"), std::string::npos) << *conf;
  EXPECT_NE(conf->find("[demo]\npg1-path=" + layout_.DataDir() + "\npg1-port=15432\n"), std::string::npos) << *conf;
  EXPECT_NE(conf->find("spool-path=" + layout_.PgBackRestDir() + "/spool\n"), std::string::npos) << *conf;
  EXPECT_TRUE(HasMode(layout_.PgBackRestConfigFile(), 0600));
  EXPECT_EQ(*ReadFile(layout_.PgBackRestPassfile()), "*:*:*:postgres:s3cret\n");
  EXPECT_TRUE(HasMode(layout_.PgBackRestPassfile(), 0600));
  for (const char* sub : {"spool", "lock", "log"}) EXPECT_TRUE(IsDirectory(layout_.PgBackRestDir() + "/" + sub)) << sub;
  EXPECT_TRUE(IsDirectory(config_.backupRepositoryPath));
  // Idempotent.
  EXPECT_TRUE(WritePgBackRestConfiguration(layout_, config_).ok());
}

TEST_F(PgBackRestConfigurationTest, S3KeysGoIntoTheConfigFileAndTheCaNextToIt) {
  config_.backupRepositoryPath = "/demo";  // inside the bucket: not made here
  const AgentConfig::S3& s3 = config_.backupS3.emplace(DemoS3());
  ASSERT_TRUE(WritePgBackRestConfiguration(layout_, config_).ok());
  auto conf = ReadFile(layout_.PgBackRestConfigFile());
  ASSERT_TRUE(conf.ok());
  EXPECT_NE(conf->find("repo1-type=s3\nrepo1-s3-endpoint=localhost\nrepo1-storage-port=9000\n"), std::string::npos)
      << *conf;
  EXPECT_NE(conf->find("repo1-s3-key-secret=wJalrXUtnFEMI\n"), std::string::npos) << *conf;
  EXPECT_NE(conf->find("repo1-storage-ca-file=" + layout_.PgBackRestCaFile() + "\n"), std::string::npos) << *conf;
  EXPECT_NE(conf->find("repo1-path=/demo\n"), std::string::npos) << *conf;
  EXPECT_TRUE(HasMode(layout_.PgBackRestConfigFile(), 0600));
  EXPECT_EQ(*ReadFile(layout_.PgBackRestCaFile()), s3.ca);
  EXPECT_TRUE(HasMode(layout_.PgBackRestCaFile(), 0600));
  EXPECT_FALSE(PathExists("/demo"));
  // The secrets never reach a command line.
  ProcessSpec spec = PgBackRestProgram(layout_, "127.0.0.1", "demo", {"backup"});
  for (const std::string& arg : spec.argv) EXPECT_EQ(arg.find("wJalrXUtnFEMI"), std::string::npos) << arg;
  // Without a CA the system's are used, and a stale copy goes.
  config_.backupS3->ca = "";
  ASSERT_TRUE(WritePgBackRestConfiguration(layout_, config_).ok());
  EXPECT_FALSE(PathExists(layout_.PgBackRestCaFile()));
  EXPECT_EQ(ReadFile(layout_.PgBackRestConfigFile())->find("repo1-storage-ca-file"), std::string::npos);
}

TEST_F(PgBackRestConfigurationTest, EncryptionPassphraseGoesIntoTheConfigFileOnlyAndIsRequired) {
  config_.backupEncryption = true;
  // Without its passphrase nothing is written: never an unencrypted stanza.
  Status refused = WritePgBackRestConfiguration(layout_, config_);
  EXPECT_EQ(refused.code(), StatusCode::kInvalid);
  EXPECT_EQ(refused.message().rfind("spec.backup.encryption: ", 0), 0u) << refused.message();
  EXPECT_FALSE(PathExists(layout_.PgBackRestConfigFile()));
  config_.backupCipherPass = "k3pt-passphrase";
  ASSERT_TRUE(WritePgBackRestConfiguration(layout_, config_).ok());
  auto conf = ReadFile(layout_.PgBackRestConfigFile());
  ASSERT_TRUE(conf.ok());
  EXPECT_NE(conf->find("repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=k3pt-passphrase\n"), std::string::npos)
      << *conf;
  EXPECT_TRUE(HasMode(layout_.PgBackRestConfigFile(), 0600));
  struct stat st{};
  ASSERT_EQ(::stat(layout_.PgBackRestConfigFile().c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, layout_.postgresUser.uid);
  ProcessSpec spec = PgBackRestProgram(layout_, "127.0.0.1", "demo", {"backup"});
  for (const std::string& arg : spec.argv) EXPECT_EQ(arg.find("k3pt"), std::string::npos) << arg;
  // Round trip, and a new passphrase is a new config.
  auto decoded = DecodeAgentConfig(EncodeAgentConfig(config_));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_TRUE(decoded->backupEncryption);
  EXPECT_EQ(decoded->backupCipherPass, "k3pt-passphrase");
  const std::string hash = ConfigHash(config_);
  config_.backupCipherPass = "other";
  EXPECT_NE(ConfigHash(config_), hash);
  // Unencrypted configs keep their JSON (and hash) as before.
  config_.backupEncryption = false;
  config_.backupCipherPass = "";
  EXPECT_EQ(EncodeAgentConfig(config_).find("Encryption"), std::string::npos);
}

TEST_F(PgBackRestConfigurationTest, ProgramRunsWithTheInstanceConfigAndReachesPostgresOverTcp) {
  ProcessSpec spec = PgBackRestProgram(layout_, "127.0.0.1", "demo", {"backup", "--type=full"});
  EXPECT_EQ(spec.argv, (std::vector<std::string>{"/usr/bin/pgbackrest", "--config=" + layout_.PgBackRestConfigFile(),
                                                 "--stanza=demo", "backup", "--type=full"}));
  EXPECT_EQ(spec.env, (std::vector<std::string>{"PGHOST=127.0.0.1", "PGPASSFILE=" + layout_.PgBackRestPassfile()}));
}

}  // namespace
}  // namespace pgrs::agent
