// The PostgresReplicaSet API (pgrs.dev/v1alpha1): spec, status, and the
// conversions every layer shares. Manifests and stored objects are read
// through DecodeReplicaSet (YAML or JSON text; unknown fields are errors),
// completed by ApplyDefaults (the one place defaults live) and checked by
// Validate (every error names its field path). Encoding goes to JSON
// (web::json) and from there to YAML for people.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "operator/util/status.h"

namespace pgrs::api {

inline constexpr char kGroup[] = "pgrs.dev";
inline constexpr char kVersion[] = "v1alpha1";
inline constexpr char kApiVersion[] = "pgrs.dev/v1alpha1";
inline constexpr char kKind[] = "PostgresReplicaSet";

inline constexpr int kMinInstances = 1;
inline constexpr int kMaxInstances = 16;
inline constexpr int kMinPostgresVersion = 11;
inline constexpr int kMaxPostgresVersion = 17;
inline constexpr int kDefaultPostgresVersion = 15;
inline constexpr int kDefaultBasePort = 15432;
// Half the default volume (spec.storage.size 1Gi), so that WAL kept for a
// standby that is gone cannot fill it.
inline constexpr char kDefaultMaxSlotWalKeepSize[] = "512MB";
inline constexpr int64_t kMinMaxSlotWalKeepSizeMegabytes = 16;  // one WAL segment
// Leaves room for the longest derived name ("<name>-16", slot names) within
// Kubernetes' 63-character label and PostgreSQL's 63-byte identifier limits.
inline constexpr int kMaxNameLength = 50;
// spec.tls.certificateValidity: 90 days, as cert-manager's default; the
// set's CA is valid for ten years (kCertificateAuthorityValidity). A
// certificate is valid for at least a minute and less than its CA.
inline constexpr char kDefaultCertificateValidity[] = "2160h";
inline constexpr std::chrono::seconds kCertificateAuthorityValidity{87600LL * 3600};
inline constexpr std::chrono::seconds kMinCertificateValidity{60};
inline constexpr std::chrono::seconds kMaxCertificateValidity{8760LL * 3600};
// pgBackRest's own limit of repo1-retention-full.
inline constexpr int kMaxRetentionFull = 9999999;

struct ObjectMeta {
  std::string name;
  std::string namespace_;  // "namespace" in YAML/JSON; empty in local mode
  std::string uid;
  std::string resourceVersion;
  int64_t generation = 0;
  std::string creationTimestamp;  // RFC 3339, UTC
  std::string deletionTimestamp;  // set when deletion was requested
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;

  bool operator==(const ObjectMeta&) const = default;
};

struct PostgresSpec {
  int version = 0;  // 0 = unset; defaulted to kDefaultPostgresVersion
  // postgresql.conf parameters. Values are kept as the user wrote them.
  std::map<std::string, std::string> parameters;
  // Extra pg_hba.conf lines, appended after the rules pgrs owns.
  std::vector<std::string> pgHBA;
  // initdb --data-checksums for new data directories; defaulted to true.
  // Only a new primary's initdb reads it (standbys are clones of their
  // primary, so they always match it): changing it does not convert an
  // existing data directory.
  std::optional<bool> dataChecksums;

  bool operator==(const PostgresSpec&) const = default;
};

struct ReplicationSpec {
  std::string mode;                 // "async" | "sync"; defaulted to "async"
  std::optional<int> syncReplicas;  // defaulted to 1; used (and checked) in sync mode only
  std::optional<bool> slots;        // defaulted to true
  // Sync mode only, defaulted to "required". "required": k standbys stay
  // named in synchronous_standby_names even when fewer are healthy, so
  // writes wait and no acknowledged commit is ever lost. "preferred": k is
  // lowered to the healthy standbys, so writes go on.
  std::string dataDurability;
  // The most WAL the primary keeps for a standby's slot
  // (max_slot_wal_keep_size, PostgreSQL 13+): "512MB", "2GB", or "-1" for
  // no bound. Defaulted to kDefaultMaxSlotWalKeepSize. A standby further
  // behind loses its slot and is brought back from the archive or cloned
  // again.
  std::string maxSlotWalKeepSize;

