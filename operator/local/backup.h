// A pgBackRest backup of a local set, run here, as the PostgreSQL user with
// the primary's own pgbackrest.conf (which its agent writes), rather than
// through the agent's POST /backup: in local mode every data directory is on
// this machine, so the backup can be taken from a standby (pg2) while the
// primary's agent could only back up its own primary. `pgrs local backup`
// and the controller's spec.backup.schedule both take backups through
// TakeBackup; the pgbackrest command itself is agent::RunPgBackRestBackup,
// which the agent's backup job runs too.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "operator/api/types.h"
#include "operator/local/runtime.h"
#include "operator/util/status.h"

namespace pgrs::local {

// Backs up `set` as its status last saw it (the settled primary, the
// standbys and their lag), waits for pgBackRest and returns the new
// backup's label. `type` is full, diff or incr. `progress` gets one line
// saying where the backup is taken from. Failures name the set.
Result<std::string> TakeBackup(const LocalRuntime& runtime, const api::PostgresReplicaSet& set,
                               const std::string& type, std::chrono::milliseconds timeout,
                               const std::function<void(const std::string&)>& progress);

}  // namespace pgrs::local
