// Bringing a data directory back as a standby of the current primary:
// pg_rewind onto it (an old primary after a failover, or a standby whose
// timeline diverged), and noticing in postgres.log that a standby cannot go
// on replaying. When rewinding fails for a reason other than an unreachable
// source, the data directory is deleted so that it is cloned afresh.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "operator/agent/instance_layout.h"
#include "operator/agent/protocol.h"
#include "operator/util/status.h"

namespace pgrs::agent {

// The postmaster must be stopped. A CHECKPOINT on the source (config's
// upstream) first: a just-promoted server updates the timeline in its control
// file only then, and pg_rewind reads it there. Then pg_rewind; on success the
// standby's configuration is written at once, before anything can start it.
// Unavailable when the source cannot be reached (try again, keep the data);
// Ok with the data directory deleted when pg_rewind failed otherwise (the
// next bootstrap clones it). `onProgress` sees pg_rewind's progress lines.
Status Rewind(const InstanceLayout& layout, const AgentConfig& config,
              const std::function<void(const std::string&)>& onProgress);

// True when pg_rewind's output says it could not reach its source, which is
// a reason to try again rather than to throw the data directory away.
bool RewindSourceUnreachable(const std::string& output);

// The walreceiver's word for WAL its upstream no longer has (a slot that
// was invalidated past spec.replication.maxSlotWalKeepSize, or no slot).
// Rewinding cannot bring it back: only a clone (or the archive) can.
inline constexpr char kWalRemovedSign[] = "has already been removed";

// What in new postgres.log text says that this standby cannot go on
// replaying (timeline diverged, WAL gone); empty when nothing does. With
// `archived` (spec.backup: restore_command) WAL gone from the upstream is no
// such sign: a primary with archive_mode on removes a segment only once it
// is archived, and the standby reads it from there.
std::string RecoveryCannotContinueSign(const std::string& freshLog, bool archived);

// Reads postgres.log from where it last stopped, so that only what
// PostgreSQL logged since speaks of its current state.
class RecoveryWatch {
 public:
  explicit RecoveryWatch(const InstanceLayout& layout) : layout_(layout) {}
  // What is in the log already is not looked at.
  void SkipExisting();
  // The sign (RecoveryCannotContinueSign, logged) when the lines since the
  // last call show that the standby cannot continue recovery; else empty.
  std::string CannotContinue(bool archived);

 private:
  const InstanceLayout& layout_;
  size_t offset_ = 0;
};

}  // namespace pgrs::agent
