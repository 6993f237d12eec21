#include "reconcilers/local_control_plane.h"

#include <algorithm>

namespace pgrs::reconcilers {

AgentDecision DecideAgent(const AgentFacts& f) {
  if (!f.running) {
    if (f.setStored && f.instanceRecorded) return {AgentAction::kSpawn, "the instance has no running agent"};
    return {AgentAction::kNothing, "no agent runs and none is needed"};
  }
  if (!f.setStored) return {AgentAction::kStopOrphan, "its replica set was deleted"};
  if (!f.instanceRecorded) return {AgentAction::kStopOrphan, "its instance was deleted"};
  if (f.duplicate) return {AgentAction::kStopOrphan, "an older agent runs for the same instance"};
  return {AgentAction::kAdopt, "it runs for an instance of a stored set"};
}

const char* AgentActionName(AgentAction action) {
  switch (action) {
    case AgentAction::kAdopt: return "adopt";
    case AgentAction::kSpawn: return "spawn";
    case AgentAction::kStopOrphan: return "stop-orphan";
    case AgentAction::kNothing: return "nothing";
  }
  return "?";
}

namespace {

std::string Ago(const std::string& time, std::chrono::system_clock::time_point now) {
  auto t = api::ParseTime(time);
  if (!t) return "";
  auto s = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(now - *t).count());
  return " (" + std::to_string(s) + "s ago)";
}

}  // namespace

ControlPlaneState AssessControlPlane(const ControlPlaneFacts& facts, std::chrono::system_clock::time_point now,
                                     std::chrono::seconds notRespondingAfter) {
  ControlPlaneState s;
  const ControlPlaneRecord* r = facts.record ? &*facts.record : nullptr;
  if (facts.lockHeld) {
    // A record of an earlier run (another pid) is not this one's: it has
    // not written its own yet.
    const bool own = r != nullptr && (facts.lockHolder <= 0 || r->pid == facts.lockHolder);
    const std::string pid = std::to_string(facts.lockHolder > 0 ? facts.lockHolder : (r ? r->pid : 0));
    const std::string last = own ? (r->lastPassTime.empty() ? r->startedTime : r->lastPassTime) : "";
    auto lastTime = api::ParseTime(last);
    if (lastTime && now - *lastTime > notRespondingAfter) {
      s.kind = ControlPlaneKind::kNotResponding;
      s.since = last;
      s.message = "pgrs local run (pid " + pid + ") holds the state directory but has finished no pass since " +
                  last + Ago(last, now) + "; this status is what it last observed";
      return s;
    }
    s.kind = own && !r->lastPassTime.empty() ? ControlPlaneKind::kRunning : ControlPlaneKind::kStarting;
    s.since = own ? r->startedTime : "";
    s.message = s.kind == ControlPlaneKind::kRunning ? "pgrs local run is running (pid " + pid + ") since " + s.since
                                                     : "pgrs local run (pid " + pid + ") is starting";
    return s;
  }
  if (r == nullptr) {
    s.kind = ControlPlaneKind::kNeverRan;
    s.message = "pgrs local run has not run on this state directory";
    return s;
  }
  if (!r->stoppedTime.empty()) {
    s.kind = ControlPlaneKind::kStopped;
    s.since = r->stoppedTime;
    s.message = "pgrs local run is not running: it stopped at " + r->stoppedTime + Ago(r->stoppedTime, now) +
                " and stopped its instances with it";
    return s;
  }
  s.kind = ControlPlaneKind::kCrashed;
  s.since = r->lastPassTime.empty() ? r->startedTime : r->lastPassTime;
  s.message = "pgrs local run is not running since " + s.since + Ago(s.since, now) + " (pid " +
              std::to_string(r->pid) +
              " ended without a clean stop); its agents and PostgreSQL keep running unwatched, this status is what "
              "it last observed; start pgrs local run again to adopt them";
  return s;
}

api::ReplicaSetStatus StatusAsSeen(const api::ReplicaSetStatus& stored, const ControlPlaneState& state) {
  if (state.kind != ControlPlaneKind::kCrashed && state.kind != ControlPlaneKind::kNotResponding) return stored;
  api::ReplicaSetStatus seen = stored;
  const std::string reason =
      state.kind == ControlPlaneKind::kCrashed ? "ControlPlaneNotRunning" : "ControlPlaneNotResponding";
  if (!seen.phase.empty()) seen.phase = "Unknown";
  for (auto& c : seen.conditions) {
    if (c.status != "Unknown" && !state.since.empty()) c.lastTransitionTime = state.since;
    c.status = "Unknown";
    c.reason = reason;
    c.message = state.message;
  }
  return seen;
}

WaitStep DecideWaitStep(bool conditionMet, const ControlPlaneState& state, std::chrono::milliseconds notRunningFor,
                        std::chrono::milliseconds grace) {
  if (state.kind == ControlPlaneKind::kRunning) return conditionMet ? WaitStep::kMet : WaitStep::kKeepWaiting;
  if (state.kind == ControlPlaneKind::kStarting) return WaitStep::kKeepWaiting;
  return notRunningFor >= grace ? WaitStep::kFail : WaitStep::kKeepWaiting;
}

PortRange PortsOf(const api::PostgresReplicaSet& set) {
  api::ReplicaSetSpec spec = set.spec;
  api::ApplyDefaults(spec);
  PortRange range{*spec.local.basePort, *spec.local.basePort + *spec.instances - 1};
  for (const auto& instance : set.status.instances) {
    if (instance.port <= 0) continue;
    range.first = std::min(range.first, instance.port);
    range.last = std::max(range.last, instance.port);
  }
  return range;
}

std::optional<std::string> FindPortOverlap(const api::PostgresReplicaSet& candidate,
                                           const std::vector<api::PostgresReplicaSet>& stored) {
  const PortRange mine = PortsOf(candidate);
  auto text = [](const PortRange& r) {
    return r.first == r.last ? "port " + std::to_string(r.first)
                             : "ports " + std::to_string(r.first) + "-" + std::to_string(r.last);
  };
  for (const auto& other : stored) {
    if (other.metadata.name == candidate.metadata.name) continue;
    const PortRange theirs = PortsOf(other);
    api::ReplicaSetSpec spec = other.spec;
    api::ApplyDefaults(spec);
    if (mine.last < theirs.first || theirs.last < mine.first) continue;
    return "postgresreplicaset " + candidate.metadata.name + ": spec.local.basePort: " + text(mine) +
           " overlap the " + text(theirs) + " of postgresreplicaset " + other.metadata.name +
           " (its spec.local.basePort is " +
           std::to_string(*spec.local.basePort) + ", spec.instances " + std::to_string(*spec.instances) +
           "); choose a spec.local.basePort outside them";
  }
  return std::nullopt;
}

}  // namespace pgrs::reconcilers
