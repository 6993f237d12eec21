#include "operator/local/repository_secrets.h"

#include "operator/local/s3_credentials.h"
#include "operator/util/files.h"
#include "operator/util/random.h"

namespace pgrs::local {

namespace {

constexpr char kRecovery[] = "spec.bootstrap.recovery";

// The passphrase a restore decrypts the source's repository with.
Result<std::string> RecoveryPassphrase(const api::RecoverySpec& recovery, const std::string& stateDir) {
  const std::string field = kRecovery;
  if (!recovery.encryptionPassphraseSecret.empty()) {
    return Status::Invalid(field + ".encryptionPassphraseSecret: Kubernetes only; in local mode set "
                                   "encryptionPassphraseFile, or leave both unset for the source set's kept passphrase");
  }
  if (recovery.encryptionPassphraseFile.empty()) {
    const std::string kept = BackupKeyFile(stateDir, recovery.source);
    auto text = ReadFile(kept);
    if (!text.ok() || text->empty()) {
      return Status::Invalid(field + ".repository.encryption: no passphrase is kept for set " + recovery.source +
                             " (" + kept + (text.ok() ? " is empty" : ": " + text.status().message()) +
                             "); set " + field + ".encryptionPassphraseFile");
    }
    return *text;
  }
  const std::string where = field + ".encryptionPassphraseFile " + recovery.encryptionPassphraseFile;
  auto text = ReadFile(recovery.encryptionPassphraseFile);
  if (!text.ok()) return text.status().WithContext(where);
  std::string passphrase = *text;
  while (!passphrase.empty() && (passphrase.back() == '\n' || passphrase.back() == '\r')) passphrase.pop_back();
  if (passphrase.empty()) return Status::Invalid(where + ": is empty");
  if (passphrase.find_first_of("\r\n") != std::string::npos) {
    return Status::Invalid(where + ": must hold the passphrase on one line");
  }
  return passphrase;
}

}  // namespace

std::string BackupKeyFile(const std::string& stateDir, const std::string& set) {
  return stateDir + "/backup-keys/" + set;
}

Result<std::string> EnsureBackupKey(const std::string& stateDir, const std::string& set) {
  const std::string path = BackupKeyFile(stateDir, set);
  if (auto kept = ReadFile(path); kept.ok() && !kept->empty()) return *kept;
  PGRS_RETURN_IF_ERROR(MakeDirs(stateDir + "/backup-keys", 0700));
  std::string passphrase = RandomHex(32);
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(path, passphrase, 0600));
  return passphrase;
}

Status ReadRepositorySecrets(const api::PostgresReplicaSet& set, const std::string& stateDir, bool restoring,
                             executor::SetSecrets& secrets) {
  if (set.spec.backup && set.spec.backup->repository.s3) {
    auto s3 = ReadS3Secrets(*set.spec.backup->repository.s3, "spec.backup.repository.s3");
    if (!s3.ok()) return s3.status();
    secrets.s3Key = s3->key;
    secrets.s3KeySecret = s3->keySecret;
    secrets.s3CA = s3->ca;
  }
  if (restoring && set.spec.bootstrap && set.spec.bootstrap->recovery) {
    const api::RecoverySpec& recovery = *set.spec.bootstrap->recovery;
    if (recovery.repository.s3) {
      auto s3 = ReadS3Secrets(*recovery.repository.s3, std::string(kRecovery) + ".repository.s3");
      if (!s3.ok()) return s3.status();
      secrets.restoreS3Key = s3->key;
      secrets.restoreS3KeySecret = s3->keySecret;
      secrets.restoreS3CA = s3->ca;
    }
    if (recovery.repository.encryption.value_or(false)) {
      auto passphrase = RecoveryPassphrase(recovery, stateDir);
      if (!passphrase.ok()) return passphrase.status();
      secrets.restoreCipherPass = *passphrase;
    }
  }
  return Status::Ok();
}

}  // namespace pgrs::local
