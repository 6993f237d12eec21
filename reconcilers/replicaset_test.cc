// Scenario tables for the replica-set reconciler: one row per situation,
// each checking the actions and status a user would expect.
#include "reconcilers/replicaset.h"

#include <gtest/gtest.h>

namespace pgrs::reconcilers {
namespace {

using namespace std::chrono_literals;

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1800000000));

api::PostgresReplicaSet Set(int instances, const std::string& primary = "") {
  api::PostgresReplicaSet set;
  set.metadata.name = "demo";
  set.metadata.generation = 4;
  set.spec.instances = instances;
  api::ApplyDefaults(set.spec);
  set.status.currentPrimary = primary;
  set.status.targetPrimary = primary;
  return set;
}

ObservedInstance Primary(int index, const std::vector<std::string>& streaming = {},
                         const std::vector<std::string>& slots = {}) {
  ObservedInstance i;
  i.name = "demo-" + std::to_string(index);
  i.index = index;
  i.host = "127.0.0.1";
  i.port = 15431 + index;
  i.agentReachable = true;
  i.agentState = agent::kStateRunning;
  i.dataDirRole = "primary";
  i.postgresRunning = true;
  i.pgReachable = true;
  i.inRecovery = false;
  i.timeline = 1;
  i.currentLsn = 0x5000060;
  i.replicationRoleExists = true;
  for (const auto& s : streaming) {
    ReplicationRow row;
    row.applicationName = s;
    row.state = "streaming";
    row.syncState = "async";
    row.replayLsn = 0x5000000;
    row.lagBytes = 0x60;
    i.replication.push_back(row);
  }
  for (const auto& s : slots) i.slots.push_back({s, true, 0x5000000});
  return i;
}

ObservedInstance Standby(int index) {
  ObservedInstance i;
  i.name = "demo-" + std::to_string(index);
  i.index = index;
  i.host = "127.0.0.1";
  i.port = 15431 + index;
  i.agentReachable = true;
  i.agentState = agent::kStateRunning;
  i.dataDirRole = "standby";
  i.postgresRunning = true;
  i.pgReachable = true;
  i.inRecovery = true;
  i.timeline = 1;
  i.receiveLsn = i.replayLsn = 0x5000000;
  i.walReceiverStreaming = true;
  return i;
}

// A healthy set of `n`: demo-1 primary, the rest streaming with slots.
ObservedSet Healthy(int n) {
  std::vector<std::string> names, slots;
  for (int i = 2; i <= n; ++i) {
    names.push_back("demo-" + std::to_string(i));
    slots.push_back("pgrs_demo_" + std::to_string(i));
  }
  ObservedSet o;
  o.instances.push_back(Primary(1, names, slots));
  for (int i = 2; i <= n; ++i) o.instances.push_back(Standby(i));
  return o;
}

std::vector<std::string> Actions(const Plan& plan) {
  std::vector<std::string> out;
  for (const auto& a : plan.actions) {
    std::string s = ActionTypeName(a.type);
    s += ":" + (a.slot.empty() ? a.instance : a.slot);
    if (a.type == ActionType::kCreateInstance) s += ":" + a.config.role;
    out.push_back(s);
  }
  return out;
}

std::string ConditionStatus(const Plan& plan, const std::string& type) {
  const auto* c = api::FindCondition(plan.status, type);
  return c ? c->status : "absent";
}

struct Scenario {
  std::string name;
  api::PostgresReplicaSet set;
  ObservedSet observed;
  std::vector<std::string> actions;
  std::string ready;
  std::string phase;
};

class ReconcileScenarios : public ::testing::TestWithParam<Scenario> {};

TEST_P(ReconcileScenarios, PlansTheNextStep) {
  const Scenario& s = GetParam();
  Plan plan = Reconcile(s.set, s.observed, kNow);
  EXPECT_EQ(Actions(plan), s.actions);
  EXPECT_EQ(ConditionStatus(plan, "Ready"), s.ready);
  EXPECT_EQ(plan.status.phase, s.phase);
  EXPECT_EQ(plan.status.observedGeneration, 4);
  // Running the same plan's inputs again gives the same plan: no hidden state.
  EXPECT_EQ(Actions(Reconcile(s.set, s.observed, kNow)), s.actions);
}

