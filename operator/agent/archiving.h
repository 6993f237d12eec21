// The instance's side of backups (spec.backup): the pgBackRest configuration
// its archive_command and restore_command name, the stanza the primary
// creates, and how any pgBackRest command is run for this instance (as the
// PostgreSQL user, with the environment it needs to reach PostgreSQL).
// Archiving never stops PostgreSQL: a failure is reported, and retried.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "operator/agent/instance_layout.h"
#include "operator/agent/protocol.h"
#include "operator/postgres/pgbackrest.h"
#include "operator/util/process.h"
#include "operator/util/status.h"

namespace pgrs::agent {

inline bool BackupConfigured(const AgentConfig& config) { return !config.backupRepositoryPath.empty(); }

// A repository (a POSIX path, or the path inside an S3 bucket) as
// pgBackRest's repo1, the S3 CA bundle (when it has one) at `caFile`,
// encrypted with `cipherPass` unless it is "".
postgres::PgBackRestRepository PgBackRestRepositoryFor(const std::string& path,
                                                       const std::optional<S3RepositoryConfig>& s3,
                                                       const std::string& caFile, const std::string& cipherPass);
// The repository AgentConfig names (backupRepositoryPath, backupS3), its CA
// bundle at layout.PgBackRestCaFile().
postgres::PgBackRestRepository PgBackRestRepositoryOf(const InstanceLayout& layout, const AgentConfig& config);

// Names a repository for logs, messages and bookkeeping, without secrets:
// the path, or s3://endpoint/bucket/path.
std::string RepositoryName(const std::string& path, const std::optional<S3RepositoryConfig>& s3);
inline std::string RepositoryKey(const AgentConfig& config) {
  return RepositoryName(config.backupRepositoryPath, config.backupS3);
}

// Writes <instanceDir>/pgbackrest/ (pgbackrest.conf, the superuser passfile,
// the S3 CA bundle, spool/, lock/, log/), all owned by the PostgreSQL user
// (files mode 0600: the S3 keys and the encryption passphrase are in
// pgbackrest.conf), and creates a POSIX repository's directory if it is
// missing. Idempotent; a file already as generated is left alone. Invalid
// when spec.backup.encryption has no passphrase (nothing is written).
Status WritePgBackRestConfiguration(const InstanceLayout& layout, const AgentConfig& config);

// The configuration for one stanza and repository with the instance's data
// directory as pg1 and its spool, lock and log directories; written (those
// directories made) to `path` by WritePgBackRestConfigFile.
postgres::PgBackRestConfig PgBackRestConfigFor(const InstanceLayout& layout, int port, const std::string& stanza,
                                               const postgres::PgBackRestRepository& repository);
Status WritePgBackRestConfigFile(const InstanceLayout& layout, const std::string& path,
                                 const postgres::PgBackRestConfig& config);

// `pgbackrest --config=<instance's> --stanza=STANZA ARGS...` as the
// PostgreSQL user, with PGHOST=host and the superuser passfile.
ProcessSpec PgBackRestProgram(const InstanceLayout& layout, const std::string& host, const std::string& stanza,
                              std::vector<std::string> args);

// `text` as one line of printable ASCII of at most 600 bytes (line breaks
// become spaces, other bytes '?'): pgBackRest quotes the bytes of a file it
// could not read (an encrypted one, say) in its messages.
std::string PrintableMessage(const std::string& text);

// The one reader of `pgbackrest info --output=json` text: the backups of
// `stanza` (oldest first) and its archive's WAL range. A stanza status
// other than ok or "no valid backups" goes into error(). NotFound when the
// stanza is not in the text, Invalid when the text is not pgBackRest's.
// checkedMs is left 0 for the caller.
Result<RepositoryInfo> ParseBackupInfo(const std::string& infoJson, const std::string& stanza);

// The newest backup in that text (or its label); NotFound when it has none.
Result<BackupInfo> NewestBackup(const std::string& infoJson, const std::string& stanza);
Result<std::string> NewestBackupLabel(const std::string& infoJson, const std::string& stanza);

// `pgbackrest info --output=json` for the instance: the JSON alone on
// stdout, only an error on stderr.
ProcessSpec PgBackRestInfoProgram(const InstanceLayout& layout, const std::string& host, const std::string& stanza);

// Where `pgbackrest server` listens: the first listen address ("*" when
// none).
std::string BackupServerAddress(const AgentConfig& config);

// Keeps `pgbackrest server` running while the config asks for it
// (backupServerPort, TLS, spec.backup) and PostgreSQL runs: the TLS
// endpoint through which a primary in another Pod backs up this instance's
// files. Started again after it exits (2 s later) and when its certificate
// changes; stopped when no longer wanted.
class BackupServer {
 public:
  explicit BackupServer(const InstanceLayout& layout) : layout_(layout) {}
  ~BackupServer();
  void Poll(const AgentConfig& config, const std::string& host, bool postgresRunning);
  void Stop();
  bool running() const { return child_ > 0; }
  const std::string& error() const { return error_; }

 private:
  const InstanceLayout& layout_;
  pid_t child_ = 0;
  std::string runningFor_;
  std::string error_;
  std::chrono::steady_clock::time_point retryAfter_{};
};

// Runs `pgbackrest stanza-create` for the primary once per repository and
// stanza, in the background (the supervisor must stay free to fence): Poll
// starts it, later Polls reap it. A failure is kept in error() and retried
// after a pause; stanza-create is idempotent, so a new primary after a
// failover runs it again harmlessly.
class StanzaCreator {
 public:
  explicit StanzaCreator(const InstanceLayout& layout) : layout_(layout) {}
  ~StanzaCreator();
  void Poll(const AgentConfig& config, const std::string& host);
  // The last failure, "" when none (or once it succeeded).
  const std::string& error() const { return error_; }
  bool created() const { return !createdFor_.empty(); }
  // True once after each success. PostgreSQL's archiver, whose attempts
  // failed while there was no stanza (a primary promoted before its first
  // stanza-create, or one that met stanza-create's lock), waits 60 s before
  // it tries again; a SIGHUP to the postmaster wakes it at once.
  bool TakeJustCreated() { return std::exchange(justCreated_, false); }

 private:
  void Reap(int waitStatus);

  const InstanceLayout& layout_;
  pid_t child_ = 0;
  std::string runningFor_;  // repository + stanza of the running child
  std::string createdFor_;  // ... of the last success
  bool justCreated_ = false;
  std::string error_;
  std::chrono::steady_clock::time_point retryAfter_{};
};

// Keeps what the repository holds, for the primary's status: runs
// `pgbackrest info` in the background (never blocking the supervisor) every
// 30 s, and within a Poll or two after the repository's backup.info changed
// (a backup or an expire finished; POSIX repositories). info() is the last
// answer; a failed run keeps the backups last seen and sets error.
class RepositoryWatcher {
 public:
  explicit RepositoryWatcher(const InstanceLayout& layout) : layout_(layout) {}
  ~RepositoryWatcher();
  void Poll(const AgentConfig& config, const std::string& host);
  // Not the primary (or no spec.backup) any more: stop and forget.
  void Reset();
  const RepositoryInfo& info() const { return info_; }

  static constexpr std::chrono::seconds kInterval{30};

 private:
  void Reap(int waitStatus);

  const InstanceLayout& layout_;
  pid_t child_ = 0;
  std::string runningFor_;  // repository + stanza of the running child
  std::string infoFor_;     // ... that info_ describes
  RepositoryInfo info_;
  int64_t backupInfoMtimeNs_ = -1;
  std::chrono::steady_clock::time_point nextRun_{};
};

}  // namespace pgrs::agent