  bool operator==(const ReplicationSpec&) const = default;
};

struct FailoverSpec {
  std::optional<bool> enabled;         // defaulted to true
  std::optional<int> delaySeconds;     // defaulted to 0
  std::optional<int64_t> maxLagBytes;  // unset = no limit
  // How long a primary that answers neither through its agent nor through
  // PostgreSQL is waited for before it counts as lost. 1..300, defaulted to 5.
  std::optional<int> detectionSeconds;
  // The primary lease, renewed by the primary's agent: how long one renewal
  // stays valid. 3..300 (room for 1 <= retry < renew < lease), defaulted to 5.
  std::optional<int> leaseDurationSeconds;
  // The agent stops its PostgreSQL when it could not renew the lease for
  // this long, before the lease runs out and another instance may be
  // promoted. Less than leaseDurationSeconds, defaulted to 3.
  std::optional<int> renewDeadlineSeconds;
  // How often the agent renews the lease. At least 1 and less than
  // renewDeadlineSeconds, defaulted to 1.
  std::optional<int> retryPeriodSeconds;

  bool operator==(const FailoverSpec&) const = default;
};

struct StorageSpec {
  std::string size;  // Kubernetes quantity, defaulted to "1Gi"
  std::string storageClassName;

  bool operator==(const StorageSpec&) const = default;
};

struct LocalSpec {
  std::optional<int> basePort;  // instance N listens on basePort + N - 1

  bool operator==(const LocalSpec&) const = default;
};

// An S3 (or S3-compatible) bucket as pgBackRest's repo1. pgBackRest speaks
// HTTPS only. The access keys come from credentialsFile in local mode (two
// lines, AWS_ACCESS_KEY_ID=... and AWS_SECRET_ACCESS_KEY=...) and from
// credentialsSecret in Kubernetes (same two keys); the CA bundle that
// verifies the endpoint from caFile / caSecret (PEM; unset: the system's).
struct S3RepositorySpec {
  std::string endpoint;  // host or host:port, no scheme
  std::string bucket;
  std::string region;
  std::string uriStyle;  // host (bucket.endpoint) | path (endpoint/bucket); defaulted to host
  std::string path;      // the repository inside the bucket, absolute; defaulted to /
  std::string credentialsFile;    // local mode
  std::string caFile;             // local mode
  std::string credentialsSecret;  // Kubernetes: a Secret in the set's namespace
  std::string caSecret;           // Kubernetes: a Secret with key ca.crt
  std::optional<bool> verifyTLS;  // defaulted to true

  bool operator==(const S3RepositorySpec&) const = default;
};

// Where backups and the WAL archive go (pgBackRest's repo1): exactly one of
// a POSIX repository — path: a directory in local mode, which pgrs creates
// if missing (the PostgreSQL OS user must be able to write it);
// volumeClaim: in Kubernetes, a ReadWriteMany PersistentVolumeClaim of the
// set's namespace, mounted in every instance Pod at kRepositoryMountPath —
// and s3.
struct BackupRepositorySpec {
  std::string path;         // absolute; local mode
  std::string volumeClaim;  // a PVC name; Kubernetes
  std::optional<S3RepositorySpec> s3;

  bool operator==(const BackupRepositorySpec&) const = default;
};

// Where instance Pods mount a volumeClaim repository (its repo1-path): the
// set's own (spec.backup), and the one a new set is restored from
// (spec.bootstrap.recovery; the same claim may be mounted at both).
inline constexpr char kRepositoryMountPath[] = "/var/lib/pgrs-repository";
inline constexpr char kRestoreRepositoryMountPath[] = "/var/lib/pgrs-restore-repository";

// How many backups the repository keeps.
struct BackupRetentionSpec {
  // Full backups kept (pgBackRest repo1-retention-full): the expire after
  // each backup removes older fulls, the backups that depend on them and
  // the WAL only they need. Unset = keep every backup. At least 1.
  std::optional<int> full;

