// The instance's configuration on disk: the files GenerateConfig makes from
// the desired AgentConfig (postgresql.conf, pg_hba.conf, standby.signal or
// recovery.conf, ...), the replication passfile a standby streams with, and
// how a running server takes a change (a reload, or a restart when a
// setting needs one).
#pragma once

#include <sys/types.h>

#include <string>

#include "operator/agent/instance_layout.h"
#include "operator/agent/protocol.h"
#include "operator/postgres/config.h"
#include "operator/util/status.h"

namespace pgrs::agent {

// The generator's input for the instance of `layout`; a standby streams
// from its upstream with the password in its replication passfile, and
// archiving (when configured) uses its pgbackrest.conf.
postgres::InstanceConfig ToInstanceConfig(const InstanceLayout& layout, const AgentConfig& config);

struct ConfigurationWrite {
  bool changed = false;              // a file was written or removed
  bool recoveryConfChanged = false;  // recovery.conf (PostgreSQL 11), read only at start
};

// The TLS files of config.tls where ToInstanceConfig points PostgreSQL and
// libpq (mode 0600, the postgres user's), or none when TLS is off. True
// when a file changed: a running server reloads to take it. Written before
// anything connects with them (a clone, a rewind) and before
// WriteConfiguration names them.
Result<bool> WriteTlsFiles(const InstanceLayout& layout, const AgentConfig& config);

// Writes the generated files into the data directory and removes those the
// role no longer has; a file already as generated is left alone, so a
// second call with the same config changes nothing. A standby's passfile is
// rewritten when its password changed or its mode is no longer 0600. With
// spec.backup, the pgBackRest configuration is written first (archiving.h).
// The TLS files it names are WriteTlsFiles's.
Result<ConfigurationWrite> WriteConfiguration(const InstanceLayout& layout, const AgentConfig& config);

// After WriteConfiguration changed files under a running postmaster: true
// when it must restart to take them. Unless recovery.conf changed (then it
// must, and nothing is sent), the postmaster is sent SIGHUP and the server
// asked whether it has reloaded and whether a setting waits for a restart;
// no answer within 5 s also means restart.
bool NeedsRestartForConfiguration(const InstanceLayout& layout, const AgentConfig& config, pid_t postmaster, bool recoveryConfChanged);

}  // namespace pgrs::agent
