// Promotion of the running standby to primary. The caller has made sure it
// may (the agent holds the primary lease); this only carries it out.
#pragma once

#include "operator/agent/instance_layout.h"
#include "operator/agent/protocol.h"
#include "operator/util/status.h"

namespace pgrs::agent {

// pg_promote (12 and later; asked without waiting, then watched every 10 ms)
// or pg_ctl promote (11), for at most 60 s; then a CHECKPOINT, which writes
// the new timeline into the control file at once (pg_rewind of the old
// primary reads it there). Logs "promoted instance=… lsn=… timeline=…".
// Unavailable when the server cannot be asked or did not finish in time.
Status PromoteStandby(const InstanceLayout& layout, const AgentConfig& config);

}  // namespace pgrs::agent