  bool operator==(const BackupRetentionSpec&) const = default;
};

// When `pgrs local run` takes backups by itself: 5-field cron expressions
// (minute hour day-of-month month day-of-week, UTC; see
// operator/util/cron.h). Each is optional; "" = not scheduled. When two are
// due in the same minute only the bigger runs (full > differential >
// incremental).
struct BackupScheduleSpec {
  std::string full;
  std::string differential;
  std::string incremental;

  bool operator==(const BackupScheduleSpec&) const = default;
};

// Backups with pgBackRest (one stanza per set, named after it). When set,
// every instance archives with archive-push (only the primary does, as
// PostgreSQL's archive_mode=on means) and standbys restore from the archive;
// absent, nothing about backups is configured.
struct BackupSpec {
  BackupRepositorySpec repository;
  // Take backups from a streaming standby (pgBackRest backup-standby), so
  // the primary does not carry the read load; the primary when none
  // streams. Defaulted to true.
  std::optional<bool> fromStandby;
  BackupRetentionSpec retention;
  // New standbys (scale-up, a re-clone) are restored from the newest backup
  // in the repository and catch up from the archive, then by streaming,
  // instead of copying the primary with pg_basebackup; without a backup
  // yet, pg_basebackup. Defaulted to false (see the README for why).
  std::optional<bool> bootstrapStandbys;
  BackupScheduleSpec schedule;
  // Encrypt the repository's files (pgBackRest repo1-cipher-type
  // aes-256-cbc) with a passphrase pgrs generates and keeps (local mode:
  // DIR/backup-keys/<set>, kept when the set is deleted). Defaulted to
  // false; cannot change once the set exists.
  std::optional<bool> encryption;

  bool operator==(const BackupSpec&) const = default;
};

// Where a restore stops replaying WAL: at most one of these; none = the end
// of the archive. time is RFC 3339 ("2026-12-03T10:00:00Z", fractions and
// offsets as PostgreSQL reads them), lsn "X/Y", name a restore point made
// with pg_create_restore_point(), immediate the end of the backup itself.
struct RecoveryTargetSpec {
  std::string time;
  std::string lsn;
  std::string name;
  bool immediate = false;

  bool operator==(const RecoveryTargetSpec&) const = default;
};

// A new set whose first primary is restored from a pgBackRest repository
// (the stanza `source`, the name of the set that was backed up, which may
// exist still or be long gone) and recovered to `target`, then promoted on
// a new timeline. Only when the set is created: it cannot be added, changed
// or removed later.
// The repository a restore reads: a BackupRepositorySpec, plus whether its
// files are encrypted (the source set's spec.backup.encryption).
struct RecoveryRepositorySpec : BackupRepositorySpec {
  std::optional<bool> encryption;  // defaulted to false

  bool operator==(const RecoveryRepositorySpec&) const = default;
};

struct RecoverySpec {
  std::string source;
  RecoveryRepositorySpec repository;
  std::optional<RecoveryTargetSpec> target;
  // With repository.encryption, where the passphrase comes from: a file
  // holding it (local mode; unset, the source set's kept passphrase,
  // DIR/backup-keys/<source>), or a Secret with key passphrase (Kubernetes).
  // At most one.
  std::string encryptionPassphraseFile;
  std::string encryptionPassphraseSecret;

  bool operator==(const RecoverySpec&) const = default;
};

// How the first primary of a new set gets its data: initdb (no bootstrap,
// the default) or a restore (recovery).
struct BootstrapSpec {
  std::optional<RecoverySpec> recovery;

  bool operator==(const BootstrapSpec&) const = default;
};

// TLS for every connection into PostgreSQL (clients, standbys, pgrs
// itself): a CA per set, made by pgrs, and the certificates it issues and
// renews. Off, connections are in clear text (and pg_hba admits `host`).
struct TlsSpec {
  std::optional<bool> enabled;  // defaulted to true
  // How long a certificate pgrs issues is valid (a duration: "2160h",
  // "90m"); renewed at two thirds of it. Defaulted to 2160h (90 days).
  std::string certificateValidity;