std::vector<Scenario> Scenarios() {
  std::vector<Scenario> out;
  out.push_back({"EmptySetBootstrapsPrimaryFirst", Set(3), {}, {"CreateInstance:demo-1:primary"}, "False",
                 "Bootstrapping"});
  {
    auto set = Set(3);
    set.spec.primary = "demo-2";
    out.push_back({"WantedPrimaryIsBootstrapped", set, {}, {"CreateInstance:demo-2:primary"}, "False",
                   "Bootstrapping"});
  }
  {
    ObservedSet o;
    auto p = Primary(1);
    p.pgReachable = false;
    p.postgresRunning = false;
    p.dataDirRole = "";
    p.agentState = agent::kStateInitializing;
    o.instances.push_back(p);
    out.push_back({"PrimaryInitializingWaits", Set(3, "demo-1"), o, {}, "False", "Bootstrapping"});
  }
  {
    ObservedSet o;
    auto p = Primary(1);
    p.replicationRoleExists = false;
    o.instances.push_back(p);
    out.push_back({"PrimaryUpCreatesRoleSlotsAndStandbys", Set(3, "demo-1"), o,
                   {"CreateReplicationRole:demo-1", "CreateSlot:pgrs_demo_2", "CreateSlot:pgrs_demo_3",
                    "CreateInstance:demo-2:standby", "CreateInstance:demo-3:standby"},
                   "False", "Reconciling"});
  }
  out.push_back({"HealthySetDoesNothing", Set(3, "demo-1"), Healthy(3), {}, "True", "Healthy"});
  out.push_back({"ScaleUpAddsNextStandbyWithSlot", Set(4, "demo-1"), Healthy(3),
                 {"CreateSlot:pgrs_demo_4", "CreateInstance:demo-4:standby"}, "False", "Reconciling"});
  out.push_back({"ScaleDownRemovesHighestStandbys", Set(2, "demo-1"), Healthy(4),
                 {"DeleteInstance:demo-4", "DeleteInstance:demo-3"}, "False", "Reconciling"});
  {
    // The primary is demo-3: scaling to 2 removes demo-2, never the primary.
    ObservedSet o;
    o.instances.push_back(Standby(1));
    o.instances.push_back(Standby(2));
    auto p = Primary(3, {"demo-1", "demo-2"}, {"pgrs_demo_1", "pgrs_demo_2"});
    o.instances.push_back(p);
    out.push_back({"ScaleDownNeverRemovesPrimary", Set(2, "demo-3"), o, {"DeleteInstance:demo-2"}, "False",
                   "Reconciling"});
    out.push_back({"ScaleToOneKeepsOnlyPrimary", Set(1, "demo-3"), o,
                   {"DeleteInstance:demo-2", "DeleteInstance:demo-1"}, "False", "Reconciling"});
  }
  {
    // After a scale-down the slot of the removed standby is idle: dropped.
    ObservedSet o = Healthy(2);
    o.instances[0].slots.push_back({"pgrs_demo_3", false, 0});
    o.instances[0].slots.push_back({"user_slot", false, 0});  // not ours: left alone
    out.push_back({"StaleSlotDropped", Set(2, "demo-1"), o, {"DropSlot:pgrs_demo_3"}, "False", "Reconciling"});
  }
  {
    auto set = Set(3, "demo-1");
    set.spec.replication.slots = false;
    ObservedSet o;
    o.instances.push_back(Primary(1));
    out.push_back({"NoSlotsWhenDisabled", set, o, {"CreateInstance:demo-2:standby", "CreateInstance:demo-3:standby"},
                   "False", "Reconciling"});
  }
  {
    ObservedSet o = Healthy(3);
    o.instances[2].postgresRunning = false;
    o.instances[2].pgReachable = false;
    o.instances[2].agentState = agent::kStateRestarting;
    o.instances[0].replication.pop_back();
    out.push_back({"CrashedStandbyDegradesSet", Set(3, "demo-1"), o, {}, "False", "Degraded"});
  }
  {
    // Status was lost: the data directories tell which one is the primary.
    ObservedSet o = Healthy(3);
    out.push_back({"AdoptsPrimaryFromDataDirectory", Set(3, ""), o, {}, "True", "Healthy"});
  }
  {
    // Two primary data directories and no status: never guess.
    ObservedSet o = Healthy(2);
    o.instances[1].dataDirRole = "primary";
    out.push_back({"TwoPrimaryDirectoriesNeedAPerson", Set(2, ""), o, {}, "False", "Bootstrapping"});
  }
  {
    ObservedSet o = Healthy(3);
    o.instances[1].agentReachable = false;
    out.push_back({"SilentAgentIsNotReady", Set(3, "demo-1"), o, {}, "False", "Degraded"});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Table, ReconcileScenarios, ::testing::ValuesIn(Scenarios()),
                         [](const auto& info) { return info.param.name; });

TEST(Reconcile, StandbysFollowThePrimaryWithTheirSlots) {
  Plan plan = Reconcile(Set(3, "demo-1"), Healthy(3), kNow);
  ASSERT_EQ(plan.configs.size(), 3u);
  EXPECT_EQ(plan.configs["demo-1"].role, "primary");
  EXPECT_EQ(plan.configs["demo-2"].role, "standby");
  EXPECT_EQ(plan.configs["demo-2"].upstreamHost, "127.0.0.1");
  EXPECT_EQ(plan.configs["demo-2"].upstreamPort, 15432);
  EXPECT_EQ(plan.configs["demo-3"].slotName, "pgrs_demo_3");
  EXPECT_EQ(plan.configs["demo-1"].synchronousStandbyNames, "");
}

TEST(Reconcile, SyncModeListsStandbysAsAnyK) {
  auto set = Set(3, "demo-1");
  set.spec.replication.mode = "sync";
  set.spec.replication.syncReplicas = 1;
  Plan plan = Reconcile(set, Healthy(3), kNow);
  EXPECT_EQ(plan.configs["demo-1"].synchronousStandbyNames, "ANY 1 (\"demo-2\", \"demo-3\")");
}

TEST(Reconcile, StatusReportsLagRoleAndConnectionlessFields) {
  Plan plan = Reconcile(Set(3, "demo-1"), Healthy(3), kNow);
  ASSERT_EQ(plan.status.instances.size(), 3u);
  const auto& primary = plan.status.instances[0];
  EXPECT_EQ(primary.role, "primary");
  EXPECT_EQ(primary.state, "Running");
  EXPECT_EQ(primary.lsn, "0/5000060");
  const auto& standby = plan.status.instances[1];
  EXPECT_EQ(standby.role, "standby");
  EXPECT_EQ(standby.state, "Streaming");
  EXPECT_EQ(standby.lagBytes, 0x60);
  EXPECT_EQ(standby.syncState, "async");
  EXPECT_EQ(plan.status.readyInstances, 3);
  EXPECT_EQ(plan.status.timeline, 1);
}

TEST(Reconcile, ConditionKeepsTransitionTimeWhileStatusHolds) {
  auto set = Set(3, "demo-1");
  Plan first = Reconcile(set, Healthy(3), kNow);
  set.status = first.status;
  Plan later = Reconcile(set, Healthy(3), kNow + 60s);
  EXPECT_EQ(api::FindCondition(later.status, "Ready")->lastTransitionTime,
            api::FindCondition(first.status, "Ready")->lastTransitionTime);
  auto broken = Healthy(3);
  broken.instances[1].agentReachable = false;
  set.status = later.status;
  Plan after = Reconcile(set, broken, kNow + 120s);
  EXPECT_EQ(api::FindCondition(after.status, "Ready")->status, "False");
  EXPECT_EQ(api::FindCondition(after.status, "Ready")->lastTransitionTime, FormatTime(kNow + 120s));
  EXPECT_EQ(api::FindCondition(after.status, "Degraded")->status, "True");
}

TEST(Reconcile, SlotNamesAreValidIdentifiers) {
  EXPECT_EQ(SlotName("demo-2"), "pgrs_demo_2");
  EXPECT_EQ(SlotName("a-b-c-16"), "pgrs_a_b_c_16");
}

}  // namespace
}  // namespace pgrs::reconcilers
