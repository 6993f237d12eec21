// The replica-set reconciler: a pure function from (spec, observed
// instances, previous status, now) to (actions, desired per-instance agent
// configs, new status, when to look again). No I/O, no clock, no threads:
// every decision of pgrs lives here and is tested by scenario tables.
//
// One call moves the set one step toward its spec:
//   no instance           -> create the primary (initdb, or a restore:
//                            spec.bootstrap.recovery)
//   primary not up yet    -> wait (its agent bootstraps it)
//   no replication role   -> create it
//   missing slots         -> create them; stale inactive ones are dropped
//   too few instances     -> create standbys (pg_basebackup from the primary)
//   too many              -> delete the highest-numbered standbys, never the primary
//
// Failover and switchover are a sequence of such steps, each recorded in
// status before the next (so a restarted control plane resumes, never
// doubles up): primary lost (or spec.primary changed) -> fence the old
// primary (its agent stops it; or, when it does not answer, wait out its
// lease and stop it from outside) -> choose the most advanced qualifying
// standby and record it as targetPrimary -> hand it the lease -> it
// promotes -> currentPrimary moves, the others follow, the old primary
// rejoins as a standby (pg_rewind).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "operator/agent/protocol.h"
#include "operator/api/types.h"
#include "reconcilers/observed.h"

namespace pgrs::reconcilers {

enum class ActionType {
  kCreateInstance,         // instance, index, config (role + bootstrap source)
  kDeleteInstance,         // instance
  kCreateReplicationRole,  // on the primary
  kCreateSlot,             // slot, on the primary
  kDropSlot,               // slot, on the primary
  kAcquireLease,           // hand the primary lease to `instance` (from `expectedHolder`)
  kFenceFromOutside,       // stop `instance`'s PostgreSQL without its agent (it does not answer)
};
const char* ActionTypeName(ActionType type);

struct Action {
  ActionType type;
  std::string instance;  // the instance acted on (the primary for SQL actions)
  int index = 0;         // kCreateInstance
  std::string slot;      // kCreateSlot, kDropSlot
  std::string expectedHolder;  // kAcquireLease: the holder it is taken from ("" = none)
  bool holderFenced = false;   // kAcquireLease: the expected holder is confirmed stopped
  agent::AgentConfig config;  // kCreateInstance: the new instance's first config
  std::string reason;    // for logs and events
  std::string ToString() const;
};

struct Plan {
  std::vector<Action> actions;  // in order; the executor stops at the first failure
  // Desired config of every existing instance (without secrets); the
  // executor sends it to agents whose config differs.
  std::map<std::string, agent::AgentConfig> configs;
  api::ReplicaSetStatus status;  // the new status (connection strings left to the runtime)
  std::chrono::milliseconds requeueAfter{1000};
};

// `set` carries the defaulted spec, metadata and the previous status.
Plan Reconcile(const api::PostgresReplicaSet& set, const ObservedSet& observed,
               std::chrono::system_clock::time_point now);

// What the agent of a new set's first primary restores from
// (spec.bootstrap.recovery).
agent::RestoreConfig RestoreConfigFor(const api::RecoverySpec& recovery);
// The first primary of a set that has never run (no timeline seen yet) is
// restored, not initialized, as long as it has no data directory: the
// restore, or nullopt once the set has run (also what tells the runtime to
// read the recovery repository's secrets).
std::optional<agent::RestoreConfig> RestoreForNewSet(const api::PostgresReplicaSet& set);

// Names pgrs derives.
std::string SlotName(const std::string& instance);  // demo-2 -> pgrs_demo_2
inline constexpr char kReplicationUser[] = "pgrs_replication";
inline constexpr char kSlotPrefix[] = "pgrs_";


}  // namespace pgrs::reconcilers