  bool operator==(const TlsSpec&) const = default;
};

struct ReplicaSetSpec {
  std::optional<int> instances;  // 1..16, defaulted to 1
  PostgresSpec postgres;
  ReplicationSpec replication;
  FailoverSpec failover;
  std::string primary;  // wanted primary; empty = the operator's choice
  StorageSpec storage;
  LocalSpec local;
  std::optional<BackupSpec> backup;  // unset = no archiving, no backups
  std::optional<BootstrapSpec> bootstrap;  // unset = initdb
  TlsSpec tls;

  bool operator==(const ReplicaSetSpec&) const = default;
};

// spec.tls.certificateValidity as a duration (its default when unset).
std::chrono::seconds CertificateValidity(const ReplicaSetSpec& spec);

// Kubernetes API conventions: type, status True/False/Unknown, CamelCase
// reason, human message, lastTransitionTime (RFC 3339).
struct Condition {
  std::string type;
  std::string status;
  std::string reason;
  std::string message;
  std::string lastTransitionTime;
  int64_t observedGeneration = 0;

  bool operator==(const Condition&) const = default;
};

struct InstanceStatus {
  std::string name;
  std::string role;   // "primary" | "standby" | "" (unknown yet)
  std::string state;  // "Pending" | "Initializing" | "Cloning" | "Starting" | "Running" | "Streaming" | "Down" | "Deleting" ...
  std::string host;
  int port = 0;
  std::string lsn;  // "X/X": current (primary) or replayed (standby) LSN
  std::optional<int64_t> lagBytes;
  std::optional<double> lagSeconds;
  std::string syncState;  // from pg_stat_replication: async | sync | potential | quorum
  int timeline = 0;
  std::string message;  // last error or progress, for people
  bool fenced = false;  // kept from accepting writes (an old primary during failover)

  bool operator==(const InstanceStatus&) const = default;
};

struct ConnectionStatus {
  std::string readWrite;  // libpq connection string to the primary
  std::string readOnly;   // libpq connection string preferring standbys
  // With spec.tls: the CA that verifies the servers (sslmode=verify-full):
  // in Kubernetes the Secret NAME-ca (key ca.crt), in local mode the file
  // the strings name as sslrootcert.
  std::string caSecret;
  std::string caFile;

  bool operator==(const ConnectionStatus&) const = default;
};

// promotionReason of a planned move of the primary: a switchover to
// spec.primary, and the hand-over of a primary whose agent is shutting down
// (its Pod deleted, evicted or drained). Planned moves stop the old primary
// with a fast shutdown and promote only once the new one has all of its WAL.
inline constexpr char kReasonSwitchover[] = "Switchover";
inline constexpr char kReasonShutdown[] = "Shutdown";
inline bool IsPlannedPromotion(const std::string& reason) {
  return reason == kReasonSwitchover || reason == kReasonShutdown;
}

// One completed failover or switchover, as kept in status.failovers.
struct FailoverRecord {
  std::string time;    // RFC 3339 UTC with milliseconds: when `to` was promoted
  std::string from;    // the primary before
  std::string to;      // the primary after
  std::string reason;  // as promotionReason: "PostmasterDown", "Unresponsive", "LeaseExpired", "Switchover", "Shutdown"
  double unavailableSeconds = 0;  // how long no primary accepted writes
  int timeline = 0;               // the timeline `to` started
  bool operator==(const FailoverRecord&) const = default;
};

// One backup in the repository (pgbackrest info), as in status.backup.
struct BackupRecord {
  std::string label;      // 20261203-103012F, 20261203-103012F_20261203-103512I
  std::string type;       // full | diff | incr
  std::string startTime;  // RFC 3339 UTC
  std::string stopTime;
  std::string startLsn;   // "X/Y"
  std::string stopLsn;
  int64_t databaseSize = 0;    // bytes of the database it holds
  int64_t repositorySize = 0;  // bytes it takes in the repository (compressed)

