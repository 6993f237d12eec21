// Restoring a new set's first primary from a pgBackRest repository
// (spec.bootstrap.recovery), in four steps:
//   1. choose the backup: the newest that ends before the target (time,
//      LSN), or the newest of all (restore point, immediate, no target);
//   2. `pgbackrest restore --type=preserve --set=LABEL` into a temporary
//      directory beside the data directory, renamed into place only when
//      complete (as initdb and pg_basebackup are);
//   3. archive recovery: recovery.signal plus pgrs's own recovery settings
//      in postgresql.auto.conf (restore_command reading the source stanza,
//      the target, recovery_target_action = promote), so PostgreSQL replays
//      WAL from the archive up to the target and promotes itself onto a new
//      timeline;
//   4. after the promotion (FinishRestore): the recovery settings removed
//      (a later standby of this data directory must not stop at the old
//      target) and this set's passwords set in single-user mode (the
//      restored roles carry the source's), once, before any client connects.
// A marker file (InstanceLayout::RestoreMarker) spans steps 2 to 4, so an
// agent restarted in between finishes the job.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "operator/agent/bootstrap.h"
#include "operator/agent/instance_layout.h"
#include "operator/agent/protocol.h"
#include "operator/util/process.h"
#include "operator/util/status.h"

namespace pgrs::agent {

// What a failed `pgbackrest info` of the source (RepositoryInfo::error)
// says about spec.bootstrap.recovery, the field first: keys the server
// refused, a repository that cannot be read. "" when there is no error or
// the stanza is missing (the source's problem, which ChooseRestoreBackup names).
std::string RestoreRepositoryProblem(const std::string& infoError, const RestoreConfig& restore);

// The backup a restore to `restore`'s target starts from, or Invalid naming
// the field of spec.bootstrap.recovery that cannot be satisfied (no backup
// at all, a target before the end of the oldest backup, another major).
// `info` is what ParseBackupInfo (archiving.h) read of the source stanza.
Result<BackupInfo> ChooseRestoreBackup(const RepositoryInfo& info, const RestoreConfig& restore, int majorVersion);

// Step 1: `pgbackrest info` of the source stanza (as `runAs`, with a
// configuration file of the repository alone, made for the command and
// removed after it), then ChooseRestoreBackup. What `pgrs local apply`
// checks before it stores a set, and what the agent restores. `restore`
// carries its secrets (S3 keys and CA).
Result<BackupInfo> FindRestoreBackup(const std::string& pgbackrest, const RestoreConfig& restore,
                                     const std::optional<UserIds>& runAs, int majorVersion);

// `program` (pgBackRest with its configuration and stanza) restores backup
// `label` with --type=preserve into `tmp`, made afresh and owned by the
// PostgreSQL user; `onProgress` sees "restore 42%". Any recovery.signal,
// standby.signal or recovery.conf of the backed-up instance is removed; the
// caller marks the directory and renames it into place. On failure `tmp`
// is removed. Used by Restore and by a standby's CloneFromRepository.
Status RestoreBackupInto(const InstanceLayout& layout, ProcessSpec program, const std::string& label,
                         const std::string& tmp, const std::function<void(const std::string&)>& onProgress);

// What step 3 writes to postgresql.auto.conf.
std::string RestoreRecoverySettings(const std::string& pgbackrest, const std::string& restoreConfigFile,
                                    const RestoreConfig& restore);
// `text` (a postgresql.auto.conf) without what RestoreRecoverySettings
// wrote: its comment, restore_command and the recovery_target* settings.
std::string WithoutRestoreRecoverySettings(const std::string& text);

// PostgreSQL's log says the archive ended before the recovery target was
// reached (a time after the last archived commit, an unknown restore point).
bool RecoveryTargetMissed(const std::string& logText);
// A restored data directory still recovering whose postgres.log ends so.
bool RestoreTargetMissed(const InstanceLayout& layout);

// Steps 1 to 3 (the data directory must not exist).
Status Restore(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress);

// True from the restore until FinishRestore has completed (the marker).
bool RestoreInProgress(const InstanceLayout& layout);
// True while a restored data directory still recovers toward its target.
bool RestoreRecovering(const InstanceLayout& layout);
// True once PostgreSQL has promoted a restored data directory (its control
// file says so) and step 4 is due. The postmaster must be stopped for
// FinishRestore.
bool RestorePromoted(const InstanceLayout& layout);
// Step 4, with PostgreSQL stopped; with spec.backup also this set's own
// stanza (offline), so that its first archived file finds it. The source
// repository's configuration file and CA bundle are removed.
Status FinishRestore(const InstanceLayout& layout, const AgentConfig& config);

// "restore 12.34%" of a `pgbackrest restore --log-level-console=detail` line.
std::optional<std::string> ParseRestoreProgress(const std::string& line);

}  // namespace pgrs::agent
