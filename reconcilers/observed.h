// What the observer saw of one replica set's instances: the input of the
// reconcilers, next to the spec and the previous status. Plain data.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "operator/agent/protocol.h"

namespace pgrs::reconcilers {

// One row of the primary's pg_stat_replication.
struct ReplicationRow {
  std::string applicationName;  // the standby's instance name
  std::string state;            // streaming | catchup | startup | backup | stopping
  std::string syncState;        // async | sync | potential | quorum
  uint64_t sentLsn = 0;
  uint64_t flushLsn = 0;
  uint64_t replayLsn = 0;
  int64_t lagBytes = 0;         // pg_current_wal_lsn() - replay_lsn on the primary
  double replayLagSeconds = 0;  // replay_lag (0 when caught up and idle)
};

// The primary's pg_stat_archiver (times in Unix ms, 0 = never).
struct ArchiverRow {
  bool observed = false;
  int64_t archivedCount = 0;
  std::string lastArchivedWal;
  int64_t lastArchivedTimeMs = 0;
  int64_t failedCount = 0;
  std::string lastFailedWal;
  int64_t lastFailedTimeMs = 0;
};

struct SlotRow {
  std::string name;
  bool active = false;
  uint64_t restartLsn = 0;
  // pg_replication_slots.wal_status (13+; "" before, and for a slot that
  // reserves nothing yet): reserved | extended | unreserved (beyond
  // max_slot_wal_keep_size, its WAL goes at the next checkpoint) | lost (a
  // standby that used it cannot stream from where it was).
  std::string walStatus;
};

struct ObservedInstance {
  std::string name;
  int index = 0;
  std::string host;
  int port = 0;

  // From the instance agent (GET /status).
  bool agentReachable = false;
  std::string agentState;   // agent::kState*
  std::string dataDirRole;  // primary | standby | "" (no data directory yet)
  bool postgresRunning = false;
  bool postgresReady = false;  // the agent's own probe gets answers (false: a hang)
  std::string progress;
  std::string lastError;
  std::string configHash;
  int restarts = 0;
  bool agentFenced = false;     // PostgreSQL stopped on purpose and kept stopped
  uint64_t checkpointLsn = 0;   // when stopped: its last checkpoint (pg_controldata)
  // Stopped on purpose: its agent was told to shut down, or its Pod is
  // terminating. A primary that is shutting down is handed over by a
  // planned switchover while it still runs.
  bool shuttingDown = false;
  // The primary's agent with spec.backup: what the repository holds.
  agent::RepositoryInfo repository;

  // From PostgreSQL itself, over libpq.
  bool pgReachable = false;
  std::string pgError;
  bool inRecovery = false;
  int timeline = 0;
  uint64_t currentLsn = 0;  // primary: pg_current_wal_lsn()
  uint64_t receiveLsn = 0;  // standby: pg_last_wal_receive_lsn()
  uint64_t replayLsn = 0;   // standby: pg_last_wal_replay_lsn()
  bool walReceiverStreaming = false;  // pg_stat_wal_receiver.status = streaming
  std::string upstreamHost;           // pg_stat_wal_receiver.sender_host
  int upstreamPort = 0;
  // Primary only.
  std::vector<ReplicationRow> replication;
  std::vector<SlotRow> slots;
  bool replicationRoleExists = false;
  ArchiverRow archiver;

  bool IsWritablePrimary() const { return pgReachable && !inRecovery; }
};

// The primary lease as read from the store.
struct ObservedLease {
  bool exists = false;
  std::string holder;
  int64_t renewTimeMs = 0;  // Unix ms
  int durationSeconds = 0;
  bool ExpiredAt(int64_t nowMs) const { return !exists || nowMs > renewTimeMs + int64_t{durationSeconds} * 1000; }
};

struct ObservedSet {
  std::vector<ObservedInstance> instances;  // sorted by index
  ObservedLease lease;
  const ObservedInstance* Find(const std::string& name) const {
    for (const auto& i : instances) {
      if (i.name == name) return &i;
    }
    return nullptr;
  }
};

}  // namespace pgrs::reconcilers
