// What the controller and an instance agent say to each other over HTTP.
//   PUT /config   AgentConfig: the instance's desired state (role, upstream,
//                 parameters, secrets). The agent converges to it on its own.
//   GET /status   AgentStatus: what the agent knows about its instance.
//   GET /healthz  liveness, no token.
//   POST /backup  BackupRequest: take a pgBackRest backup of this instance
//                 (its primary); answered with the BackupJob.
//   GET /backup   BackupJob: the running or the last backup.
// Pure data and JSON codecs; no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "operator/util/status.h"

namespace pgrs::agent {

// An S3 bucket as a pgBackRest repository (spec.backup.repository.s3,
// spec.bootstrap.recovery.repository.s3); the repository's path is beside it.
struct S3RepositoryConfig {
  std::string endpoint;  // a host
  int port = 0;          // 0: HTTPS's 443
  std::string bucket;
  std::string region;
  std::string uriStyle = "host";
  bool verifyTLS = true;
  // Secrets, filled in by the executor (never by reconcilers, never
  // logged): the access keys, and the CA bundle (PEM text; "" = the
  // system's CAs).
  std::string key;
  std::string keySecret;
  std::string ca;
  bool operator==(const S3RepositoryConfig&) const = default;
};

// A primary whose data directory does not exist yet is restored from this
// pgBackRest repository and stanza instead of initialized (a new set's
// spec.bootstrap.recovery), recovering to at most one target (none = the
// end of the archive) and then promoted.
struct RestoreConfig {
  std::string repositoryPath;  // a POSIX directory, or the path inside s3's bucket
  std::optional<S3RepositoryConfig> s3;
  std::string stanza;  // the set whose backups these are
  std::string targetTime;  // RFC 3339
  std::string targetLsn;   // "X/Y"
  std::string targetName;  // a restore point
  bool targetImmediate = false;
  // The repository's files are encrypted (spec.bootstrap.recovery.repository.encryption);
  // cipherPass is their passphrase, a secret filled in by the executor.
  bool encryption = false;
  std::string cipherPass;
  bool operator==(const RestoreConfig&) const = default;
};

// TLS for the instance (spec.tls.enabled): PEM texts, secrets filled in by
// the executor (never by reconcilers, never logged). The agent writes them
// to files of its own beside the data directory.
struct TlsConfig {
  std::string ca;               // the set's CA: verifies servers and client certificates
  std::string serverCert;       // this instance's server certificate
  std::string serverKey;
  std::string replicationCert;  // a standby's client certificate (CN = the replication role)
  std::string replicationKey;
  bool operator==(const TlsConfig&) const = default;
};

struct AgentConfig {
  std::string role;  // "primary" | "standby"
  int majorVersion = 15;
  std::string listenAddresses = "127.0.0.1";
  int port = 0;
  std::map<std::string, std::string> parameters;
  std::vector<std::string> pgHBA;
  std::vector<std::string> clientNetworks;
  std::string replicationUser = "pgrs_replication";
  // Standby only: where to stream from, and the slot to use there.
  std::string upstreamHost;
  int upstreamPort = 0;
  std::string slotName;
  std::string synchronousStandbyNames;  // primary only
  // spec.replication.maxSlotWalKeepSize ("512MB", "-1"); empty = not
  // written. replicationSlots: spec.replication.slots (a bound on slots also
  // caps wal_keep_size only when standbys use them).
  std::string maxSlotWalKeepSize;
  bool replicationSlots = true;
  // spec.postgres.dataChecksums: initdb --data-checksums for a new primary.
  bool dataChecksums = true;
  // Fencing: stop PostgreSQL and keep it stopped. "immediate" kills the
  // postmaster's process group (a lost primary must not commit one more
  // transaction); "fast" is a fast shutdown, which first streams the last
  // WAL to connected standbys (a switchover loses nothing).
  bool fenced = false;
  std::string fenceMode = "immediate";
  // Whether the agent restarts a crashed postmaster by itself. A crashed
  // primary waits for the controller to choose between failover and a
  // restart in place, unless this says otherwise.
  bool restartOnCrash = true;
  // Primary only: a planned hand-over would follow if this agent shut down
  // (failover is enabled and a standby could take over). Told SIGTERM, an
  // agent started with a hand-over budget then keeps PostgreSQL running
  // until the controller has moved the primary away, instead of stopping it.
  bool handoverOnShutdown = false;
  // The primary lease ("file:/path"), and its timing. Filled in by the
  // executor from the runtime; a primary runs only while it holds it.
  std::string lease;
  int leaseDurationSeconds = 5;
  int renewDeadlineSeconds = 3;
  int retryPeriodSeconds = 1;
  // Backups (spec.backup): the pgBackRest repository (repo1-path) and the
  // stanza (the set's name). Empty = no archiving; both or neither.
  std::string backupRepositoryPath;
  std::string stanza;
  int backupRetentionFull = 0;  // full backups kept (repo1-retention-full); 0 = all
  // Standby only: a new data directory is restored from the newest backup
  // of this set's stanza (spec.backup.bootstrapStandbys), pg_basebackup
  // while there is none.
  bool standbyFromRepository = false;
  // Primary only, while the set has never run: restore instead of initdb.
  std::optional<RestoreConfig> restore;
  // spec.backup.repository.s3: the repository is backupRepositoryPath inside
  // this bucket. Unset: backupRepositoryPath is a POSIX directory.
  using S3 = S3RepositoryConfig;
  std::optional<S3> backupS3;
  // spec.backup.encryption: the repository's files are encrypted with
  // backupCipherPass, a secret filled in by the executor (never by
  // reconcilers, never logged). The agent refuses to write an unencrypted
  // configuration when it is missing.
  bool backupEncryption = false;
  std::string backupCipherPass;
  // spec.tls.enabled: ssl = on, hostssl only, verify-full everywhere. The
  // reconciler sets an empty one; the executor fills it in.
  std::optional<TlsConfig> tls;
  // Secrets, filled in by the executor (never by reconcilers, never logged).
  std::string superuserPassword;
  std::string replicationPassword;
};

// Agent states, in the order an instance usually goes through them.
inline constexpr char kStateWaitingForConfig[] = "WaitingForConfig";
inline constexpr char kStateInitializing[] = "Initializing";  // initdb
inline constexpr char kStateCloning[] = "Cloning";            // pg_basebackup
inline constexpr char kStateRestoring[] = "Restoring";        // pgbackrest restore, then archive recovery
inline constexpr char kStateStarting[] = "Starting";
inline constexpr char kStateRunning[] = "Running";
inline constexpr char kStateRestarting[] = "Restarting";
inline constexpr char kStateFailed[] = "Failed";  // the last attempt failed; retrying
inline constexpr char kStateStopping[] = "Stopping";
inline constexpr char kStateFenced[] = "Fenced";          // stopped on purpose, kept stopped
inline constexpr char kStatePrimaryDown[] = "PrimaryDown";  // the primary crashed; waiting for the controller
inline constexpr char kStatePromoting[] = "Promoting";
inline constexpr char kStateRewinding[] = "Rewinding";    // pg_rewind, to rejoin as a standby

// One backup as `pgbackrest info` lists it.
struct BackupInfo {
  std::string label;
  std::string type;  // full | diff | incr
  int64_t startTime = 0;  // Unix seconds
  int64_t stopTime = 0;
  std::string startLsn;  // "X/Y"
  std::string stopLsn;
  int64_t databaseSize = 0;    // info.size: the database it holds
  int64_t repositorySize = 0;  // info.repository.delta: what it added to the repository

