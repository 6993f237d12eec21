// status.backup and the BackupsHealthy condition of a set with spec.backup:
// a pure function of what the primary's agent last read from the
// repository (pgbackrest info), the primary's pg_stat_archiver, the
// previous status and now. What is not observed this pass (no settled
// primary, an agent that does not answer) is kept from the previous status.
#pragma once

#include <chrono>
#include <optional>

#include "operator/api/types.h"
#include "reconcilers/observed.h"

namespace pgrs::reconcilers {

inline constexpr char kBackupsHealthy[] = "BackupsHealthy";

struct BackupReport {
  api::BackupStatus status;
  api::Condition condition;  // BackupsHealthy, lastTransitionTime left to the caller
};

// nullopt when the set has no spec.backup (no status.backup, no condition).
// `primary` is the settled, writable primary, or nullptr.
std::optional<BackupReport> DescribeBackups(const api::PostgresReplicaSet& set, const ObservedInstance* primary);

// Where a backup reads the data files from: with spec.backup.fromStandby
// (the default) the streaming standby with the least lag, so the primary
// does not carry the read load; else, or when none streams, the primary.
// pgBackRest starts and stops the backup on the primary either way.
// Decided from the last status; `why` is for the CLI's progress line.
// A standby on another host than the primary is a candidate only when the
// runtime reaches it (`otherHosts`: Kubernetes, through the pgBackRest TLS
// server of its Pod, which needs spec.tls); else only those beside it.
struct BackupSource {
  std::string primary;
  std::string standby;  // "" = the backup is taken from the primary
  std::string why;
};
BackupSource ChooseBackupSource(const api::PostgresReplicaSet& set, bool otherHosts = false);

}  // namespace pgrs::reconcilers
