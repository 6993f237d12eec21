#include "operator/local/repository_secrets.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include "operator/util/files.h"

namespace pgrs::local {
namespace {

class RepositorySecretsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/pgrs-repository-secrets-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    set_.metadata.name = "restored";
    api::RecoverySpec& recovery = set_.spec.bootstrap.emplace().recovery.emplace();
    recovery.source = "old";
    recovery.repository.path = "/backups";
    recovery.repository.encryption = true;
  }
  void TearDown() override { ASSERT_TRUE(RemoveTree(dir_).ok()); }
  api::RecoverySpec& recovery() { return *set_.spec.bootstrap->recovery; }
  std::string Read(bool restoring, Status* status = nullptr) {
    executor::SetSecrets secrets;
    Status st = ReadRepositorySecrets(set_, dir_, restoring, secrets);
    if (status != nullptr) *status = st;
    return secrets.restoreCipherPass;
  }

  std::string dir_;
  api::PostgresReplicaSet set_;
};

TEST_F(RepositorySecretsTest, TheBackupKeyIsGeneratedOnceKeptPrivateAndOutsideTheSetsDirectory) {
  auto key = EnsureBackupKey(dir_, "demo");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  EXPECT_EQ(key->size(), 64u);
  EXPECT_EQ(key->find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(BackupKeyFile(dir_, "demo"), dir_ + "/backup-keys/demo");
  EXPECT_TRUE(HasMode(BackupKeyFile(dir_, "demo"), 0600));
  EXPECT_TRUE(HasMode(dir_ + "/backup-keys", 0700));
  EXPECT_EQ(*EnsureBackupKey(dir_, "demo"), *key);  // the same passphrase ever after
  EXPECT_NE(*EnsureBackupKey(dir_, "other"), *key);
}

TEST_F(RepositorySecretsTest, ARestoreTakesTheSourcesKeptPassphraseOrTheFileNamed) {
  Status st;
  EXPECT_EQ(Read(true, &st), "");
  EXPECT_EQ(st.message().rfind("spec.bootstrap.recovery.repository.encryption: no passphrase is kept for set old (" +
                                   dir_ + "/backup-keys/old",
                               0),
            0u)
      << st.message();
  const std::string kept = *EnsureBackupKey(dir_, "old");
  EXPECT_EQ(Read(true, &st), kept);
  EXPECT_TRUE(st.ok());
  // A set that has run (restoring false) reads nothing of its recovery.
  EXPECT_EQ(Read(false, &st), "");
  EXPECT_TRUE(st.ok());

  recovery().encryptionPassphraseFile = dir_ + "/old.key";
  EXPECT_EQ(Read(true, &st), "");
  EXPECT_EQ(st.message().rfind("spec.bootstrap.recovery.encryptionPassphraseFile " + dir_ + "/old.key: ", 0), 0u)
      << st.message();
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/old.key", "given passphrase\n", 0600).ok());
  EXPECT_EQ(Read(true, &st), "given passphrase");  // without the line break
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/old.key", "\n", 0600).ok());
  Read(true, &st);
  EXPECT_EQ(st.message(), "spec.bootstrap.recovery.encryptionPassphraseFile " + dir_ + "/old.key: is empty");
  ASSERT_TRUE(WriteFileAtomic(dir_ + "/old.key", "two\nlines\n", 0600).ok());
  Read(true, &st);
  EXPECT_EQ(st.message().find("two"), std::string::npos) << "a passphrase in a message: " << st.message();

  recovery().encryptionPassphraseFile = "";
  recovery().encryptionPassphraseSecret = "old-key";
  Read(true, &st);
  EXPECT_EQ(st.message().rfind("spec.bootstrap.recovery.encryptionPassphraseSecret: Kubernetes only", 0), 0u)
      << st.message();
  // Not encrypted: no passphrase at all.
  recovery().encryptionPassphraseSecret = "";
  recovery().repository.encryption = false;
  EXPECT_EQ(Read(true, &st), "");
  EXPECT_TRUE(st.ok());
}

}  // namespace
}  // namespace pgrs::local