  bool operator==(const BackupInfo&) const = default;
};

// What the primary's agent last read from the repository with `pgbackrest
// info` (spec.backup only).
struct RepositoryInfo {
  int64_t checkedMs = 0;   // Unix ms when the last run finished; 0 = none yet
  std::string error;       // its failure ("" when it answered)
  std::vector<BackupInfo> backups;  // oldest first
  std::string archiveMin;  // oldest and newest WAL segment in the archive
  std::string archiveMax;
  std::string postgresVersion;  // major of the stanza's current database ("15"); "" when none

  bool operator==(const RepositoryInfo&) const = default;
};

struct AgentStatus {
  std::string name;
  std::string state;
  std::string role;          // desired role, from the last config
  std::string dataDirRole;   // what the data directory says: primary | standby | "" (none)
  bool dataDirExists = false;
  bool postgresRunning = false;  // a postmaster we supervise is alive
  bool postgresReady = false;    // it accepts connections
  int64_t postmasterPid = 0;
  int restarts = 0;              // postmaster restarts after a crash
  std::string lastExit;          // how the postmaster last ended
  std::string progress;          // e.g. "clone 12345/23732 kB (52%)"
  std::string lastError;
  std::string configHash;        // ConfigHash() of the config being applied
  int majorVersion = 0;          // from PG_VERSION
  bool fenced = false;           // PostgreSQL stopped on purpose and kept stopped
  uint64_t checkpointLsn = 0;    // stopped: the last checkpoint's LSN (pg_controldata)
  int timeline = 0;              // stopped: the last checkpoint's timeline
  int64_t lastRenewMs = 0;       // primary: when the lease was last renewed
  bool shuttingDown = false;     // told to stop (SIGTERM): a planned stop, not a crash
  RepositoryInfo repository;     // primary with spec.backup: the repository's backups
};

// POST /backup: a backup the controller asks the primary's agent to take
// (a PostgresBackup). The id names the request: asked again with the same
// id, the agent answers the job it has instead of starting another.
struct BackupRequest {
  std::string id;
  std::string type;  // full | diff | incr
  bool operator==(const BackupRequest&) const = default;
};

// Backup job states.
inline constexpr char kBackupRunning[] = "Running";
inline constexpr char kBackupCompleted[] = "Completed";
inline constexpr char kBackupFailed[] = "Failed";

// A backup the agent runs (one at a time) or ran last; kept in memory only:
// an agent that restarts forgets it (asked again, pgBackRest resumes).
struct BackupJob {
  std::string id;
  std::string type;
  std::string state;  // kBackupRunning | kBackupCompleted | kBackupFailed
  std::string label;  // Completed: the backup's pgBackRest label
  std::string error;  // Failed: why
  std::string progress;  // Running: what it is doing, e.g. "backing up bk from primary bk-1 (full)"
  int64_t startedMs = 0;   // Unix ms
  int64_t finishedMs = 0;  // Unix ms; 0 while it runs
  std::optional<BackupInfo> backup;  // Completed: as `pgbackrest info` lists it
  bool operator==(const BackupJob&) const = default;
};

// full, diff or incr: the types pgBackRest's --type takes.
bool ValidBackupType(const std::string& type);

std::string EncodeAgentConfig(const AgentConfig& config);
Result<AgentConfig> DecodeAgentConfig(const std::string& json);
std::string EncodeAgentStatus(const AgentStatus& status);
Result<AgentStatus> DecodeAgentStatus(const std::string& json);
std::string EncodeBackupRequest(const BackupRequest& request);
// Invalid (naming the field) when the id is empty or the type not full,
// diff or incr.
Result<BackupRequest> DecodeBackupRequest(const std::string& json);
std::string EncodeBackupJob(const BackupJob& job);
Result<BackupJob> DecodeBackupJob(const std::string& json);
// Identifies a config; equal configs have equal hashes (secrets included).
std::string ConfigHash(const AgentConfig& config);

}  // namespace pgrs::agent
