// Scenario tables for the replica-set reconciler: one row per situation,
// each checking the actions and status a user would expect.
#include "reconcilers/replicaset.h"

#include <gtest/gtest.h>

#include <algorithm>

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
  i.postgresReady = true;
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
  for (const auto& s : slots) i.slots.push_back({s, true, 0x5000000, "reserved"});
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
  i.postgresReady = true;
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
  o.lease = {true, "demo-1", std::chrono::duration_cast<std::chrono::milliseconds>(kNow.time_since_epoch()).count(), 5};
  return o;
}

// The lease held by `holder`, renewed at `renewed`.
ObservedLease LeaseOf(const std::string& holder, std::chrono::system_clock::time_point renewed = kNow) {
  return {true, holder, std::chrono::duration_cast<std::chrono::milliseconds>(renewed.time_since_epoch()).count(), 5};
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
  out.push_back({"EmptySetBootstrapsPrimaryFirst", Set(3), {}, {"AcquireLease:demo-1", "CreateInstance:demo-1:primary"},
                 "False", "Bootstrapping"});
  {
    auto set = Set(3);
    set.spec.primary = "demo-2";
    out.push_back({"WantedPrimaryIsBootstrapped", set, {}, {"AcquireLease:demo-2", "CreateInstance:demo-2:primary"},
                   "False", "Bootstrapping"});
  }
  {
    ObservedSet o;
    auto p = Primary(1);
    p.pgReachable = false;
    p.postgresRunning = false;
    p.dataDirRole = "";
    p.agentState = agent::kStateInitializing;
    o.instances.push_back(p);
    o.lease = LeaseOf("demo-1");
    out.push_back({"PrimaryInitializingWaits", Set(3, "demo-1"), o, {}, "False", "Bootstrapping"});
  }
  {
    ObservedSet o;
    auto p = Primary(1);
    p.replicationRoleExists = false;
    o.instances.push_back(p);
    o.lease = LeaseOf("demo-1");
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
    o.lease = LeaseOf("demo-3");
    out.push_back({"ScaleDownNeverRemovesPrimary", Set(2, "demo-3"), o, {"DeleteInstance:demo-2"}, "False",
                   "Reconciling"});
    out.push_back({"ScaleToOneKeepsOnlyPrimary", Set(1, "demo-3"), o,
                   {"DeleteInstance:demo-2", "DeleteInstance:demo-1"}, "False", "Reconciling"});
  }
  {
    // After a scale-down the slot of the removed standby is idle: dropped.
    ObservedSet o = Healthy(2);
    o.instances[0].slots.push_back({"pgrs_demo_3", false, 0, ""});
    o.instances[0].slots.push_back({"user_slot", false, 0, "lost"});  // not ours: left alone
    out.push_back({"StaleSlotDropped", Set(2, "demo-1"), o, {"DropSlot:pgrs_demo_3"}, "False", "Reconciling"});
  }
  {
    auto set = Set(3, "demo-1");
    set.spec.replication.slots = false;
    ObservedSet o;
    o.instances.push_back(Primary(1));
    o.lease = LeaseOf("demo-1");
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

TEST(Reconcile, BackupRepositoryAndStanzaReachEveryInstanceOnlyWithSpecBackup) {
  for (const auto& [name, config] : Reconcile(Set(3, "demo-1"), Healthy(3), kNow).configs) {
    EXPECT_EQ(config.backupRepositoryPath, "") << name;
    EXPECT_EQ(config.stanza, "") << name;
  }
  api::PostgresReplicaSet set = Set(3, "demo-1");
  set.spec.backup.emplace().repository.path = "/var/lib/pgrs-backups";
  Plan plan = Reconcile(set, Healthy(3), kNow);
  ASSERT_EQ(plan.configs.size(), 3u);
  for (const auto& [name, config] : plan.configs) {
    EXPECT_EQ(config.backupRepositoryPath, "/var/lib/pgrs-backups") << name;
    EXPECT_EQ(config.stanza, "demo") << name;
    EXPECT_EQ(config.backupRetentionFull, 0) << name;  // keep every backup
  }
  set.spec.backup->retention.full = 2;
  for (const auto& [name, config] : Reconcile(set, Healthy(3), kNow).configs) {
    EXPECT_EQ(config.backupRetentionFull, 2) << name;
  }
}

TEST(Reconcile, StatusBackupAndBackupsHealthyOnlyWithSpecBackup) {
  Plan plain = Reconcile(Set(3, "demo-1"), Healthy(3), kNow);
  EXPECT_FALSE(plain.status.backup);
  EXPECT_EQ(api::FindCondition(plain.status, "BackupsHealthy"), nullptr);
  api::PostgresReplicaSet set = Set(3, "demo-1");
  set.spec.backup.emplace().repository.path = "/var/lib/pgrs-backups";
  ObservedSet observed = Healthy(3);
  for (auto& inst : observed.instances) {
    if (inst.name != "demo-1") continue;
    inst.repository.checkedMs = 1796292000000;
    inst.repository.backups = {{"20261203-100000F", "full", 1796292000, 1796292004, "0/2000028", "0/2000100", 1, 1}};
    inst.archiver = {true, 3, "000000010000000000000004", 1796292060000, 0, "", 0};
  }
  Plan plan = Reconcile(set, observed, kNow);
  ASSERT_TRUE(plan.status.backup);
  ASSERT_EQ(plan.status.backup->backups.size(), 1u);
  EXPECT_EQ(plan.status.backup->lastArchivedWal, "000000010000000000000004");
  const api::Condition* healthy = api::FindCondition(plan.status, "BackupsHealthy");
  ASSERT_NE(healthy, nullptr);
  EXPECT_EQ(healthy->status, "True") << healthy->message;
}

TEST(Reconcile, WalBoundsAndDataChecksumsReachEveryInstance) {
  api::PostgresReplicaSet set = Set(3, "demo-1");
  for (const auto& [name, config] : Reconcile(set, Healthy(3), kNow).configs) {
    EXPECT_EQ(config.maxSlotWalKeepSize, "512MB") << name;
    EXPECT_TRUE(config.replicationSlots) << name;
    EXPECT_TRUE(config.dataChecksums) << name;
  }
  set.spec.replication.maxSlotWalKeepSize = "-1";
  set.spec.replication.slots = false;
  set.spec.postgres.dataChecksums = false;
  Plan plan = Reconcile(set, Healthy(3), kNow);
  for (const auto& [name, config] : plan.configs) {
    EXPECT_EQ(config.maxSlotWalKeepSize, "-1") << name;
    EXPECT_FALSE(config.replicationSlots) << name;
    EXPECT_FALSE(config.dataChecksums) << name;
  }
  // A standby created now gets it too: its config is the one of its clone.
  plan = Reconcile(Set(4, "demo-1"), Healthy(3), kNow);
  ASSERT_EQ(plan.actions.back().type, ActionType::kCreateInstance);
  EXPECT_EQ(plan.actions.back().config.maxSlotWalKeepSize, "512MB");
}

// A standby's slot on the primary that lost (or is about to lose) the WAL it
// needs: said in the standby's message and the Degraded condition; a lost
// slot is dropped and created afresh once the standby's agent is back, and
// kept while it is away (so that status keeps saying why).
TEST(Reconcile, SlotThatLostItsWalIsReportedAndRecreatedOnceItsStandbyIsBack) {
  struct Row {
    const char* name;
    std::string walStatus;
    bool slotActive;
    bool standbyAgentBack;
    bool backup;
    std::vector<std::string> actions;
    std::string messagePart;  // "" = no slot problem in status
  };
  const Row rows[] = {
      {"LostWhileStandbyAway", "lost", false, false, false, {}, "by being cloned again"},
      {"LostStandbyBack", "lost", false, true, false, {"DropSlot:pgrs_demo_2", "CreateSlot:pgrs_demo_2"},
       "lost WAL this standby needs: it fell more than spec.replication.maxSlotWalKeepSize (512MB) behind"},
      {"LostWithArchive", "lost", false, true, true, {"DropSlot:pgrs_demo_2", "CreateSlot:pgrs_demo_2"},
       "from the archive"},
      // In use for a moment (the walsender tries it): dropped in a later pass.
      {"LostButActive", "lost", true, true, false, {}, "lost WAL"},
      {"Unreserved", "unreserved", false, false, false, {}, "removes WAL this standby needs at its next checkpoint"},
      {"Extended", "extended", false, false, false, {}, ""},
      {"Reserved", "reserved", false, false, false, {}, ""},
  };
  for (const Row& row : rows) {
    api::PostgresReplicaSet set = Set(3, "demo-1");
    if (row.backup) {
      set.spec.backup.emplace();
      set.spec.backup->repository.path = "/var/lib/pgrs-backups";
    }
    ObservedSet o = Healthy(3);
    ObservedInstance& primary = o.instances[0];
    primary.replication.erase(primary.replication.begin());  // demo-2 does not stream
    primary.slots[0].walStatus = row.walStatus;
    primary.slots[0].active = row.slotActive;
    ObservedInstance& standby = o.instances[1];
    standby.walReceiverStreaming = false;
    if (row.standbyAgentBack) {
      standby.agentState = agent::kStateCloning;
      standby.postgresRunning = standby.pgReachable = false;
    } else {
      standby.agentReachable = false;
      standby.postgresRunning = standby.pgReachable = false;
    }
    Plan plan = Reconcile(set, o, kNow);
    EXPECT_EQ(Actions(plan), row.actions) << row.name;
    const api::InstanceStatus& s = plan.status.instances[1];
    ASSERT_EQ(s.name, "demo-2");
    const api::Condition* degraded = api::FindCondition(plan.status, "Degraded");
    ASSERT_NE(degraded, nullptr);
    if (row.messagePart.empty()) {
      EXPECT_EQ(s.message.find("replication slot"), std::string::npos) << row.name << ": " << s.message;
      continue;
    }
    EXPECT_NE(s.message.find("replication slot pgrs_demo_2"), std::string::npos) << row.name << ": " << s.message;
    EXPECT_NE(s.message.find(row.messagePart), std::string::npos) << row.name << ": " << s.message;
    EXPECT_EQ(degraded->status, "True") << row.name;
    EXPECT_NE(degraded->message.find("demo-2"), std::string::npos) << row.name << ": " << degraded->message;
    EXPECT_NE(degraded->message.find(row.messagePart), std::string::npos) << row.name << ": " << degraded->message;
    EXPECT_EQ(plan.status.phase, "Degraded") << row.name;
  }
}

// A standby that streams again through its slot is no trouble any more.
TEST(Reconcile, StreamingStandbyWithAReservedSlotIsHealthy) {
  Plan plan = Reconcile(Set(3, "demo-1"), Healthy(3), kNow);
  EXPECT_EQ(ConditionStatus(plan, "Degraded"), "False");
  EXPECT_EQ(plan.status.instances[1].message, "");
}

TEST(Reconcile, S3RepositoryReachesEveryInstanceWithoutSecrets) {
  api::PostgresReplicaSet set = Set(3, "demo-1");
  api::S3RepositorySpec s3;
  s3.endpoint = "localhost:9000";
  s3.bucket = "pgrs";
  s3.region = "us-east-1";
  s3.uriStyle = "path";
  s3.path = "/sets";
  s3.credentialsFile = "/etc/pgrs/s3";
  s3.caFile = "/etc/pgrs/ca.pem";
  s3.verifyTLS = false;
  set.spec.backup.emplace().repository.s3 = s3;
  Plan plan = Reconcile(set, Healthy(3), kNow);
  ASSERT_EQ(plan.configs.size(), 3u);
  for (const auto& [name, config] : plan.configs) {
    EXPECT_EQ(config.backupRepositoryPath, "/sets") << name;
    EXPECT_EQ(config.stanza, "demo") << name;
    ASSERT_TRUE(config.backupS3) << name;
    EXPECT_EQ(config.backupS3->endpoint, "localhost") << name;
    EXPECT_EQ(config.backupS3->port, 9000) << name;
    EXPECT_EQ(config.backupS3->bucket, "pgrs") << name;
    EXPECT_EQ(config.backupS3->region, "us-east-1") << name;
    EXPECT_EQ(config.backupS3->uriStyle, "path") << name;
    EXPECT_FALSE(config.backupS3->verifyTLS) << name;
    // The keys and the CA are the executor's, from the runtime.
    EXPECT_EQ(config.backupS3->key, "") << name;
    EXPECT_EQ(config.backupS3->keySecret, "") << name;
    EXPECT_EQ(config.backupS3->ca, "") << name;
  }
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
  EXPECT_EQ(api::FindCondition(after.status, "Ready")->lastTransitionTime, api::FormatTime(kNow + 120s));
  EXPECT_EQ(api::FindCondition(after.status, "Degraded")->status, "True");
}


// ---- failover and switchover, step by step ------------------------------

// Applies a plan's status as the next pass's previous status.
void Advance(api::PostgresReplicaSet& set, const Plan& plan) { set.status = plan.status; }

ObservedSet PrimaryCrashed() {
  ObservedSet o = Healthy(3);
  auto& p = o.instances[0];
  p.agentState = agent::kStatePrimaryDown;
  p.postgresRunning = false;
  p.pgReachable = false;
  p.replication.clear();
  o.instances[1].receiveLsn = 0x5000000;
  o.instances[2].receiveLsn = 0x5000100;  // demo-3 received more
  o.instances[1].walReceiverStreaming = o.instances[2].walReceiverStreaming = false;
  return o;
}

TEST(Failover, CrashedPrimaryIsFencedThenTheMostAdvancedStandbyPromoted) {
  auto set = Set(3, "demo-1");
  Advance(set, Reconcile(set, Healthy(3), kNow));

  // 1. The agent reports the postmaster down and holds it down: that is a
  //    fence already; the standby that received most is chosen and
  //    recorded before anything else happens.
  ObservedSet o = PrimaryCrashed();
  Plan plan = Reconcile(set, o, kNow + 100ms);
  EXPECT_EQ(plan.status.promotionReason, "PostmasterDown");
  EXPECT_EQ(plan.status.phase, "FailingOver");
  EXPECT_TRUE(plan.configs["demo-1"].fenced);
  EXPECT_EQ(plan.configs["demo-1"].fenceMode, "immediate");
  EXPECT_TRUE(Actions(plan).empty());
  EXPECT_EQ(plan.status.targetPrimary, "demo-3");
  EXPECT_EQ(plan.requeueAfter.count(), 0);
  EXPECT_EQ(plan.configs["demo-3"].role, "standby");
  Advance(set, plan);
  o.instances[0].agentFenced = true;
  o.instances[0].agentState = agent::kStateFenced;

  // 3. Recorded: the lease goes to demo-3, which is told to be primary.
  plan = Reconcile(set, o, kNow + 300ms);
  EXPECT_EQ(Actions(plan), std::vector<std::string>{"AcquireLease:demo-3"});
  EXPECT_EQ(plan.actions[0].expectedHolder, "demo-1");
  EXPECT_TRUE(plan.actions[0].holderFenced);
  EXPECT_EQ(plan.configs["demo-3"].role, "primary");
  EXPECT_TRUE(plan.configs["demo-1"].fenced);
  Advance(set, plan);

  // 4. demo-3 writes: it is the primary; everyone follows it.
  o.instances[2].inRecovery = false;
  o.instances[2].timeline = 2;
  o.instances[2].currentLsn = 0x5000200;
  o.lease = LeaseOf("demo-3", kNow + 300ms);
  plan = Reconcile(set, o, kNow + 500ms);
  EXPECT_EQ(plan.status.currentPrimary, "demo-3");
  EXPECT_EQ(plan.status.timeline, 2);
  EXPECT_TRUE(plan.status.promotionReason.empty());
  ASSERT_EQ(plan.status.failovers.size(), 1u);
  EXPECT_EQ(plan.status.failovers[0].from, "demo-1");
  EXPECT_EQ(plan.status.failovers[0].to, "demo-3");
  EXPECT_EQ(plan.status.failovers[0].reason, "PostmasterDown");
  EXPECT_NEAR(plan.status.failovers[0].unavailableSeconds, 0.4, 0.001);
  EXPECT_EQ(plan.configs["demo-1"].role, "standby");  // rejoin
  EXPECT_FALSE(plan.configs["demo-1"].fenced);
  EXPECT_EQ(plan.configs["demo-1"].upstreamPort, 15434);
  EXPECT_EQ(plan.configs["demo-2"].upstreamPort, 15434);
}

TEST(Failover, FrozenAgentWithServingPostgresWaitsForTheLeaseThenFencesFromOutside) {
  auto set = Set(3, "demo-1");
  Advance(set, Reconcile(set, Healthy(3), kNow));
  ObservedSet o = Healthy(3);
  o.instances[0].agentReachable = false;  // SIGSTOPped agent; PostgreSQL still serves
  o.instances[0].dataDirRole.clear();     // what a silent agent leaves unknown
  o.instances[0].agentState.clear();
  Plan plan = Reconcile(set, o, kNow + 2s);
  EXPECT_TRUE(plan.status.promotionReason.empty());
  EXPECT_TRUE(Actions(plan).empty());
  Advance(set, plan);
  plan = Reconcile(set, o, kNow + 5500ms);  // the 5 s lease has run out
  EXPECT_EQ(plan.status.promotionReason, "LeaseExpired");
  EXPECT_EQ(Actions(plan), std::vector<std::string>{"FenceFromOutside:demo-1"});
  // Nobody is chosen while it may still commit: the standbys' positions
  // seen now are not final.
  EXPECT_EQ(plan.status.targetPrimary, "demo-1");
  Advance(set, plan);
  // It no longer answers (in Kubernetes its Pod is gone, address and all),
  // but a standby still streams from it: not yet.
  o.instances[0].pgReachable = false;
  o.instances[0].host.clear();
  o.instances[1].walReceiverStreaming = true;
  plan = Reconcile(set, o, kNow + 5600ms);
  EXPECT_EQ(plan.status.targetPrimary, "demo-1");
  EXPECT_EQ(Actions(plan), std::vector<std::string>{"FenceFromOutside:demo-1"});
  Advance(set, plan);
  // Gone for good: now the most advanced standby is chosen.
  for (auto& i : o.instances) i.walReceiverStreaming = false;
  o.instances[2].receiveLsn += 16;
  plan = Reconcile(set, o, kNow + 5700ms);
  EXPECT_EQ(plan.status.targetPrimary, "demo-3");
}

TEST(Restore, TheFirstPrimaryOfANewSetIsRestoredUntilItRunsAndIsNotLostWhileItReplays) {
  api::PostgresReplicaSet set = Set(2);
  api::RecoverySpec recovery;
  recovery.source = "old";
  recovery.repository.path = "/var/lib/pgrs-backups";
  recovery.target = api::RecoveryTargetSpec{"2026-12-03T10:00:00Z", "", "", false};
  set.spec.bootstrap = api::BootstrapSpec{recovery};

  // Nothing exists: the primary is created with what to restore.
  Plan plan = Reconcile(set, ObservedSet{}, kNow);
  const Action* create = nullptr;
  for (const auto& a : plan.actions) {
    if (a.type == ActionType::kCreateInstance) create = &a;
  }
  ASSERT_NE(create, nullptr);
  ASSERT_TRUE(create->config.restore.has_value());
  EXPECT_EQ(create->config.restore->stanza, "old");
  EXPECT_EQ(create->config.restore->repositoryPath, "/var/lib/pgrs-backups");
  EXPECT_EQ(create->config.restore->targetTime, "2026-12-03T10:00:00Z");
  Advance(set, plan);

  // Restoring (no data directory yet): its config still says so.
  ObservedSet o = Healthy(1);
  ObservedInstance& p = o.instances[0];
  p.agentState = agent::kStateRestoring;
  p.dataDirRole = "";
  p.postgresRunning = p.postgresReady = p.pgReachable = false;
  plan = Reconcile(set, o, kNow + 1s);
  ASSERT_TRUE(plan.configs["demo-1"].restore.has_value());
  EXPECT_EQ(plan.status.instances[0].state, "Restoring");

  // Replaying the archive for longer than detectionSeconds: in recovery,
  // yet no lost primary, no standby created before it is promoted.
  p.dataDirRole = "primary";
  p.postgresRunning = p.postgresReady = p.pgReachable = true;
  p.inRecovery = true;
  Advance(set, plan);
  for (auto t : {2s, 10s, 30s}) {
    plan = Reconcile(set, o, kNow + t);
    EXPECT_TRUE(plan.status.primaryLostSince.empty()) << t.count();
    EXPECT_TRUE(plan.status.promotionReason.empty()) << t.count();
    EXPECT_FALSE(plan.configs["demo-1"].restore.has_value()) << "its data directory exists: nothing to restore";
    EXPECT_EQ(plan.status.instances[0].state, "Restoring");
    for (const auto& a : plan.actions) EXPECT_NE(a.type, ActionType::kCreateInstance) << a.ToString();
    Advance(set, plan);
  }

  // Promoted: a primary like any other; the set has run, so a lost data
  // directory is never restored again from the old backups.
  p.agentState = agent::kStateRunning;
  p.inRecovery = false;
  p.timeline = 3;
  plan = Reconcile(set, o, kNow + 31s);
  EXPECT_EQ(plan.status.timeline, 3);
  Advance(set, plan);
  p.dataDirRole = "";
  p.postgresRunning = p.postgresReady = p.pgReachable = false;
  plan = Reconcile(set, o, kNow + 32s);
  EXPECT_FALSE(plan.configs["demo-1"].restore.has_value());
}

TEST(Failover, SilentPrimaryIsLostOnlyAfterDetectionSeconds) {
  auto set = Set(3, "demo-1");
  Advance(set, Reconcile(set, Healthy(3), kNow));
  ObservedSet o = Healthy(3);
  o.instances[0].postgresReady = false;  // hung: its agent's probe gets no answer
  Plan plan = Reconcile(set, o, kNow + 1s);
  EXPECT_FALSE(plan.status.primaryLostSince.empty());
  EXPECT_TRUE(plan.status.promotionReason.empty());
  Advance(set, plan);
  plan = Reconcile(set, o, kNow + 4s);
  EXPECT_TRUE(plan.status.promotionReason.empty());
  Advance(set, plan);
  plan = Reconcile(set, o, kNow + 6100ms);  // 5 s after it was first missed
  EXPECT_EQ(plan.status.promotionReason, "Unresponsive");
  EXPECT_TRUE(plan.configs["demo-1"].fenced);
  EXPECT_EQ(plan.status.targetPrimary, "demo-1");  // nobody is chosen before the fence holds
  Advance(set, plan);
  plan = Reconcile(set, o, kNow + 6200ms);  // its agent has not stopped it yet
  EXPECT_EQ(plan.status.targetPrimary, "demo-1");
  EXPECT_TRUE(Actions(plan).empty());
}

TEST(Failover, DisabledOrSingleInstanceRestartsInPlace) {
  auto set = Set(3, "demo-1");
  set.spec.failover.enabled = false;
  Plan plan = Reconcile(set, PrimaryCrashed(), kNow);
  EXPECT_TRUE(plan.status.promotionReason.empty());
  EXPECT_TRUE(plan.configs["demo-1"].restartOnCrash);
  EXPECT_EQ(plan.status.phase, "Degraded");
  auto single = Set(1, "demo-1");
  ObservedSet one;
  one.instances.push_back(Primary(1));
  one.lease = LeaseOf("demo-1");
  EXPECT_TRUE(Reconcile(single, one, kNow).configs["demo-1"].restartOnCrash);
  // With a standby ready to take over, a crash waits for the controller.
  EXPECT_FALSE(Reconcile(Set(3, "demo-1"), Healthy(3), kNow).configs["demo-1"].restartOnCrash);
}

TEST(Failover, SyncPrimaryStopsRestartingInPlaceAsSoonAsItsStandbysAreSynchronous) {
  auto set = Set(3, "demo-1");
  set.spec.replication.mode = "sync";
  ObservedSet starting = Healthy(3);
  for (auto& row : starting.instances[0].replication) row.syncState = "";  // not yet listed
  Advance(set, Reconcile(set, starting, kNow));
  // The pass that sees them synchronous already holds a crash for failover.
  ObservedSet synced = Healthy(3);
  for (auto& row : synced.instances[0].replication) row.syncState = "quorum";
  EXPECT_FALSE(Reconcile(set, synced, kNow + 100ms).configs["demo-1"].restartOnCrash);
}

TEST(Failover, LaggingStandbyIsNeverPromoted) {
  auto set = Set(3, "demo-1");
  set.spec.failover.maxLagBytes = 1000;
  ObservedSet healthy = Healthy(3);
  healthy.instances[0].replication[1].lagBytes = 5000;  // demo-3 lags
  Advance(set, Reconcile(set, healthy, kNow));
  ObservedSet o = PrimaryCrashed();  // demo-3 has received more, but lagged
  o.instances[0].agentFenced = true;
  o.instances[0].agentState = agent::kStateFenced;
  Plan plan = Reconcile(set, o, kNow + 100ms);
  Advance(set, plan);
  plan = Reconcile(set, o, kNow + 200ms);
  EXPECT_EQ(plan.status.targetPrimary, "demo-2");
}

TEST(Failover, SyncModePromotesOnlyASynchronousStandbyAndOnlyWithEnoughOfThem) {
  auto set = Set(3, "demo-1");
  set.spec.replication.mode = "sync";
  set.spec.replication.syncReplicas = 1;
  ObservedSet healthy = Healthy(3);
  for (auto& row : healthy.instances[0].replication) row.syncState = "quorum";
  Advance(set, Reconcile(set, healthy, kNow));
  // ANY 1 of 2: one answering quorum standby is not enough to be sure.
  ObservedSet o = PrimaryCrashed();
  o.instances[2].pgReachable = false;
  Plan plan = Reconcile(set, o, kNow + 100ms);
  EXPECT_TRUE(plan.status.promotionReason.empty());
  EXPECT_TRUE(plan.configs["demo-1"].restartOnCrash);
  EXPECT_EQ(plan.status.phase, "Degraded");
  // Both answer: the most advanced one is chosen.
  o = PrimaryCrashed();
  plan = Reconcile(set, o, kNow + 200ms);
  EXPECT_EQ(plan.status.promotionReason, "PostmasterDown");
  Advance(set, plan);
  o.instances[0].agentFenced = true;
  o.instances[0].agentState = agent::kStateFenced;
  plan = Reconcile(set, o, kNow + 300ms);
  EXPECT_EQ(plan.status.targetPrimary, "demo-3");
  Advance(set, plan);
  // The promoted standby is synchronous from its first commit.
  plan = Reconcile(set, o, kNow + 400ms);
  EXPECT_EQ(plan.configs["demo-3"].role, "primary");
  EXPECT_EQ(plan.configs["demo-3"].synchronousStandbyNames, "ANY 1 (\"demo-1\", \"demo-2\")");
}

// A planned move in progress from demo-1 to set.status.targetPrimary: the
// old primary stops with a fast shutdown; the target is promoted (handed
// the lease, told to be primary) only once it has received the shutdown
// checkpoint.
Plan PromotedOnlyOnceCaughtUp(api::PostgresReplicaSet& set, ObservedSet& o, int targetIndex,
                              std::chrono::system_clock::time_point at) {
  const std::string target = set.status.targetPrimary;
  auto& old = o.instances[0];
  old.agentFenced = true;
  old.agentState = agent::kStateFenced;
  old.postgresRunning = false;
  old.pgReachable = false;
  old.checkpointLsn = 0x5000100;
  Plan plan = Reconcile(set, o, at);
  EXPECT_TRUE(Actions(plan).empty()) << "promoted before " << target << " had the last WAL";
  Advance(set, plan);
  o.instances[targetIndex].receiveLsn = 0x5000128;
  plan = Reconcile(set, o, at + 100ms);
  EXPECT_EQ(Actions(plan), std::vector<std::string>{"AcquireLease:" + target});
  if (!plan.actions.empty()) {
    EXPECT_TRUE(plan.actions[0].holderFenced);
  }
  EXPECT_EQ(plan.configs[target].role, "primary");
  Advance(set, plan);
  return plan;
}

TEST(Switchover, FencesGracefullyWaitsForCatchUpThenPromotes) {
  auto set = Set(3, "demo-1");
  Plan plan = Reconcile(set, Healthy(3), kNow);
  for (auto& i : plan.status.instances) i.state = i.role == "standby" ? "Streaming" : i.state;
  Advance(set, plan);
  set.spec.primary = "demo-2";
  ObservedSet o = Healthy(3);
  plan = Reconcile(set, o, kNow + 1s);
  EXPECT_EQ(plan.status.promotionReason, "Switchover");
  EXPECT_EQ(plan.status.targetPrimary, "demo-2");
  EXPECT_EQ(plan.configs["demo-1"].fenceMode, "fast");
  EXPECT_EQ(plan.status.phase, "SwitchingOver");
  Advance(set, plan);
  PromotedOnlyOnceCaughtUp(set, o, 1, kNow + 1100ms);
}

TEST(Shutdown, APrimaryShuttingDownIsHandedOverToTheMostAdvancedStreamingStandby) {
  auto set = Set(3, "demo-1");
  ObservedSet o = Healthy(3);
  o.instances[2].receiveLsn = 0x5000040;  // demo-3 has received more
  Plan plan = Reconcile(set, o, kNow);
  // While a standby could take over, the primary's agent is told to wait
  // for the hand-over when it is stopped.
  EXPECT_TRUE(plan.configs["demo-1"].handoverOnShutdown);
  Advance(set, plan);

  // Its Pod is deleted (or evicted): a planned hand-over, not a failover.
  o.instances[0].shuttingDown = true;
  plan = Reconcile(set, o, kNow + 100ms);
  EXPECT_EQ(plan.status.promotionReason, "Shutdown");
  EXPECT_EQ(plan.status.targetPrimary, "demo-3");
  EXPECT_TRUE(plan.configs["demo-1"].fenced);
  EXPECT_EQ(plan.configs["demo-1"].fenceMode, "fast");
  EXPECT_EQ(plan.status.phase, "SwitchingOver");
  EXPECT_EQ(ConditionStatus(plan, "Degraded"), "False") << api::FindCondition(plan.status, "Degraded")->message;
  Advance(set, plan);

  // Stopped with a fast shutdown; promoted only once demo-3 has its last WAL.
  PromotedOnlyOnceCaughtUp(set, o, 2, kNow + 200ms);

  o.instances[2].inRecovery = false;
  o.instances[2].timeline = 2;
  o.instances[2].currentLsn = 0x5000200;
  o.lease = LeaseOf("demo-3", kNow + 300ms);
  plan = Reconcile(set, o, kNow + 400ms);
  EXPECT_EQ(plan.status.currentPrimary, "demo-3");
  ASSERT_EQ(plan.status.failovers.size(), 1u);
  EXPECT_EQ(plan.status.failovers[0].reason, "Shutdown");
  EXPECT_EQ(plan.configs["demo-1"].role, "standby");
}

TEST(Shutdown, HandOverPrefersSpecPrimaryAndSkipsStandbysThatDoNotStreamOrAreStopping) {
  auto set = Set(4, "demo-1");
  ObservedSet o = Healthy(4);
  o.instances[3].receiveLsn = 0x5000080;  // demo-4 is the most advanced, but stopping too
  o.instances[3].shuttingDown = true;
  o.instances[2].receiveLsn = 0x5000070;  // demo-3 next, but not streaming
  o.instances[2].walReceiverStreaming = false;
  Advance(set, Reconcile(set, o, kNow));
  o.instances[0].shuttingDown = true;
  Plan plan = Reconcile(set, o, kNow + 100ms);
  EXPECT_EQ(plan.status.targetPrimary, "demo-2");

  set.spec.primary = "demo-3";
  o.instances[2].walReceiverStreaming = true;
  o.instances[1].receiveLsn = 0x5000090;
  set.status.promotionReason.clear();
  set.status.targetPrimary = "demo-1";
  plan = Reconcile(set, o, kNow + 200ms);
  EXPECT_EQ(plan.status.promotionReason, "Shutdown");
  EXPECT_EQ(plan.status.targetPrimary, "demo-3");
}

// The hand-over began, then the old primary's agent vanished (killed at the
// end of its grace period, say): stopped from outside, there is no shutdown
// checkpoint to wait for, so the most advanced standby is chosen again from
// the final positions before anyone is promoted.
TEST(Shutdown, AHandOverWhoseAgentVanishedChoosesAgainFromTheFinalPositions) {
  auto set = Set(3, "demo-1");
  ObservedSet o = Healthy(3);
  o.instances[1].receiveLsn = 0x5000040;  // demo-2 ahead at the start
  Advance(set, Reconcile(set, o, kNow));
  o.instances[0].shuttingDown = true;
  Plan plan = Reconcile(set, o, kNow + 100ms);
  ASSERT_EQ(plan.status.targetPrimary, "demo-2");
  Advance(set, plan);
  // Its agent is gone and its lease ran out; then it is stopped from
  // outside, nothing streams any more, and demo-3 received the most.
  auto& old = o.instances[0];
  old.agentReachable = false;
  o.lease = LeaseOf("demo-1", kNow - 10s);
  plan = Reconcile(set, o, kNow + 200ms);
  EXPECT_EQ(Actions(plan), std::vector<std::string>{"FenceFromOutside:demo-1"});
  Advance(set, plan);
  old.pgReachable = false;
  old.replication.clear();
  for (int i : {1, 2}) o.instances[i].walReceiverStreaming = false;
  o.instances[2].receiveLsn = 0x5000090;
  plan = Reconcile(set, o, kNow + 300ms);
  EXPECT_EQ(plan.status.targetPrimary, "demo-3");
  EXPECT_EQ(plan.requeueAfter.count(), 0);
  EXPECT_TRUE(std::none_of(plan.actions.begin(), plan.actions.end(),
                           [](const Action& a) { return a.type == ActionType::kAcquireLease; }))
      << "nobody promoted in the pass that changes the choice";
  Advance(set, plan);
  plan = Reconcile(set, o, kNow + 400ms);
  EXPECT_EQ(Actions(plan), (std::vector<std::string>{"FenceFromOutside:demo-1", "AcquireLease:demo-3"}));
  EXPECT_EQ(plan.configs["demo-3"].role, "primary");
}

TEST(Shutdown, WithoutAStandbyToTakeOverThePrimaryJustStops) {
  for (bool failoverEnabled : {true, false}) {
    SCOPED_TRACE(failoverEnabled ? "no standby streams" : "failover disabled");
    auto set = Set(2, "demo-1");
    set.spec.failover.enabled = failoverEnabled;
    ObservedSet o = Healthy(2);
    if (failoverEnabled) o.instances[1].walReceiverStreaming = false;
    Advance(set, Reconcile(set, o, kNow));
    o.instances[0].shuttingDown = true;
    Plan plan = Reconcile(set, o, kNow + 100ms);
    EXPECT_FALSE(plan.configs["demo-1"].handoverOnShutdown);
    EXPECT_FALSE(plan.configs["demo-1"].fenced);
    EXPECT_TRUE(plan.status.promotionReason.empty());
    EXPECT_EQ(plan.status.targetPrimary, "demo-1");
  }
}

TEST(Shutdown, AStandbyStoppingOnPurposeIsProgressNotAFailure) {
  auto set = Set(3, "demo-1");
  Advance(set, Reconcile(set, Healthy(3), kNow));
  ObservedSet o = Healthy(3);
  // Its Pod is terminating; its agent has stopped answering already.
  o.instances[1].shuttingDown = true;
  o.instances[1].agentReachable = false;
  o.instances[1].pgReachable = false;
  o.instances[1].walReceiverStreaming = false;
  o.instances[0].replication.erase(o.instances[0].replication.begin());
  Plan plan = Reconcile(set, o, kNow + 100ms);
  EXPECT_EQ(plan.status.instances[1].state, "Stopping");
  EXPECT_EQ(ConditionStatus(plan, "Degraded"), "False");
  EXPECT_EQ(ConditionStatus(plan, "Progressing"), "True");
  EXPECT_TRUE(plan.status.promotionReason.empty());
}

TEST(Reconcile, SlotNamesAreValidIdentifiers) {
  EXPECT_EQ(SlotName("demo-2"), "pgrs_demo_2");
  EXPECT_EQ(SlotName("a-b-c-16"), "pgrs_a_b_c_16");
}

}  // namespace
}  // namespace pgrs::reconcilers