  bool operator==(const BackupRecord&) const = default;
};

// The last backup spec.backup.schedule started.
struct ScheduledBackupRun {
  std::string type;           // full | diff | incr
  std::string scheduledTime;  // the cron time it ran for, RFC 3339 UTC
  std::string startTime;
  std::string stopTime;       // "" while it runs
  std::string outcome;        // Running | Succeeded | Failed
  std::string label;          // when it succeeded
  std::string message;        // why it failed

  bool operator==(const ScheduledBackupRun&) const = default;
};

// Per schedule, the cron time it last fired for (or, the first time the
// controller saw the schedule, when it started counting): the next run is
// the schedule's first time after it. RFC 3339 UTC; "" = not scheduled.
struct BackupScheduleTimes {
  std::string full;
  std::string differential;
  std::string incremental;

  bool operator==(const BackupScheduleTimes&) const = default;
};

// status.backup: what the repository holds and how archiving goes.
struct BackupStatus {
  std::vector<BackupRecord> backups;  // oldest first
  // The recoverable window: from the oldest backup's end to the newest
  // archived WAL (or the newest backup's end when nothing was archived
  // since). RFC 3339 UTC; empty while there is no backup.
  std::string firstRecoverableTime;
  std::string lastRecoverableTime;
  // pg_stat_archiver on the primary.
  std::string lastArchivedWal;
  std::string lastArchivedTime;
  std::string lastFailedWal;
  std::string lastFailedTime;
  int64_t archiveFailedCount = 0;  // since the primary's statistics were reset
  bool archivingFailing = false;   // the last attempt failed (after the last success)
  std::string repositoryError;     // pgbackrest info's failure, "" when it answered
  std::string repositoryCheckedTime;  // when the primary's agent last read the repository
  BackupScheduleTimes lastScheduled;  // spec.backup.schedule's bookkeeping
  std::optional<ScheduledBackupRun> lastScheduledBackup;

  bool operator==(const BackupStatus&) const = default;
};

struct ReplicaSetStatus {
  std::string phase;
  std::string currentPrimary;
  std::string targetPrimary;
  // Why targetPrimary differs from currentPrimary ("PostmasterDown",
  // "Unresponsive", "LeaseExpired", "Switchover", "Shutdown"); empty
  // otherwise. See IsPlannedPromotion.
  std::string promotionReason;
  std::string promotionStarted;  // RFC 3339 UTC with ms: when the failover or switchover began
  std::string primaryLostSince;  // RFC 3339 UTC with ms; empty while the primary is healthy
  int timeline = 0;
  int readyInstances = 0;
  std::vector<InstanceStatus> instances;
  ConnectionStatus connection;
  std::vector<Condition> conditions;
  std::vector<FailoverRecord> failovers;  // the last ones, newest last
  int64_t observedGeneration = 0;
  // The largest lagBytes of any standby (printer column "Max Lag"); unset
  // while no standby reports one.
  std::optional<int64_t> maxLagBytes;
  // Kubernetes only: the label selector of the set's Pods, for the scale
  // subresource ("pgrs.dev/set=NAME").
  std::string selector;
  // With spec.backup: the repository's backups and the archiver's health.
  std::optional<BackupStatus> backup;

  bool operator==(const ReplicaSetStatus&) const = default;
};

struct PostgresReplicaSet {
  ObjectMeta metadata;
  ReplicaSetSpec spec;
  ReplicaSetStatus status;

