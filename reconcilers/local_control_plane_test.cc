// Local mode's data plane without its control plane: one row per situation.
#include "reconcilers/local_control_plane.h"

#include <gtest/gtest.h>

namespace pgrs::reconcilers {
namespace {

using namespace std::chrono_literals;

TEST(DecideAgentTest, Table) {
  struct Row {
    std::string name;
    AgentFacts facts;
    AgentAction expected;
  };
  const std::vector<Row> rows = {
      {"running agent of a stored instance: adopted", {true, true, true, false}, AgentAction::kAdopt},
      {"running agent of a deleted set: orphan", {true, false, false, false}, AgentAction::kStopOrphan},
      {"set dir removed by hand, record gone too: orphan", {true, false, true, false}, AgentAction::kStopOrphan},
      {"running agent of a removed instance: orphan", {true, true, false, false}, AgentAction::kStopOrphan},
      {"second agent for one directory: orphan", {true, true, true, true}, AgentAction::kStopOrphan},
      {"stored instance without agent: spawned", {false, true, true, false}, AgentAction::kSpawn},
      {"nothing runs for a deleted set: nothing", {false, false, true, false}, AgentAction::kNothing},
      {"nothing runs for a removed instance: nothing", {false, true, false, false}, AgentAction::kNothing},
  };
  for (const auto& row : rows) {
    AgentDecision d = DecideAgent(row.facts);
    EXPECT_EQ(AgentActionName(d.action), std::string(AgentActionName(row.expected))) << row.name;
    EXPECT_FALSE(d.reason.empty()) << row.name;
  }
}

std::chrono::system_clock::time_point At(const std::string& t) { return *api::ParseTime(t); }

TEST(AssessControlPlaneTest, Table) {
  const std::string kNow = "2026-12-03T10:00:00Z";
  struct Row {
    std::string name;
    bool lockHeld;
    pid_t holder;
    ControlPlaneRecord record;  // pid 0: none (GCC 12 misreads std::optional in these tables)
    ControlPlaneKind kind;
    std::string since;
    std::string inMessage;
  };
  const ControlPlaneRecord passing{42, "2026-12-03T09:00:00Z", "2026-12-03T09:59:59Z", ""};
  const ControlPlaneRecord fresh{42, "2026-12-03T09:59:59Z", "", ""};
  const ControlPlaneRecord stuck{42, "2026-12-03T09:00:00Z", "2026-12-03T09:50:00Z", ""};
  const ControlPlaneRecord stopped{42, "2026-12-03T09:00:00Z", "2026-12-03T09:58:00Z", "2026-12-03T09:58:01Z"};
  const ControlPlaneRecord crashed{42, "2026-12-03T09:00:00Z", "2026-12-03T09:59:30Z", ""};
  const std::vector<Row> rows = {
      {"lock held, passes finish: running", true, 42, passing, ControlPlaneKind::kRunning, "2026-12-03T09:00:00Z",
       "is running (pid 42)"},
      {"lock held, no pass yet: starting", true, 42, fresh, ControlPlaneKind::kStarting, "2026-12-03T09:59:59Z", "is starting"},
      {"lock held, the record is an earlier run's: starting", true, 43, passing, ControlPlaneKind::kStarting, "",
       "(pid 43) is starting"},
      {"lock held, no record yet: starting", true, 43, {}, ControlPlaneKind::kStarting, "", "starting"},
      {"lock held, no pass for 10 minutes: not responding", true, 42, stuck, ControlPlaneKind::kNotResponding,
       "2026-12-03T09:50:00Z", "finished no pass since 2026-12-03T09:50:00Z (600s ago)"},
      {"lock free, clean stop: stopped", false, 0, stopped, ControlPlaneKind::kStopped, "2026-12-03T09:58:01Z",
       "stopped at 2026-12-03T09:58:01Z"},
      {"lock free, no stop recorded: crashed since its last pass", false, 0, crashed, ControlPlaneKind::kCrashed,
       "2026-12-03T09:59:30Z", "not running since 2026-12-03T09:59:30Z (30s ago) (pid 42"},
      {"lock free, crashed before its first pass: since its start", false, 0, fresh, ControlPlaneKind::kCrashed,
       "2026-12-03T09:59:59Z", "not running since 2026-12-03T09:59:59Z"},
      {"nothing at all: never ran", false, 0, {}, ControlPlaneKind::kNeverRan, "", "has not run"},
  };
  for (const auto& row : rows) {
    ControlPlaneFacts facts{row.lockHeld, row.holder, std::nullopt};
    if (row.record.pid != 0) facts.record = row.record;
    ControlPlaneState s = AssessControlPlane(facts, At(kNow), 180s);
    EXPECT_EQ(static_cast<int>(s.kind), static_cast<int>(row.kind)) << row.name << ": " << s.message;
    EXPECT_EQ(s.since, row.since) << row.name;
    EXPECT_NE(s.message.find(row.inMessage), std::string::npos) << row.name << ": " << s.message;
  }
}

api::ReplicaSetStatus HealthyStatus() {
  api::ReplicaSetStatus status;
  status.phase = "Healthy";
  status.currentPrimary = "demo-1";
  status.readyInstances = 2;
  status.conditions = {{"Ready", "True", "AllInstancesReady", "", "2026-12-03T09:00:00Z", 1},
                       {"Progressing", "False", "Settled", "", "2026-12-03T09:00:00Z", 1},
                       {"Degraded", "Unknown", "NotObserved", "", "2026-12-03T08:00:00Z", 1}};
  return status;
}

TEST(StatusAsSeenTest, Table) {
  struct Row {
    std::string name;
    ControlPlaneKind kind;
    bool overlaid;
    std::string reason;
  };
  const std::vector<Row> rows = {
      {"running: stored status", ControlPlaneKind::kRunning, false, ""},
      {"starting: stored status", ControlPlaneKind::kStarting, false, ""},
      {"clean stop: the status it wrote", ControlPlaneKind::kStopped, false, ""},
      {"never ran: stored status", ControlPlaneKind::kNeverRan, false, ""},
      {"crashed: Unknown", ControlPlaneKind::kCrashed, true, "ControlPlaneNotRunning"},
      {"not responding: Unknown", ControlPlaneKind::kNotResponding, true, "ControlPlaneNotResponding"},
  };
  for (const auto& row : rows) {
    ControlPlaneState state{row.kind, "2026-12-03T09:59:30Z", "the message"};
    api::ReplicaSetStatus seen = StatusAsSeen(HealthyStatus(), state);
    if (!row.overlaid) {
      EXPECT_EQ(seen, HealthyStatus()) << row.name;
      continue;
    }
    EXPECT_EQ(seen.phase, "Unknown") << row.name;
    EXPECT_EQ(seen.currentPrimary, "demo-1") << row.name << ": what it last observed stays";
    ASSERT_EQ(seen.conditions.size(), 3u) << row.name;
    for (const auto& c : seen.conditions) {
      EXPECT_EQ(c.status, "Unknown") << row.name << " " << c.type;
      EXPECT_EQ(c.reason, row.reason) << row.name << " " << c.type;
      EXPECT_EQ(c.message, "the message") << row.name << " " << c.type;
    }
    // A condition that changes takes the time it was last seen; one that
    // was Unknown already keeps its own.
    EXPECT_EQ(seen.conditions[0].lastTransitionTime, "2026-12-03T09:59:30Z") << row.name;
    EXPECT_EQ(seen.conditions[2].lastTransitionTime, "2026-12-03T08:00:00Z") << row.name;
  }
}

TEST(DecideWaitStepTest, Table) {
  struct Row {
    std::string name;
    bool met;
    ControlPlaneKind kind;
    std::chrono::milliseconds notRunningFor;
    WaitStep expected;
  };
  const std::vector<Row> rows = {
      {"running and met", true, ControlPlaneKind::kRunning, 0ms, WaitStep::kMet},
      {"running, not met yet", false, ControlPlaneKind::kRunning, 0ms, WaitStep::kKeepWaiting},
      {"starting: a stored Ready is an earlier run's", true, ControlPlaneKind::kStarting, 0ms,
       WaitStep::kKeepWaiting},
      {"crashed with a stale Ready: never met", true, ControlPlaneKind::kCrashed, 0ms, WaitStep::kKeepWaiting},
      {"crashed for the grace: fails", true, ControlPlaneKind::kCrashed, 3000ms, WaitStep::kFail},
      {"not responding for the grace: fails", true, ControlPlaneKind::kNotResponding, 5000ms, WaitStep::kFail},
      {"never ran, within the grace: a run may be starting", false, ControlPlaneKind::kNeverRan, 1000ms,
       WaitStep::kKeepWaiting},
      {"never ran for the grace: fails", false, ControlPlaneKind::kNeverRan, 3000ms, WaitStep::kFail},
      {"stopped for the grace: fails", false, ControlPlaneKind::kStopped, 3000ms, WaitStep::kFail},
  };
  for (const auto& row : rows) {
    ControlPlaneState state{row.kind, "", ""};
    EXPECT_EQ(static_cast<int>(DecideWaitStep(row.met, state, row.notRunningFor, 3000ms)),
              static_cast<int>(row.expected))
        << row.name;
  }
}

api::PostgresReplicaSet Set(const std::string& name, int basePort, int instances) {
  api::PostgresReplicaSet set;
  set.metadata.name = name;
  set.spec.local.basePort = basePort;
  set.spec.instances = instances;
  return set;
}

TEST(FindPortOverlapTest, Table) {
  api::PostgresReplicaSet scalingDown = Set("shrinking", 17000, 1);
  scalingDown.status.instances.resize(3);
  for (int i = 0; i < 3; ++i) scalingDown.status.instances[i].port = 17000 + i;
  struct Row {
    std::string name;
    api::PostgresReplicaSet candidate;
    std::vector<api::PostgresReplicaSet> stored;
    std::string expected;  // "" = no overlap
  };
  const std::vector<Row> rows = {
      {"nothing stored", Set("b", 15432, 3), {}, ""},
      {"same base port",
       Set("b", 15432, 3),
       {Set("a", 15432, 3)},
       "postgresreplicaset b: spec.local.basePort: ports 15432-15434 overlap the ports 15432-15434 of "
       "postgresreplicaset a (its spec.local.basePort is 15432, spec.instances 3); choose a spec.local.basePort "
       "outside them"},
      {"last port of the other", Set("b", 15434, 1), {Set("a", 15432, 3)},
       "postgresreplicaset b: spec.local.basePort: port 15434 overlap the ports 15432-15434 of postgresreplicaset a"},
      {"adjacent: no overlap", Set("b", 15435, 3), {Set("a", 15432, 3)}, ""},
      {"below, reaching in", Set("b", 15430, 3), {Set("a", 15432, 3)}, "of postgresreplicaset a"},
      {"the set itself (an update, a scale-up) is not a conflict", Set("a", 15432, 5), {Set("a", 15432, 3)}, ""},
      {"a scale-up into the next set", Set("a", 15432, 5), {Set("a", 15432, 3), Set("c", 15436, 2)},
       "postgresreplicaset a: spec.local.basePort: ports 15432-15436 overlap the ports 15436-15437 of "
       "postgresreplicaset c"},
      {"defaults: both on 15432", [] {
         api::PostgresReplicaSet b;
         b.metadata.name = "b";
         return b;
       }(),
       {Set("a", 15432, 1)}, "port 15432 overlap the port 15432 of postgresreplicaset a"},
      {"instances still running from a scale-down count", Set("b", 17002, 1), {scalingDown},
       "overlap the ports 17000-17002 of postgresreplicaset shrinking"},
  };
  for (const auto& row : rows) {
    auto found = FindPortOverlap(row.candidate, row.stored);
    if (row.expected.empty()) {
      EXPECT_FALSE(found.has_value()) << row.name << ": " << found.value_or("");
    } else {
      ASSERT_TRUE(found.has_value()) << row.name;
      EXPECT_NE(found->find(row.expected), std::string::npos) << row.name << ": " << *found;
    }
  }
}

}  // namespace
}  // namespace pgrs::reconcilers
