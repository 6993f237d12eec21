// Local mode's secrets of the pgBackRest repositories a set names, read from
// files (Kubernetes reads Secrets instead): spec.backup.repository.s3's keys
// and CA bundle, the passphrase spec.backup.encryption encrypts the set's
// stanza with and, while the set is still to be restored,
// spec.bootstrap.recovery's S3 secrets and passphrase. The runtime's
// Secrets() and `pgrs local apply`'s checks share these readers.
//
//   DIR/backup-keys/<set>   the set's repository passphrase (0600, in a 0700
//                           directory). Not under DIR/sets/<set>: it stays
//                           when the set is deleted, as the repository does,
//                           and a restore of the set's backups needs it.
#pragma once

#include <string>

#include "operator/api/types.h"
#include "operator/executor/runtime.h"
#include "operator/util/status.h"

namespace pgrs::local {

std::string BackupKeyFile(const std::string& stateDir, const std::string& set);

// The set's repository passphrase, generated on first use (32 bytes from
// OpenSSL's CSPRNG, as hex) and kept in BackupKeyFile.
Result<std::string> EnsureBackupKey(const std::string& stateDir, const std::string& set);

// Fills the S3 fields of `secrets` (s3*, restoreS3*) and restoreCipherPass.
// `restoring`: the recovery repository's are read too (only a set that has
// not run yet restores, and its files may be gone later). The recovery
// passphrase is spec.bootstrap.recovery.encryptionPassphraseFile's text
// (without a trailing line break), or the source set's kept one. Errors
// name the field path and the file, never a value.
Status ReadRepositorySecrets(const api::PostgresReplicaSet& set, const std::string& stateDir, bool restoring,
                             executor::SetSecrets& secrets);

}  // namespace pgrs::local
