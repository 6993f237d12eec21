// Bootstrapping a data directory that does not exist yet: initdb for a
// primary, a clone with pg_basebackup from its upstream (using its slot)
// for a standby. Both build in a temporary directory beside the data
// directory and rename it into place at the end, so a failed attempt never
// leaves half a data directory; an existing data directory is never touched.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "operator/agent/instance_layout.h"
#include "operator/agent/protocol.h"
#include "operator/util/status.h"

namespace pgrs::agent {

// Told the agent state (kStateInitializing, kStateCloning) and progress
// ("clone 12345/23732 kB (52%)") as a bootstrap goes on.
using BootstrapProgress = std::function<void(const std::string& state, const std::string& progress)>;

// Nothing when the data directory exists and holds config.majorVersion
// (Invalid when it holds another); else Initdb or Clone as config.role says,
// or for a primary with config.restore, Restore (restore.h).
// Unavailable when that version's PostgreSQL is not installed.
Status EnsureDataDirectory(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress);

// A new primary's data directory, the superuser's password set from config,
// SCRAM authentication, UTF-8 and the C.UTF-8 locale, data checksums as
// config.dataChecksums says.
Status Initdb(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress);
// initdb's arguments, building into `target` with the password in `pwfile`,
// with data checksums when `dataChecksums` (spec.postgres.dataChecksums).
std::vector<std::string> InitdbArguments(int major, const std::string& target, const std::string& pwfile,
                                         bool dataChecksums);

// A standby's data directory, copied from config.upstreamHost:upstreamPort
// with its WAL streamed alongside, and marked a standby before it ever starts.
Status Clone(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress);

// A standby's data directory restored from the newest backup of its own
// stanza (config.standbyFromRepository), marked a standby; it catches up
// from the archive, then streams. NotFound when the repository holds no
// backup yet (the caller clones with pg_basebackup instead).
Status CloneFromRepository(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress);

// One progress line of pg_basebackup --progress ("12345/23732 kB (52%), 0/1 tablespace").
struct BasebackupProgress {
  std::string copiedKB;
  std::string totalKB;
  std::string percent;
};
std::optional<BasebackupProgress> ParseBasebackupProgress(const std::string& line);

}  // namespace pgrs::agent
