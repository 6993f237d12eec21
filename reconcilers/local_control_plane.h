// Local mode: the data plane (agents and PostgreSQL) outlives `pgrs local
// run`. These are the decisions about it, pure functions of what was read:
// - which `pgrs instance` processes a starting control plane adopts, which
//   it stops as orphans, and when it starts an agent;
// - what the client verbs (`get`, `wait`) make of a control plane that is
//   not running, or not finishing passes: the stored status is only what
//   it last observed, so its conditions are Unknown;
// - which sets' ports overlap (`apply` refuses the second).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "operator/api/types.h"

namespace pgrs::reconcilers {

// --- Agents: adopt, spawn, stop as orphans.

struct AgentFacts {
  bool running = false;           // a live `pgrs instance` for the instance's directory
  bool setStored = false;         // DIR/sets/SET/object.json exists (being deleted counts)
  bool instanceRecorded = false;  // DIR/sets/SET/instances/NAME.json exists
  bool duplicate = false;         // an older agent for the same directory runs too
};

enum class AgentAction {
  kAdopt,       // keep it running and talk to it; PostgreSQL is not touched
  kSpawn,       // start an agent for the instance
  kStopOrphan,  // it belongs to nothing any more: stop it (and its PostgreSQL)
  kNothing,
};

struct AgentDecision {
  AgentAction action = AgentAction::kNothing;
  std::string reason;  // for the log
};

// A set being deleted adopts its agents: its tear-down stops them in order.
AgentDecision DecideAgent(const AgentFacts& facts);
const char* AgentActionName(AgentAction action);

// --- The control plane as the client verbs see it.

// DIR/control-plane.json, written by `pgrs local run`: at start (pid,
// startedTime), after every pass (lastPassTime), at a clean stop
// (stoppedTime). A crash leaves it as it was last written.
struct ControlPlaneRecord {
  int64_t pid = 0;
  std::string startedTime;
  std::string lastPassTime;  // "" until this run finished its first pass
  std::string stoppedTime;   // "" unless it stopped cleanly
};

struct ControlPlaneFacts {
  bool lockHeld = false;  // DIR/run.lock is locked by a live process
  pid_t lockHolder = 0;   // its pid; <= 0 when unknown
  std::optional<ControlPlaneRecord> record;
};

enum class ControlPlaneKind {
  kRunning,        // passes finish: the stored status is current
  kStarting,       // runs, but has not finished its first pass yet
  kNotResponding,  // holds the lock but finished no pass for too long
  kStopped,        // stopped cleanly (its agents and PostgreSQL with it)
  kCrashed,        // gone without a clean stop: the data plane may still run
  kNeverRan,
};

struct ControlPlaneState {
  ControlPlaneKind kind = ControlPlaneKind::kNeverRan;
  std::string since;    // RFC 3339: when it was last seen doing its work ("" if never)
  std::string message;  // for people: what runs, since when
  bool running() const { return kind == ControlPlaneKind::kRunning || kind == ControlPlaneKind::kStarting; }
};

// A pass longer than this (a tear-down waits up to 90 s for an agent)
// counts as not responding.
inline constexpr std::chrono::seconds kNotRespondingAfter{180};

ControlPlaneState AssessControlPlane(const ControlPlaneFacts& facts, std::chrono::system_clock::time_point now,
                                     std::chrono::seconds notRespondingAfter = kNotRespondingAfter);

// The status as `get` and `wait` report it: when the control plane crashed
// or does not respond, every condition is Unknown (reason
// ControlPlaneNotRunning or ControlPlaneNotResponding, the state's message)
// and the phase Unknown; the instances stay as last observed. Otherwise the
// stored status as it is (a clean stop wrote its own).
api::ReplicaSetStatus StatusAsSeen(const api::ReplicaSetStatus& stored, const ControlPlaneState& state);

enum class WaitStep { kMet, kKeepWaiting, kFail };

// `pgrs local wait`: met only while the control plane runs and has written
// this status (`conditionMet` says the stored condition holds for the
// current generation); fails once the control plane has been seen not
// running for `grace` (time for a `run` that is being started to take the
// lock), never reporting a success it no longer observes.
WaitStep DecideWaitStep(bool conditionMet, const ControlPlaneState& state, std::chrono::milliseconds notRunningFor,
                        std::chrono::milliseconds grace);

// --- Ports.

// Instance N of a set listens on spec.local.basePort + N - 1. The ports a
// stored set holds: those of its spec, and of every instance its status
// names (a scale-down in progress holds more).
struct PortRange {
  int first = 0;
  int last = 0;  // inclusive
};
PortRange PortsOf(const api::PostgresReplicaSet& set);

// The error to refuse `candidate` with when its ports overlap those of a
// stored set of another name, naming both sets and spec.local.basePort;
// nullopt when they do not.
std::optional<std::string> FindPortOverlap(const api::PostgresReplicaSet& candidate,
                                           const std::vector<api::PostgresReplicaSet>& stored);

}  // namespace pgrs::reconcilers
