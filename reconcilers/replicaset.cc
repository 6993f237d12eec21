#include "reconcilers/replicaset.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>

#include "operator/util/lsn.h"

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

// The config every instance of the set shares; role and upstream are added
// per instance. Addresses and secrets are filled in by the executor.
agent::AgentConfig BaseConfig(const PostgresReplicaSet& set) {
  agent::AgentConfig c;
  c.majorVersion = set.spec.postgres.version;
  c.parameters = set.spec.postgres.parameters;
  c.pgHBA = set.spec.postgres.pgHBA;
  c.replicationUser = kReplicationUser;
  return c;
}

agent::AgentConfig StandbyConfig(const PostgresReplicaSet& set, const std::string& name,
                                 const ObservedInstance& primary) {
  agent::AgentConfig c = BaseConfig(set);
  c.role = "standby";
  c.upstreamHost = primary.host;
  c.upstreamPort = primary.port;
  if (set.spec.replication.slots.value_or(true)) c.slotName = SlotName(name);
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

}  // namespace

const char* ActionTypeName(ActionType type) {
  switch (type) {
    case ActionType::kCreateInstance: return "CreateInstance";
    case ActionType::kDeleteInstance: return "DeleteInstance";
    case ActionType::kCreateReplicationRole: return "CreateReplicationRole";
    case ActionType::kCreateSlot: return "CreateSlot";
    case ActionType::kDropSlot: return "DropSlot";
  }
  return "Unknown";
}

std::string Action::ToString() const {
  std::string s = ActionTypeName(type);
  s += " instance=" + instance;
  if (!slot.empty()) s += " slot=" + slot;
  if (type == ActionType::kCreateInstance) s += " role=" + config.role;
  if (!reason.empty()) s += " reason=\"" + reason + "\"";
  return s;
}

std::string SlotName(const std::string& instance) {
  std::string s = kSlotPrefix;
  for (char c : instance) s += (c == '-' || c == '.') ? '_' : c;
  return s;
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Plan Reconcile(const PostgresReplicaSet& set, const ObservedSet& observed, std::chrono::system_clock::time_point now) {
  Plan plan;
  const ReplicaSetStatus& previous = set.status;
  ReplicaSetStatus& status = plan.status;
  const std::string nowText = FormatTime(now);
  const std::string& name = set.metadata.name;
  const int wanted = set.spec.instances.value_or(1);
  const bool useSlots = set.spec.replication.slots.value_or(true);
  status.observedGeneration = set.metadata.generation;
  status.currentPrimary = previous.currentPrimary;
  status.targetPrimary = previous.targetPrimary;
  status.timeline = previous.timeline;

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
      Action create{ActionType::kCreateInstance, first, index, "", BaseConfig(set), "bootstrap the primary"};
      create.config.role = "primary";
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

  const std::string& primaryName = status.currentPrimary;
  const ObservedInstance* primary = observed.Find(primaryName);
  const bool primaryUp = primary != nullptr && primary->IsWritablePrimary();
  if (primary != nullptr && primary->timeline > 0 && primaryUp) status.timeline = primary->timeline;

  // 2. Desired config of every existing instance. Standbys follow the
  //    primary; the primary lists its synchronous standbys.
  std::vector<std::string> standbyNames;
  for (const auto& inst : observed.instances) {
    if (inst.name != primaryName) standbyNames.push_back(inst.name);
  }
  if (primary != nullptr) {
    agent::AgentConfig pc = BaseConfig(set);
    pc.role = "primary";
    pc.synchronousStandbyNames = SynchronousStandbyNames(set, standbyNames);
    plan.configs[primaryName] = pc;
    for (const auto& inst : observed.instances) {
      if (inst.name != primaryName) plan.configs[inst.name] = StandbyConfig(set, inst.name, *primary);
    }
  }

  // 3. With the primary writable: the replication role, slots, scaling.
  if (primary != nullptr && !primaryUp) {
    progressing.push_back(primary->dataDirRole.empty() ? "bootstrapping primary " + primaryName
                                                       : "waiting for primary " + primaryName);
  }
  if (primaryUp) {
    if (!primary->replicationRoleExists) {
      plan.actions.push_back({ActionType::kCreateReplicationRole, primaryName, 0, "", {}, "standbys need it"});
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
      haveSlots.insert(slot.name);
      if (slot.name.rfind(kSlotPrefix, 0) == 0 && !wantedSlots.count(slot.name) && !slot.active) {
        plan.actions.push_back({ActionType::kDropSlot, primaryName, 0, slot.name, {}, "no standby uses it"});
      }
    }
    for (const auto& slot : wantedSlots) {
      if (!haveSlots.count(slot)) {
        plan.actions.push_back({ActionType::kCreateSlot, primaryName, 0, slot, {}, "for its standby"});
      }
    }
    for (const auto& victim : removing) {
      plan.actions.push_back({ActionType::kDeleteInstance, victim, 0, "", {},
                              "scale down to " + std::to_string(wanted) + " instances"});
      plan.configs.erase(victim);
      progressing.push_back("removing " + victim);
    }
    for (int index : creating) {
      std::string standby = api::InstanceName(name, index);
      plan.actions.push_back({ActionType::kCreateInstance, standby, index, "", StandbyConfig(set, standby, *primary),
                              "scale up to " + std::to_string(wanted) + " instances"});
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
      plan.configs[primaryName].synchronousStandbyNames = SynchronousStandbyNames(set, next);
    }
  } else if (primary == nullptr && observed.instances.empty()) {
    // Bootstrapping: nothing else to do until the primary is up.
  }

  // 4. Status: one line per instance, readiness and conditions.
  for (const auto& inst : observed.instances) {
    InstanceStatus s = DescribeInstance(inst, primary, primaryName);
    for (const auto& a : plan.actions) {
      if (a.type == ActionType::kDeleteInstance && a.instance == inst.name) s.state = "Deleting";
    }
    if (IsReady(s)) {
      status.readyInstances++;
    } else if (s.state == "Cloning" || s.state == "Initializing" || s.state == "Pending" || s.state == "Starting" ||
               s.state == "Connecting") {
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

  const bool allReady = status.readyInstances == wanted && static_cast<int>(observed.instances.size()) == wanted &&
                        plan.actions.empty();
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
  bool isProgressing = !progressing.empty() || !plan.actions.empty();
  SetCondition(status, previous,
               {"Progressing", isProgressing ? kTrue : kFalse,
                isProgressing ? (observed.instances.empty() || !primaryUp ? "Bootstrapping" : "Reconciling")
                              : "Reconciled",
                isProgressing ? join(progressing) : "the replica set matches its spec", "", set.metadata.generation},
               nowText);
  bool isDegraded = !degraded.empty();
  SetCondition(status, previous,
               {"Degraded", isDegraded ? kTrue : kFalse, isDegraded ? "InstancesUnhealthy" : "AllInstancesHealthy",
                isDegraded ? join(degraded) : "no instance reports a problem", "", set.metadata.generation},
               nowText);

  if (allReady) status.phase = "Healthy";
  else if (!primaryUp) status.phase = isDegraded && primary != nullptr && !primary->dataDirRole.empty()
                                          ? "Degraded" : "Bootstrapping";
  else if (isDegraded) status.phase = "Degraded";
  else status.phase = "Reconciling";

  plan.requeueAfter = std::chrono::milliseconds(isProgressing ? 250 : 1000);
  return plan;
}

}  // namespace pgrs::reconcilers
