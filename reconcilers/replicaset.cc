#include "reconcilers/replicaset.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

#include "operator/util/lsn.h"
#include "reconcilers/backup.h"

namespace pgrs::reconcilers {

namespace {

using api::Condition;
using api::InstanceStatus;
using api::PostgresReplicaSet;
using api::ReplicaSetStatus;

constexpr char kTrue[] = "True";
constexpr char kFalse[] = "False";

// Sets a condition, keeping lastTransitionTime when the status is unchanged.
void SetCondition(ReplicaSetStatus& status, const ReplicaSetStatus& previous, Condition c,
                  const std::string& now) {
  const Condition* old = api::FindCondition(previous, c.type);
  c.lastTransitionTime = (old != nullptr && old->status == c.status) ? old->lastTransitionTime : now;
  for (auto& existing : status.conditions) {
    if (existing.type == c.type) {
      existing = c;
      return;
    }
  }
  status.conditions.push_back(c);
}

// An S3 repository for an agent, without its secrets (the executor's).
agent::S3RepositoryConfig S3ConfigOf(const api::S3RepositorySpec& s3) {
  agent::S3RepositoryConfig o;
  const auto endpoint = api::ParseEndpoint(s3.endpoint);  // validated
  o.endpoint = endpoint ? endpoint->host : s3.endpoint;
  o.port = endpoint ? endpoint->port : 0;
  o.bucket = s3.bucket;
  o.region = s3.region;
  o.uriStyle = s3.uriStyle;
  o.verifyTLS = s3.verifyTLS.value_or(true);
  return o;
}

// The config every instance of the set shares; role and upstream are added
// per instance. Addresses and secrets are filled in by the executor.
agent::AgentConfig BaseConfig(const PostgresReplicaSet& set) {
  agent::AgentConfig c;
  c.majorVersion = set.spec.postgres.version;
  c.parameters = set.spec.postgres.parameters;
  c.pgHBA = set.spec.postgres.pgHBA;
  c.replicationUser = kReplicationUser;
  c.maxSlotWalKeepSize = set.spec.replication.maxSlotWalKeepSize;
  c.replicationSlots = set.spec.replication.slots.value_or(true);
  c.dataChecksums = set.spec.postgres.dataChecksums.value_or(true);
  // The certificates are the executor's.
  if (set.spec.tls.enabled.value_or(true)) c.tls = agent::TlsConfig{};
  if (set.spec.backup) {
    const api::BackupRepositorySpec& repository = set.spec.backup->repository;
    c.backupRepositoryPath = repository.volumeClaim.empty() ? repository.path : api::kRepositoryMountPath;
    c.stanza = set.metadata.name;
    c.backupRetentionFull = set.spec.backup->retention.full.value_or(0);
    c.backupEncryption = set.spec.backup->encryption.value_or(false);  // the passphrase is the executor's
    if (const auto& s3 = repository.s3) {
      // The path inside the bucket; the keys and the CA are the executor's.
      c.backupRepositoryPath = s3->path;
      c.backupS3 = S3ConfigOf(*s3);
    }
  }
  return c;
}


// Its agent answers and it has no data directory yet, or its restored one
// still replays the archive: not a primary that can be lost yet.
bool Bootstrapping(const ObservedInstance& p) {
  return p.agentReachable && (p.dataDirRole.empty() || p.agentState == agent::kStateRestoring);
}

agent::AgentConfig StandbyConfig(const PostgresReplicaSet& set, const std::string& name,
                                 const ObservedInstance& primary) {
  agent::AgentConfig c = BaseConfig(set);
  c.role = "standby";
  c.upstreamHost = primary.host;
  c.upstreamPort = primary.port;
  if (set.spec.replication.slots.value_or(true)) c.slotName = SlotName(name);
  c.standbyFromRepository = set.spec.backup && set.spec.backup->bootstrapStandbys.value_or(false);
  return c;
}

// "ANY k (a, b)" over the standbys, quoted because names contain '-'.
std::string SynchronousStandbyNames(const PostgresReplicaSet& set, const std::vector<std::string>& standbys) {
  if (set.spec.replication.mode != "sync" || standbys.empty()) return "";
  int k = std::min<int>(set.spec.replication.syncReplicas.value_or(1), static_cast<int>(standbys.size()));
  std::string s = "ANY " + std::to_string(k) + " (";
  for (size_t i = 0; i < standbys.size(); ++i) {
    if (i > 0) s += ", ";
    s += "\"" + standbys[i] + "\"";
  }
  return s + ")";
}

const ReplicationRow* FindReplicationRow(const ObservedInstance& primary, const std::string& standby) {
  for (const auto& row : primary.replication) {
    if (row.applicationName == standby) return &row;
  }
  return nullptr;
}

// The instance's line in status: role, state, position and lag.
InstanceStatus DescribeInstance(const ObservedInstance& inst, const ObservedInstance* primary,
                                const std::string& currentPrimary) {
  InstanceStatus s;
  s.name = inst.name;
  s.host = inst.host;
  s.port = inst.port;
  s.role = inst.name == currentPrimary ? "primary" : "standby";
  s.timeline = inst.timeline;
  if (!inst.lastError.empty()) s.message = inst.lastError;
  else if (!inst.progress.empty()) s.message = inst.progress;
  else if (!inst.pgReachable && !inst.pgError.empty() && inst.postgresRunning) s.message = inst.pgError;

  if (!inst.agentReachable) {
    s.state = "Unknown";
    s.message = "agent not answering";
  } else if (inst.agentState == agent::kStateInitializing) {
    s.state = "Initializing";
  } else if (inst.agentState == agent::kStateCloning) {
    s.state = "Cloning";
  } else if (inst.agentState == agent::kStateRestoring) {
    s.state = "Restoring";
  } else if (!inst.postgresRunning) {
    if (inst.agentState == agent::kStateFailed) s.state = "Failed";
    else if (inst.dataDirRole.empty()) s.state = "Pending";
    else if (inst.agentState == agent::kStateRestarting) s.state = "Down";  // it crashed; the agent restarts it
    else s.state = "Starting";
  } else if (!inst.pgReachable) {
    s.state = "Starting";
  } else if (s.role == "primary") {
    s.state = inst.inRecovery ? "Starting" : "Running";
    s.lsn = FormatLsn(inst.currentLsn);
  } else {
    s.lsn = FormatLsn(inst.replayLsn);
    const ReplicationRow* row = primary != nullptr ? FindReplicationRow(*primary, inst.name) : nullptr;
    if (row != nullptr) {
      s.syncState = row->syncState;
      s.lagBytes = row->lagBytes;
      s.lagSeconds = row->replayLagSeconds;
    } else if (primary != nullptr && primary->IsWritablePrimary()) {
      s.lagBytes = primary->currentLsn > inst.replayLsn ? static_cast<int64_t>(primary->currentLsn - inst.replayLsn) : 0;
    }
    bool streaming = inst.inRecovery && inst.walReceiverStreaming && row != nullptr && row->state == "streaming";
    s.state = !inst.inRecovery ? "Diverged" : streaming ? "Streaming" : "Connecting";
  }
  return s;
}

bool IsReady(const InstanceStatus& s) { return s.state == "Running" || s.state == "Streaming"; }

// The standby whose slot is `slot` answers through its agent again (it is
// started, rewound or cloned by it).
bool StandbyIsBack(const ObservedSet& observed, const std::string& slot) {
  for (const auto& inst : observed.instances) {
    if (SlotName(inst.name) == slot) return inst.agentReachable;
  }
  return false;
}

const SlotRow* FindSlot(const ObservedInstance& primary, const std::string& slot) {
  for (const auto& row : primary.slots) {
    if (row.name == slot) return &row;
  }
  return nullptr;
}

// What a standby's slot on the primary says about the WAL kept for it, for
// people; empty while the slot keeps all of it. `lost`: the standby cannot
// stream from where it was (more than spec.replication.maxSlotWalKeepSize
// behind), `unreserved`: it will be at the next checkpoint.
std::string SlotWalProblem(const PostgresReplicaSet& set, const SlotRow& slot) {
  const std::string bound = "spec.replication.maxSlotWalKeepSize (" + set.spec.replication.maxSlotWalKeepSize + ")";
  if (slot.walStatus == "lost") {
    return "replication slot " + slot.name + " lost WAL this standby needs: it fell more than " + bound +
           " behind; it catches up " + (set.spec.backup ? "from the archive" : "by being cloned again");
  }
  if (slot.walStatus == "unreserved") {
    return "replication slot " + slot.name + " is more than " + bound +
           " behind: the primary removes WAL this standby needs at its next checkpoint";
  }
  return "";
}

}  // namespace

const char* ActionTypeName(ActionType type) {
  switch (type) {
    case ActionType::kCreateInstance: return "CreateInstance";
    case ActionType::kDeleteInstance: return "DeleteInstance";
    case ActionType::kCreateReplicationRole: return "CreateReplicationRole";
    case ActionType::kCreateSlot: return "CreateSlot";
    case ActionType::kDropSlot: return "DropSlot";
    case ActionType::kAcquireLease: return "AcquireLease";
    case ActionType::kFenceFromOutside: return "FenceFromOutside";
  }
  return "Unknown";
}

std::string Action::ToString() const {
  std::string s = ActionTypeName(type);
  s += " instance=" + instance;
  if (!slot.empty()) s += " slot=" + slot;
  if (type == ActionType::kAcquireLease) s += " from=" + (expectedHolder.empty() ? "-" : expectedHolder);
  if (type == ActionType::kCreateInstance) s += " role=" + config.role;
  if (!reason.empty()) s += " reason=\"" + reason + "\"";
  return s;
}

agent::RestoreConfig RestoreConfigFor(const api::RecoverySpec& recovery) {
  agent::RestoreConfig r;
  r.repositoryPath =
      recovery.repository.volumeClaim.empty() ? recovery.repository.path : api::kRestoreRepositoryMountPath;
  if (const auto& s3 = recovery.repository.s3) {
    r.repositoryPath = s3->path;
    r.s3 = S3ConfigOf(*s3);
  }
  r.stanza = recovery.source;
  r.encryption = recovery.repository.encryption.value_or(false);
  if (recovery.target) {
    r.targetTime = recovery.target->time;
    r.targetLsn = recovery.target->lsn;
    r.targetName = recovery.target->name;
    r.targetImmediate = recovery.target->immediate;
  }
  return r;
}

std::optional<agent::RestoreConfig> RestoreForNewSet(const PostgresReplicaSet& set) {
  if (!set.spec.bootstrap || !set.spec.bootstrap->recovery || set.status.timeline != 0) return std::nullopt;
  return RestoreConfigFor(*set.spec.bootstrap->recovery);
}

std::string SlotName(const std::string& instance) {
  std::string s = kSlotPrefix;
  for (char c : instance) s += (c == '-' || c == '.') ? '_' : c;
  return s;
}


namespace {

int64_t ToMs(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

int64_t ParseMs(const std::string& text, int64_t fallback) {
  auto t = api::ParseTime(text);
  return t ? ToMs(*t) : fallback;
}

const InstanceStatus* PreviousInstance(const ReplicaSetStatus& previous, const std::string& name) {
  for (const auto& i : previous.instances) {
    if (i.name == name) return &i;
  }
  return nullptr;
}

// Why the primary counts as lost, or "" while it does not.
std::string PrimaryLossReason(const PostgresReplicaSet& set, const ObservedSet& observed, const ObservedInstance& p,
                              int64_t nowMs, int64_t lostSinceMs) {
  if (Bootstrapping(p)) return "";
  const int detection = set.spec.failover.detectionSeconds.value_or(5);
  const bool detectionOver = nowMs - lostSinceMs >= int64_t{detection} * 1000;
  if (p.agentReachable) {
    // Its agent is its parent: a postmaster that exited is known at once.
    if (p.agentState == agent::kStatePrimaryDown || p.agentState == agent::kStateFenced) return "PostmasterDown";
    if (!p.postgresRunning && p.agentState == agent::kStateFailed) return "PostmasterDown";
    if (p.IsWritablePrimary() && p.postgresReady) return "";
    // Running but not answering new connections (a hung postmaster), or
    // not answering us at all: lost once that has lasted detectionSeconds.
    return detectionOver ? "Unresponsive" : "";
  }
  if (p.IsWritablePrimary()) {
    // PostgreSQL serves but its agent is frozen or cut off: it cannot renew
    // the lease, so once the lease has run out it must not serve.
    return observed.lease.holder == p.name && observed.lease.ExpiredAt(nowMs) ? "LeaseExpired" : "";
  }
  return detectionOver ? "Unresponsive" : "";
}

// Standbys that may be promoted, most advanced first. In synchronous mode
// only those that were synchronous, and only when enough of them answer
// that the most advanced one surely holds every acknowledged commit.
std::vector<const ObservedInstance*> PromotionCandidates(const PostgresReplicaSet& set, const ObservedSet& observed,
                                                         const ReplicaSetStatus& previous, const std::string& primary,
                                                         std::string* why) {
  std::vector<const ObservedInstance*> out;
  const bool sync = set.spec.replication.mode == "sync";
  int syncMembers = 0;
  for (const auto& i : previous.instances) {
    if (i.name != primary && (i.syncState == "sync" || i.syncState == "quorum")) syncMembers++;
  }
  for (const auto& inst : observed.instances) {
    if (inst.name == primary || !inst.pgReachable || !inst.inRecovery) continue;
    const InstanceStatus* before = PreviousInstance(previous, inst.name);
    if (set.spec.failover.maxLagBytes && before != nullptr && before->lagBytes &&
        *before->lagBytes > *set.spec.failover.maxLagBytes) {
      continue;
    }
    if (sync && (before == nullptr || (before->syncState != "sync" && before->syncState != "quorum"))) continue;
    out.push_back(&inst);
  }
  if (sync) {
    int k = set.spec.replication.syncReplicas.value_or(1);
    int needed = syncMembers - k + 1;
    if (syncMembers == 0 || static_cast<int>(out.size()) < needed) {
      *why = "synchronous mode: " + std::to_string(out.size()) + " of " + std::to_string(syncMembers) +
             " synchronous standbys answer, " + std::to_string(std::max(needed, 1)) +
             " needed to be sure no acknowledged commit is lost";
      return {};
    }
  }
  std::sort(out.begin(), out.end(), [](const auto* a, const auto* b) {
    if (a->receiveLsn != b->receiveLsn) return a->receiveLsn > b->receiveLsn;
    return a->name < b->name;
  });
  if (out.empty() && why->empty()) *why = "no healthy standby within spec.failover.maxLagBytes";
  return out;
}

// Who takes over from a primary that is shutting down: spec.primary when it
// qualifies, else the most advanced qualifying standby; only one that
// streams from the primary now (so that the primary's fast shutdown sends it
// every commit), and none that is itself shutting down.
const ObservedInstance* HandoverTarget(const PostgresReplicaSet& set, const ObservedSet& observed,
                                       const ReplicaSetStatus& previous, const std::string& primary) {
  std::string why;
  const ObservedInstance* best = nullptr;
  for (const ObservedInstance* c : PromotionCandidates(set, observed, previous, primary, &why)) {
    if (!c->walReceiverStreaming || c->shuttingDown) continue;
    if (c->name == set.spec.primary) return c;
    if (best == nullptr) best = c;
  }
  return best;
}

}  // namespace

Plan Reconcile(const PostgresReplicaSet& set, const ObservedSet& observed, std::chrono::system_clock::time_point now) {
  Plan plan;
  const ReplicaSetStatus& previous = set.status;
  ReplicaSetStatus& status = plan.status;
  const std::string nowText = api::FormatTime(now);
  const int64_t nowMs = ToMs(now);
  const std::string& name = set.metadata.name;
  const int wanted = set.spec.instances.value_or(1);
  const bool useSlots = set.spec.replication.slots.value_or(true);
  const int leaseSeconds = set.spec.failover.leaseDurationSeconds.value_or(5);
  status.observedGeneration = set.metadata.generation;
  status.currentPrimary = previous.currentPrimary;
  status.targetPrimary = previous.targetPrimary;
  status.timeline = previous.timeline;
  status.primaryLostSince = previous.primaryLostSince;
  status.promotionReason = previous.promotionReason;
  status.promotionStarted = previous.promotionStarted;
  status.failovers = previous.failovers;

  // Progress and trouble found along the way, for the conditions.
  std::vector<std::string> progressing;
  std::vector<std::string> degraded;

  // 1. Which instance is the primary. Status holds the truth; without one
  //    (first start, or a state directory whose status was lost) the data
  //    directories tell, and an empty set bootstraps a new primary.
  if (status.currentPrimary.empty() || observed.Find(status.currentPrimary) == nullptr) {
    if (observed.instances.empty()) {
      int index = 1;
      if (!set.spec.primary.empty()) index = std::max(1, api::InstanceIndex(name, set.spec.primary));
      std::string first = api::InstanceName(name, index);
      Action lease{ActionType::kAcquireLease, first, 0, "", "", false, {}, "the first primary"};
      lease.expectedHolder = observed.lease.holder;
      lease.holderFenced = true;  // nothing runs yet
      plan.actions.push_back(lease);
      Action create{ActionType::kCreateInstance, first, index, "", "", false, BaseConfig(set), "bootstrap the primary"};
      create.config.role = "primary";
      create.config.restore = RestoreForNewSet(set);
      if (create.config.restore) create.reason = "restore the primary from stanza " + create.config.restore->stanza;
      plan.actions.push_back(create);
      status.currentPrimary = status.targetPrimary = first;
      progressing.push_back("creating primary " + first);
    } else {
      std::vector<const ObservedInstance*> candidates;
      bool allKnown = true;
      for (const auto& inst : observed.instances) {
        if (!inst.agentReachable) allKnown = false;
        if (inst.dataDirRole == "primary") candidates.push_back(&inst);
      }
      if (candidates.size() == 1 && allKnown) {
        status.currentPrimary = status.targetPrimary = candidates[0]->name;
        progressing.push_back("adopted " + candidates[0]->name + " as primary from its data directory");
      } else if (!status.currentPrimary.empty()) {
        degraded.push_back("primary " + status.currentPrimary + " does not exist");
      } else {
        // Zero or several primary data directories: a person must decide
        // (safety before availability: never guess between two primaries).
        degraded.push_back(allKnown ? "cannot tell which instance is the primary (" +
                                          std::to_string(candidates.size()) + " primary data directories)"
                                    : "waiting for agents to report their data directories");
      }
    }
  }

  // 2. Failover and switchover: fence, choose, record, hand over the lease,
  //    promote, and move currentPrimary once the new primary writes.
  const ObservedInstance* oldPrimary = observed.Find(status.currentPrimary);
  std::string fenceInstance, fenceMode = "immediate";
  std::string promoteInstance;
  bool restartPrimaryOnCrash = true;
  bool handoverOnShutdown = false;
  if (oldPrimary != nullptr) {
    const ObservedInstance& old = *oldPrimary;
    const bool failoverEnabled = set.spec.failover.enabled.value_or(true);
    // While the primary writes, its pg_stat_replication says who is
    // synchronous and how far behind now; once it is gone, the last status.
    ReplicaSetStatus seen = previous;
    if (old.IsWritablePrimary()) {
      for (auto& i : seen.instances) {
        if (const ReplicationRow* row = FindReplicationRow(old, i.name)) {
          i.syncState = row->syncState;
          i.lagBytes = row->lagBytes;
        }
      }
    }
    std::string noCandidate;
    const bool standbyQualifies = !PromotionCandidates(set, observed, seen, old.name, &noCandidate).empty();
    // A crashed primary waits for this decision unless no standby could
    // take over anyway; then its agent restarts it in place at once.
    restartPrimaryOnCrash = !failoverEnabled || !standbyQualifies;
    // A primary told to shut down (its Pod deleted, evicted, drained) is
    // handed over to a standby that streams from it, as in a switchover.
    const ObservedInstance* handoverTarget = failoverEnabled ? HandoverTarget(set, observed, seen, old.name) : nullptr;
    handoverOnShutdown = handoverTarget != nullptr;

    const bool healthy = old.IsWritablePrimary() && old.agentReachable && old.postgresReady;
    if (status.promotionReason.empty()) {
      if (healthy || Bootstrapping(old)) {
        status.primaryLostSince.clear();
      } else if (status.primaryLostSince.empty()) {
        status.primaryLostSince = api::FormatTimeMillis(now);
      }
      const int64_t lostSinceMs = ParseMs(status.primaryLostSince, nowMs);
      std::string reason = PrimaryLossReason(set, observed, old, nowMs, lostSinceMs);
      const int delay = set.spec.failover.delaySeconds.value_or(0);
      const ObservedInstance* wantedPrimary =
          set.spec.primary.empty() || set.spec.primary == old.name ? nullptr : observed.Find(set.spec.primary);
      if (!reason.empty() && failoverEnabled && standbyQualifies && nowMs - lostSinceMs >= int64_t{delay} * 1000) {
        status.promotionReason = reason;
        status.promotionStarted = status.primaryLostSince.empty() ? api::FormatTimeMillis(now) : status.primaryLostSince;
      } else if (!reason.empty()) {
        degraded.push_back("primary " + old.name + " lost (" + reason + ")" +
                           (!failoverEnabled ? "; failover is disabled"
                            : !standbyQualifies ? "; no failover: " + noCandidate
                                                : "; failing over after spec.failover.delaySeconds"));
      } else if (healthy && old.shuttingDown && handoverTarget != nullptr) {
        // A planned stop: hand over while the old primary still runs, so
        // that its fast shutdown streams every commit to the new one.
        status.promotionReason = api::kReasonShutdown;
        status.promotionStarted = api::FormatTimeMillis(now);
        status.targetPrimary = handoverTarget->name;
      } else if (healthy && old.shuttingDown) {
        degraded.push_back("primary " + old.name + " is shutting down and no standby streams to take over");
      } else if (healthy && wantedPrimary != nullptr) {
        // A planned switchover to spec.primary, once it streams.
        const InstanceStatus* before = PreviousInstance(previous, wantedPrimary->name);
        if (wantedPrimary->pgReachable && wantedPrimary->inRecovery && wantedPrimary->walReceiverStreaming &&
            before != nullptr && before->state == "Streaming") {
          status.promotionReason = api::kReasonSwitchover;
          status.promotionStarted = api::FormatTimeMillis(now);
          status.targetPrimary = wantedPrimary->name;
        } else {
          progressing.push_back("switchover to " + wantedPrimary->name + " waits until it streams");
        }
      }
    }

    if (!status.promotionReason.empty()) {
      // Planned (a switchover, a shutdown): the old primary stops with a
      // fast shutdown and the new one is promoted once it has all its WAL.
      const bool planned = api::IsPlannedPromotion(status.promotionReason);
      fenceInstance = old.name;
      fenceMode = planned ? "fast" : "immediate";
      // A crashed primary whose agent holds it down (restartOnCrash is off
      // and fenced is on its way) is as good as fenced: no round trip.
      const bool fencedByAgent =
          old.agentReachable && !old.postgresRunning &&
          (old.agentFenced || (!planned && old.agentState == agent::kStatePrimaryDown));
      bool fenced = fencedByAgent;
      if (!fenced && !old.agentReachable) {
        // Its agent does not answer: once the lease it held has run out,
        // nothing renews it, and PostgreSQL is stopped from outside.
        if (observed.lease.holder != old.name || observed.lease.ExpiredAt(nowMs)) {
          // Stopped from outside, and confirmed stopped only once a later
          // pass sees that PostgreSQL no longer answers and no standby
          // streams any more: until then it may commit (and, in sync mode,
          // have acknowledged) more than the standbys' positions seen now.
          // (Its address may be unknown by now, a deleted Pod has none: any
          // streaming standby streams from it, there is no other primary.)
          bool streamedFrom = false;
          for (const auto& inst : observed.instances) {
            if (inst.name != old.name && inst.walReceiverStreaming) streamedFrom = true;
          }
          plan.actions.push_back({ActionType::kFenceFromOutside, old.name, 0, "", "", false, {},
                                  "its agent does not answer and its lease has expired"});
          fenced = !old.pgReachable && !streamedFrom;
          if (!fenced) progressing.push_back("stopping " + old.name + " from outside");
        } else {
          int64_t left = observed.lease.renewTimeMs + int64_t{observed.lease.durationSeconds} * 1000 - nowMs;
          progressing.push_back("waiting " + std::to_string((left + 999) / 1000) + "s for the lease of " + old.name +
                                " to expire");
        }
      } else if (!fenced) {
        progressing.push_back("fencing " + old.name);
      }

      if (fenced && (status.targetPrimary.empty() || status.targetPrimary == old.name)) {
        // Choose only now that the old primary is stopped: the standbys'
        // positions are final.
        std::string why;
        auto candidates = PromotionCandidates(set, observed, previous, old.name, &why);
        bool standbysStarting = false;
        for (const auto& inst : observed.instances) {
          if (inst.name != old.name && inst.agentReachable && inst.dataDirRole == "standby" && !inst.pgReachable &&
              inst.agentState != agent::kStateFailed) {
            standbysStarting = true;
          }
        }
        const bool mayWait = nowMs - ParseMs(status.promotionStarted, nowMs) < 30000;
        if (candidates.empty() && standbysStarting && mayWait) {
          // A control plane that restarted mid-failover starts its standbys
          // again: wait for them rather than give up on the failover.
          progressing.push_back("waiting for standbys to start before choosing the new primary");
        } else if (candidates.empty()) {
          // Nobody can take over: bring the old primary back where it was.
          degraded.push_back("failover of " + old.name + " abandoned: " + why + "; restarting it in place");
          status.promotionReason.clear();
          status.promotionStarted.clear();
          status.targetPrimary = old.name;
          fenceInstance.clear();
          restartPrimaryOnCrash = true;
        } else {
          status.targetPrimary = candidates[0]->name;
          progressing.push_back("chose " + status.targetPrimary + " (received " + FormatLsn(candidates[0]->receiveLsn) +
                                ") to replace " + old.name);
          plan.requeueAfter = std::chrono::milliseconds(0);  // record it, then act
        }
      } else if (fenced && status.targetPrimary != old.name && previous.targetPrimary == status.targetPrimary) {
        const ObservedInstance* target = observed.Find(status.targetPrimary);
        // A planned move whose old primary was stopped from outside (its
        // agent left or hung) has no shutdown checkpoint to wait for: the
        // target chosen while the primary ran may be behind another standby
        // now, which (in sync mode) may hold the last acknowledged commits.
        // Choose again among the final positions, as a failover does; not
        // once the lease is the target's (its promotion has begun).
        std::string why;
        std::vector<const ObservedInstance*> finalCandidates;
        const bool chooseAgain = planned && !fencedByAgent && target != nullptr && !target->IsWritablePrimary() &&
                                 observed.lease.holder != target->name;
        if (chooseAgain) {
          finalCandidates = PromotionCandidates(set, observed, previous, old.name, &why);
        }
        if (target == nullptr) {
          degraded.push_back("target primary " + status.targetPrimary + " does not exist");
        } else if (chooseAgain && finalCandidates.empty()) {
          progressing.push_back("not promoting " + target->name + ": " + why);
        } else if (chooseAgain && finalCandidates[0]->name != target->name &&
                   finalCandidates[0]->receiveLsn > target->receiveLsn) {
          status.targetPrimary = finalCandidates[0]->name;
          progressing.push_back("chose " + status.targetPrimary + " (received " + FormatLsn(finalCandidates[0]->receiveLsn) +
                                ") instead of " + target->name + " to replace " + old.name);
          plan.requeueAfter = std::chrono::milliseconds(0);  // record it, then act
        } else if (planned && fencedByAgent && target->receiveLsn < old.checkpointLsn) {
          progressing.push_back("waiting for " + target->name + " to receive up to " + FormatLsn(old.checkpointLsn) +
                                " (at " + FormatLsn(target->receiveLsn) + ")");
        } else if (target->IsWritablePrimary()) {
          // Promoted: the new primary takes over.
          api::FailoverRecord record;
          record.time = api::FormatTimeMillis(now);
          record.from = old.name;
          record.to = target->name;
          record.reason = status.promotionReason;
          record.unavailableSeconds =
              static_cast<double>(nowMs - ParseMs(status.promotionStarted, nowMs)) / 1000.0;
          record.timeline = target->timeline;
          status.failovers.push_back(record);
          constexpr size_t kHistory = 10;
          if (status.failovers.size() > kHistory) {
            status.failovers.erase(status.failovers.begin(),
                                   status.failovers.end() - static_cast<long>(kHistory));
          }
          status.currentPrimary = target->name;
          status.timeline = target->timeline;
          status.promotionReason.clear();
          status.promotionStarted.clear();
          status.primaryLostSince.clear();
          fenceInstance.clear();
          progressing.push_back(old.name + " rejoins as a standby of " + target->name);
        } else {
          Action lease{ActionType::kAcquireLease, target->name, 0, "", old.name, fencedByAgent, {},
                       status.promotionReason + ": " + old.name + " is fenced"};
          plan.actions.push_back(lease);
          promoteInstance = target->name;
          progressing.push_back("promoting " + target->name);
        }
      }
    }
  } else if (!status.currentPrimary.empty() && !observed.instances.empty()) {
    status.primaryLostSince.clear();
  }
  if (!observed.lease.exists && oldPrimary != nullptr && status.promotionReason.empty() &&
      oldPrimary->dataDirRole == "primary") {
    // A set from before leases, or a lost lease file: its primary takes it.
    plan.actions.insert(plan.actions.begin(), {ActionType::kAcquireLease, oldPrimary->name, 0, "", "", true, {},
                                                "the primary holds the lease"});
  }

  const std::string& primaryName = status.currentPrimary;
  const ObservedInstance* primary = observed.Find(primaryName);
  const bool transitioning = !status.promotionReason.empty();
  const bool primaryUp = primary != nullptr && primary->IsWritablePrimary() && !transitioning;
  if (primary != nullptr && primary->timeline > 0 && primaryUp) status.timeline = primary->timeline;

  // 3. Desired config of every existing instance. Standbys follow the
  //    primary; the primary lists its synchronous standbys.
  std::vector<std::string> standbyNames;
  for (const auto& inst : observed.instances) {
    if (inst.name != primaryName) standbyNames.push_back(inst.name);
  }
  auto syncNames = [&](const std::vector<std::string>& standbys) {
    if (set.spec.replication.dataDurability != "preferred") return SynchronousStandbyNames(set, standbys);
    // preferred: only standbys that stream count, so writes go on.
    std::vector<std::string> healthy;
    for (const auto& n : standbys) {
      const auto* inst = observed.Find(n);
      if (inst != nullptr && inst->walReceiverStreaming) healthy.push_back(n);
    }
    return SynchronousStandbyNames(set, healthy);
  };
  if (primary != nullptr) {
    agent::AgentConfig pc = BaseConfig(set);
    pc.role = "primary";
    pc.synchronousStandbyNames = syncNames(standbyNames);
    pc.restartOnCrash = restartPrimaryOnCrash;
    if (primary->dataDirRole.empty()) pc.restore = RestoreForNewSet(set);
    pc.handoverOnShutdown = handoverOnShutdown;
    plan.configs[primaryName] = pc;
    for (const auto& inst : observed.instances) {
      if (inst.name != primaryName) plan.configs[inst.name] = StandbyConfig(set, inst.name, *primary);
    }
    if (!fenceInstance.empty()) {
      plan.configs[fenceInstance].fenced = true;
      plan.configs[fenceInstance].fenceMode = fenceMode;
    }
    if (!promoteInstance.empty()) {
      agent::AgentConfig promoted = BaseConfig(set);
      promoted.role = "primary";
      promoted.restartOnCrash = true;
      // Synchronous from its first commit on: in sync mode no commit is
      // acknowledged by the new primary before a standby has it.
      std::vector<std::string> others;
      for (const auto& inst : observed.instances) {
        if (inst.name != promoteInstance) others.push_back(inst.name);
      }
      if (set.spec.replication.dataDurability != "preferred") {
        promoted.synchronousStandbyNames = SynchronousStandbyNames(set, others);
      }
      plan.configs[promoteInstance] = promoted;
    }
  }
  for (auto& [instanceName, config] : plan.configs) {
    config.leaseDurationSeconds = leaseSeconds;
    config.renewDeadlineSeconds = set.spec.failover.renewDeadlineSeconds.value_or(3);
    config.retryPeriodSeconds = set.spec.failover.retryPeriodSeconds.value_or(1);
  }

  // 4. With the primary writable: the replication role, slots, scaling.
  if (primary != nullptr && !primaryUp && !transitioning) {
    const auto restore = RestoreForNewSet(set);
    progressing.push_back(restore && Bootstrapping(*primary)
                              ? "restoring primary " + primaryName + " from stanza " + restore->stanza
                          : primary->dataDirRole.empty() ? "bootstrapping primary " + primaryName
                                                         : "waiting for primary " + primaryName);
  }
  if (primaryUp) {
    if (!primary->replicationRoleExists) {
      plan.actions.push_back({ActionType::kCreateReplicationRole, primaryName, 0, "", "", false, {}, "standbys need it"});
    }
    // Instances after scaling: existing ones minus those removed, plus new.
    std::vector<const ObservedInstance*> keep;
    for (const auto& inst : observed.instances) keep.push_back(&inst);
    std::vector<std::string> removing;
    while (static_cast<int>(keep.size()) > wanted) {
      // The highest-numbered standby goes first; the primary never does.
      auto victim = std::max_element(keep.begin(), keep.end(), [&](const auto* a, const auto* b) {
        bool aPrimary = a->name == primaryName, bPrimary = b->name == primaryName;
        if (aPrimary != bPrimary) return aPrimary;  // the primary sorts lowest
        return a->index < b->index;
      });
      if ((*victim)->name == primaryName) break;
      removing.push_back((*victim)->name);
      keep.erase(victim);
    }
    std::vector<int> creating;
    std::set<int> used;
    for (const auto* inst : keep) used.insert(inst->index);
    for (int index = 1; static_cast<int>(keep.size() + creating.size()) < wanted && index <= api::kMaxInstances;
         ++index) {
      if (!used.count(index)) creating.push_back(index);
    }
    // Slots: one per standby that stays or comes; others dropped when idle.
    std::set<std::string> wantedSlots;
    if (useSlots) {
      for (const auto* inst : keep) {
        if (inst->name != primaryName) wantedSlots.insert(SlotName(inst->name));
      }
      for (int index : creating) wantedSlots.insert(SlotName(api::InstanceName(name, index)));
    }
    std::set<std::string> haveSlots;
    for (const auto& slot : primary->slots) {
      const bool ours = slot.name.rfind(kSlotPrefix, 0) == 0;
      if (ours && !wantedSlots.count(slot.name) && !slot.active) {
        plan.actions.push_back({ActionType::kDropSlot, primaryName, 0, slot.name, "", false, {}, "no standby uses it"});
      } else if (ours && slot.walStatus == "lost" && !slot.active && StandbyIsBack(observed, slot.name)) {
        // An invalidated slot keeps nothing for its standby, and PostgreSQL
        // (from 18 on) refuses to stream through it: dropped and created
        // afresh (below) once its standby is back, cloning or catching up
        // from the archive. While the standby is away it stays, and status
        // says why the standby will not stream from where it stopped.
        plan.actions.push_back({ActionType::kDropSlot, primaryName, 0, slot.name, "", false, {},
                                "it lost WAL its standby needs (wal_status lost)"});
        continue;
      }
      haveSlots.insert(slot.name);
    }
    for (const auto& slot : wantedSlots) {
      if (!haveSlots.count(slot)) {
        plan.actions.push_back({ActionType::kCreateSlot, primaryName, 0, slot, "", false, {}, "for its standby"});
      }
    }
    for (const auto& victim : removing) {
      plan.actions.push_back({ActionType::kDeleteInstance, victim, 0, "", "", false, {},
                              "scale down to " + std::to_string(wanted) + " instances"});
      plan.configs.erase(victim);
      progressing.push_back("removing " + victim);
    }
    for (int index : creating) {
      std::string standby = api::InstanceName(name, index);
      Action create{ActionType::kCreateInstance, standby, index, "", "", false, StandbyConfig(set, standby, *primary),
                    "scale up to " + std::to_string(wanted) + " instances"};
      create.config.leaseDurationSeconds = leaseSeconds;
      plan.actions.push_back(create);
      progressing.push_back("creating standby " + standby);
    }
    if (!removing.empty() || !creating.empty()) {
      // The synchronous standby list follows the new membership.
      std::vector<std::string> next;
      for (const auto* inst : keep) {
        if (inst->name != primaryName) next.push_back(inst->name);
      }
      for (int index : creating) next.push_back(api::InstanceName(name, index));
      std::sort(next.begin(), next.end());
      plan.configs[primaryName].synchronousStandbyNames = syncNames(next);
    }
  }

  // 5. Status: one line per instance, readiness and conditions.
  for (const auto& inst : observed.instances) {
    InstanceStatus s = DescribeInstance(inst, primaryUp ? primary : nullptr, primaryName);
    if (!primaryUp && s.role == "standby") {
      // Without a writable primary there is no fresh pg_stat_replication:
      // what it said last still decides who may be promoted.
      if (const InstanceStatus* before = PreviousInstance(previous, inst.name)) {
        s.syncState = before->syncState;
        s.lagBytes = before->lagBytes;
      }
    }
    std::string slotProblem;
    if (primaryUp && useSlots && inst.name != primaryName) {
      if (const SlotRow* slot = FindSlot(*primary, SlotName(inst.name))) slotProblem = SlotWalProblem(set, *slot);
    }
    if (!slotProblem.empty()) s.message = s.message.empty() ? slotProblem : s.message + "; " + slotProblem;
    if (inst.name == fenceInstance || inst.agentFenced) {
      s.fenced = true;
      if (!inst.postgresRunning) s.state = "Fenced";
    }
    // A planned stop (a Pod deleted, evicted, drained) is not a failure.
    if (inst.shuttingDown && !IsReady(s) && s.state != "Fenced") s.state = "Stopping";
    if (inst.name == promoteInstance) s.state = "Promoting";
    if (inst.agentState == agent::kStateRewinding) s.state = "Rewinding";
    for (const auto& a : plan.actions) {
      if (a.type == ActionType::kDeleteInstance && a.instance == inst.name) s.state = "Deleting";
    }
    if (IsReady(s)) {
      // Mid-promotion nothing counts as ready, yet a healthy instance is
      // no trouble either.
      if (!transitioning) status.readyInstances++;
      if (!slotProblem.empty()) degraded.push_back(inst.name + " " + s.state + ": " + slotProblem);
    } else if (!slotProblem.empty()) {
      degraded.push_back(inst.name + " " + s.state + ": " + s.message);
    } else if (s.state == "Cloning" || s.state == "Initializing" || s.state == "Restoring" || s.state == "Pending" ||
               s.state == "Starting" ||
               s.state == "Connecting" || s.state == "Rewinding" || s.state == "Promoting" || s.state == "Stopping" ||
               (s.state == "Fenced" && transitioning)) {
      progressing.push_back(inst.name + " " + s.state + (s.message.empty() ? "" : " (" + s.message + ")"));
    } else if (s.state != "Deleting") {
      degraded.push_back(inst.name + " " + s.state + (s.message.empty() ? "" : ": " + s.message));
    }
    status.instances.push_back(s);
  }
  for (const auto& a : plan.actions) {
    if (a.type == ActionType::kCreateInstance && observed.Find(a.instance) == nullptr) {
      InstanceStatus s;
      s.name = a.instance;
      s.role = a.config.role;
      s.state = "Pending";
      status.instances.push_back(s);
    }
  }
  std::sort(status.instances.begin(), status.instances.end(), [&](const auto& a, const auto& b) {
    return api::InstanceIndex(name, a.name) < api::InstanceIndex(name, b.name);
  });
  status.maxLagBytes.reset();
  for (const auto& s : status.instances) {
    if (s.role == "standby" && s.lagBytes) status.maxLagBytes = std::max(status.maxLagBytes.value_or(0), *s.lagBytes);
  }

  bool onlyLeaseRenewal = true;
  for (const auto& a : plan.actions) {
    if (a.type != ActionType::kAcquireLease) onlyLeaseRenewal = false;
  }
  const bool allReady = status.readyInstances == wanted && static_cast<int>(observed.instances.size()) == wanted &&
                        (plan.actions.empty() || onlyLeaseRenewal) && !transitioning;
  auto join = [](const std::vector<std::string>& items) {
    std::string s;
    for (const auto& i : items) s += (s.empty() ? "" : "; ") + i;
    return s;
  };
  SetCondition(status, previous,
               {"Ready", allReady ? kTrue : kFalse, allReady ? "AllInstancesReady" : "InstancesNotReady",
                std::to_string(status.readyInstances) + "/" + std::to_string(wanted) + " instances ready", "",
                set.metadata.generation},
               nowText);
  bool isProgressing = !progressing.empty() || !(plan.actions.empty() || onlyLeaseRenewal) || transitioning;
  const bool planned = api::IsPlannedPromotion(status.promotionReason);
  std::string progressingReason = transitioning ? (planned ? "SwitchingOver"
                                                                                          : "FailingOver")
                                  : observed.instances.empty() || !primaryUp ? "Bootstrapping"
                                                                             : "Reconciling";
  SetCondition(status, previous,
               {"Progressing", isProgressing ? kTrue : kFalse, isProgressing ? progressingReason : "Reconciled",
                isProgressing ? join(progressing) : "the replica set matches its spec", "", set.metadata.generation},
               nowText);
  bool isDegraded = !degraded.empty() || (transitioning && !planned);
  SetCondition(status, previous,
               {"Degraded", isDegraded ? kTrue : kFalse, isDegraded ? "InstancesUnhealthy" : "AllInstancesHealthy",
                isDegraded ? join(degraded.empty() ? progressing : degraded) : "no instance reports a problem", "",
                set.metadata.generation},
               nowText);

  if (auto backups = DescribeBackups(set, primaryUp ? primary : nullptr)) {
    status.backup = std::move(backups->status);
    SetCondition(status, previous, std::move(backups->condition), nowText);
  }

  if (transitioning) status.phase = planned ? "SwitchingOver" : "FailingOver";
  else if (allReady) status.phase = "Healthy";
  else if (!primaryUp) status.phase = isDegraded && primary != nullptr && !primary->dataDirRole.empty()
                                          ? "Degraded" : "Bootstrapping";
  else if (isDegraded) status.phase = "Degraded";
  else status.phase = "Reconciling";

  if (plan.requeueAfter.count() != 0) {
    // Fast while anything moves; a steady set is still looked at often
    // enough to notice a lost primary within a fraction of a second.
    plan.requeueAfter = std::chrono::milliseconds(transitioning ? 20 : isProgressing ? 250 : 100);
  }
  return plan;
}

}  // namespace pgrs::reconcilers
