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

TEST_F(PgBackRestConfigurationTest, ProgramRunsWithTheInstanceConfigAndReachesPostgresOverTcp) {
  ProcessSpec spec = PgBackRestProgram(layout_, "127.0.0.1", "demo", {"backup", "--type=full"});
  EXPECT_EQ(spec.argv, (std::vector<std::string>{"/usr/bin/pgbackrest", "--config=" + layout_.PgBackRestConfigFile(),
                                                 "--stanza=demo", "backup", "--type=full"}));
  EXPECT_EQ(spec.env, (std::vector<std::string>{"PGHOST=127.0.0.1", "PGPASSFILE=" + layout_.PgBackRestPassfile()}));
}

}  // namespace
}  // namespace pgrs::agent