  bool operator==(const PostgresReplicaSet&) const = default;
};

// One validation problem: `path` is the field path ("spec.instances",
// "spec.postgres.parameters.port"), `message` what is wrong with it.
struct FieldError {
  std::string path;
  std::string message;
  std::string ToString() const { return path + ": " + message; }  // "spec.instances: must be between 1 and 16"
  bool operator==(const FieldError&) const = default;
};

// Parses YAML or JSON text holding one PostgresReplicaSet. Checks apiVersion,
// kind, metadata.name and the shape of every field (types, unknown fields).
// A status present in the text is decoded too (stored objects carry one).
// On failure returns all errors found, never a partial object.
struct DecodeResult {
  std::optional<PostgresReplicaSet> object;
  std::vector<FieldError> errors;
};
DecodeResult DecodeReplicaSet(const std::string& text);

// Fills every unset field of the spec with its default. Idempotent.
void ApplyDefaults(ReplicaSetSpec& spec);

// Checks a defaulted object: ranges, enums, cross-field rules, names, and
// parameters that pgrs owns. Empty = valid.
std::vector<FieldError> Validate(const PostgresReplicaSet& object);

// What may not change when `updated` replaces the stored `existing` (same
// name): spec.bootstrap, which only a new set uses, and
// spec.backup.encryption, which pgBackRest cannot change in a stanza that
// exists. Empty = allowed.
std::vector<FieldError> ValidateUpdate(const PostgresReplicaSet& existing, const PostgresReplicaSet& updated);

// What one mode cannot run, for a spec Validate accepts: a repository of the
// other mode (a local path in Kubernetes, where a Pod's files are lost with
// it; a volumeClaim in local mode), the other mode's secrets (files in
// Kubernetes, Secrets in local mode), and spec.backup.encryption in
// Kubernetes (its passphrase Secret is not made there yet).
enum class Mode { kLocal, kKubernetes };
std::vector<FieldError> ValidateForMode(const PostgresReplicaSet& object, Mode mode);

// spec.backup.repository.s3.endpoint: host[:port] (port 0 when absent), or
// nullopt when it is not one.
struct Endpoint {
  std::string host;
  int port = 0;
};
std::optional<Endpoint> ParseEndpoint(const std::string& text);

// Decode, default and validate in one step, the way `apply` uses it. Errors
// are formatted "postgresreplicaset NAME: PATH: MESSAGE" (NAME may be
// "<unknown>" when the name itself could not be read).
struct ParseResult {
  std::optional<PostgresReplicaSet> object;
  std::vector<std::string> errors;
};
ParseResult ParseManifest(const std::string& text);

// JSON text of the whole object (apiVersion, kind, metadata, spec, status),
// with unset optionals omitted. `pretty` indents for people.
std::string EncodeJson(const PostgresReplicaSet& object, bool pretty = false);
// The same as YAML.
std::string EncodeYaml(const PostgresReplicaSet& object);
// The status alone, as JSON text (what `status.json` holds in local mode).
std::string EncodeStatusJson(const ReplicaSetStatus& status);
// Parses what EncodeStatusJson wrote.
Result<ReplicaSetStatus> DecodeStatusJson(const std::string& text);

// Why `name` cannot name a replica set ("must be at most 50 characters"), or
// empty when it is a DNS-1035 label (a letter first: Service names derive from
// it) of at most kMaxNameLength characters.
std::string CheckName(const std::string& name);

// Instance names are "<set>-<N>", N from 1.
std::string InstanceName(const std::string& set, int index);
// The index of an instance name of this set, or 0 when it is not one.
int InstanceIndex(const std::string& set, const std::string& instance);

// Looks a condition up by type; nullptr when absent.
const Condition* FindCondition(const ReplicaSetStatus& status, const std::string& type);

// RFC 3339 UTC with exactly three fractional digits: "2026-11-28T04:05:06.123Z".
// Sub-millisecond parts are dropped (rounded toward the past), so the text
// never names a moment later than `t`.
std::string FormatTimeMillis(std::chrono::system_clock::time_point t);
// RFC 3339 UTC to the second ("2026-11-28T04:05:06Z"): Kubernetes' Time, as
// in conditions' lastTransitionTime and metadata timestamps.
std::string FormatTime(std::chrono::system_clock::time_point t);
// Reads "2026-11-28T04:05:06Z" or the same with 1..9 fractional digits
// (".123Z", Kubernetes' MicroTime ".123456Z"). UTC ("Z") only, as Kubernetes
// and FormatTimeMillis write it. nullopt for anything else, including dates
// that do not exist and times the system clock cannot represent.
std::optional<std::chrono::system_clock::time_point> ParseTime(const std::string& text);

}  // namespace pgrs::api
