// `pgrs operator` end to end, without a cluster: the in-memory API server
// (HTTPS, bearer tokens), the process kubelet running each instance Pod's
// `pgrs instance` as a local process on its own 127.0.x.y address with
// real PostgreSQL 15, and two operator replicas electing a leader. The same
// outcomes as the local-mode tests, seen through the Kubernetes API.
#include <gtest/gtest.h>
#include <signal.h>

#include <cstdlib>
#include <set>

#include "e2e/kubelet/kubelet.h"
#include "e2e/operator/kube_env.h"
#include "e2e/local/workload.h"
#include "operator/api/types.h"
#include "operator/kube/objects.h"
#include "operator/pq/pq.h"
#include "operator/util/http.h"
#include "operator/util/process.h"
#include "operator/util/random.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::milliseconds;
using std::chrono::seconds;

class OperatorE2eTest : public ::testing::Test, public KubeEnvironment {
 protected:
  void SetUp() override {
    Status started = Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  void TearDown() override { Stop(HasFailure()); }
};

TEST_F(OperatorE2eTest, ReplicatesFailsOverAndMovesTheRoleLabels) {
  ASSERT_TRUE(Apply("orders", 3));
  ASSERT_TRUE(WaitHealthy("orders", 3, seconds(180))) << Set("orders").serialize();

  // Every child the contract names, owned by the set.
  Json rs = Set("orders");
  const std::string primary = kube::GetString(rs, {"status", "currentPrimary"});
  ASSERT_FALSE(primary.empty());
  EXPECT_EQ(kube::GetString(rs, {"status", "selector"}), "pgrs.dev/set=orders");
  EXPECT_EQ(List(kube::PvcResource(), "pgrs.dev/set=orders").size(), 3u);
  for (const char* s : {"orders", "orders-rw", "orders-ro", "orders-r"}) {
    EXPECT_FALSE(server_->CallJson("GET", kube::ServiceResource().Path(kNs, s)).is_null()) << s;
  }
  for (const char* s : {"orders-superuser", "orders-app", "orders-replication", "orders-agent"}) {
    EXPECT_EQ(SecretValue(s, s == std::string("orders-agent") ? "token" : "password").size(), 48u) << s;
  }
  EXPECT_FALSE(server_->CallJson("GET", kube::PdbResource().Path(kNs, "orders")).is_null());
  EXPECT_FALSE(server_->CallJson("GET", kube::RoleResource().Path(kNs, "orders-instance")).is_null());
  Json lease = server_->CallJson("GET", kube::LeaseResource().Path(kNs, "orders-primary"));
  EXPECT_EQ(kube::GetString(lease, {"spec", "holderIdentity"}), primary);

  // The leader's /metrics: per set and per instance, in Prometheus text.
  ASSERT_TRUE(operators_.count(Leader()));
  EXPECT_TRUE(WaitFor([&] {
    std::string text = operators_[Leader()]->MetricsText();
    return text.find("pgrs_replicaset_ready_instances{namespace=\"db\",replicaset=\"orders\"} 3\n") !=
               std::string::npos &&
           text.find("pgrs_instance_info{namespace=\"db\",replicaset=\"orders\",instance=\"" + primary +
                     "\",role=\"primary\"} 1\n") != std::string::npos &&
           text.find("pgrs_replicaset_primary_ready{namespace=\"db\",replicaset=\"orders\"} 1\n") !=
               std::string::npos &&
           text.find("pgrs_instance_lag_bytes{namespace=\"db\",replicaset=\"orders\"") != std::string::npos &&
           text.find("pgrs_reconcile_duration_seconds_count") != std::string::npos;
  }, seconds(10))) << operators_[Leader()]->MetricsText();

  // -rw selects the primary alone, -ro the standbys, -r all three.
  EXPECT_EQ(Selected("orders-rw"), std::set<std::string>{primary});
  EXPECT_EQ(Selected("orders-ro").size(), 2u);
  EXPECT_EQ(Selected("orders-ro").count(primary), 0u);
  EXPECT_EQ(Selected("orders-r").size(), 3u);

  // The application role writes in its own database; the row reaches the
  // standbys, which refuse writes.
  {
    auto app = Connect(primary, true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("CREATE TABLE t (id bigint PRIMARY KEY)").ok());
    ASSERT_TRUE((*app)->Exec("INSERT INTO t VALUES (1)").ok());
  }
  auto super = Connect(primary, false);
  ASSERT_TRUE(super.ok()) << super.status().ToString();
  EXPECT_TRUE(WaitFor([&] {
    auto rows = (*super)->Query("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'");
    return rows.ok() && !rows->empty() && (*rows)[0][0] == "2";
  }, seconds(20)));
  std::vector<std::string> endpoints;
  for (const auto& pod : Pods("pgrs.dev/set=orders")) {
    const std::string name = kube::NameOf(pod);
    endpoints.push_back(PodIp(name) + ":5432");
    if (name == primary) continue;
    EXPECT_TRUE(WaitFor([&] {
      auto standby = Connect(name, true);
      if (!standby.ok()) return false;
      auto rows = (*standby)->Query("SELECT count(*) FROM t");
      return rows.ok() && !rows->empty() && (*rows)[0][0] == "1";
    }, seconds(20))) << name;
    auto standby = Connect(name, true);
    ASSERT_TRUE(standby.ok());
    EXPECT_FALSE((*standby)->Exec("INSERT INTO t VALUES (2)").ok()) << name << " accepted a write";
  }
  // TLS (spec.tls, on by default): the walsenders stream over TLS with the
  // replication client certificate, plain text is refused, and
  // status.connection names the CA Secret.
  EXPECT_EQ(kube::GetString(Set("orders"), {"status", "connection", "caSecret"}), "orders-ca");
  {
    auto rows = (*super)->Query(
        "SELECT count(*) FILTER (WHERE s.ssl AND s.client_dn LIKE '%pgrs_replication%') "
        "FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)");
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    EXPECT_EQ((*rows)[0][0], "2");
    pq::ConnectionParams plain;
    plain.host = PodIp(primary);
    plain.port = kube::kPostgresPort;
    plain.password = SecretValue("orders-superuser", "password");
    auto refused = pq::Connection::OpenConnInfo(pq::ConnInfo(plain) + " sslmode=disable", "plain");
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("no encryption"), std::string::npos) << refused.status().message();
  }
  super->reset();

  // SIGKILL of the primary's postmaster: a standby is promoted, the labels
  // move, and at no moment do two instances accept writes.
  PrimaryWatcher watcher(endpoints, SecretValue("orders-superuser", "password"));
  watcher.Start();
  int64_t pid = PostmasterPid(primary);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  std::string promoted;
  int twoLabelled = 0;
  ASSERT_TRUE(WaitFor([&] {
    if (Pods("pgrs.dev/set=orders,pgrs.dev/role=primary").size() > 1) twoLabelled++;
    promoted = kube::GetString(Set("orders"), {"status", "currentPrimary"});
    return !promoted.empty() && promoted != primary;
  }, seconds(60))) << Set("orders").serialize();
  ASSERT_TRUE(WaitFor([&] {
    if (Pods("pgrs.dev/set=orders,pgrs.dev/role=primary").size() > 1) twoLabelled++;
    return Selected("orders-rw") == std::set<std::string>{promoted};
  }, seconds(20))) << "the -rw Service does not select exactly " << promoted;
  EXPECT_EQ(twoLabelled, 0) << "two pods carried the primary label at once";
  {
    auto app = Connect(promoted, true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    EXPECT_TRUE((*app)->Exec("INSERT INTO t VALUES (3)").ok());
    auto rows = (*app)->Query("SELECT count(*) FROM t");
    ASSERT_TRUE(rows.ok());
    EXPECT_EQ((*rows)[0][0], "2");  // rows 1 and 3: nothing acknowledged was lost
  }
  // The old primary comes back as a standby (pg_rewind) and all are ready.
  ASSERT_TRUE(WaitHealthy("orders", 3, seconds(120))) << Set("orders").serialize();
  watcher.Stop();
  EXPECT_EQ(watcher.TwoPrimarySweeps(), 0);
  EXPECT_GT(watcher.Sweeps(), 10);
  EXPECT_EQ(Selected("orders-ro").count(primary), 1u);
  Json after = Set("orders");
  EXPECT_GE(kube::GetInt(after, {"status", "timeline"}).value_or(0), 2);
  lease = server_->CallJson("GET", kube::LeaseResource().Path(kNs, "orders-primary"));
  EXPECT_EQ(kube::GetString(lease, {"spec", "holderIdentity"}), promoted);
  // The failover is told as an Event on the set.
  bool event = false;
  for (const auto& e : List(kube::EventResource(), "")) {
    if (kube::GetString(e, {"reason"}) == "Failover" &&
        kube::GetString(e, {"involvedObject", "name"}) == "orders") event = true;
  }
  EXPECT_TRUE(event);
  EXPECT_TRUE(WaitFor([&] {
    return operators_[Leader()]->MetricsText().find(
               "pgrs_replicaset_failovers_total{namespace=\"db\",replicaset=\"orders\"} 1\n") != std::string::npos;
  }, seconds(5)));
}

TEST_F(OperatorE2eTest, ScalesSurvivesItsOperatorsAndDeletesEverything) {
  ASSERT_TRUE(Apply("shop", 2));
  ASSERT_TRUE(WaitHealthy("shop", 2, seconds(180))) << Set("shop").serialize();

  // `kubectl scale pgrs/shop --replicas=3` is a PUT of the scale subresource.
  auto scale = [&](int replicas) {
    Json s = server_->CallJson("GET", kube::ReplicaSetResource().Path(kNs, "shop", "scale"));
    ASSERT_FALSE(s.is_null());
    s["spec"]["replicas"] = Json::number(replicas);
    ASSERT_FALSE(server_->CallJson("PUT", kube::ReplicaSetResource().Path(kNs, "shop", "scale"), s).is_null());
  };
  scale(3);
  ASSERT_TRUE(WaitHealthy("shop", 3, seconds(120))) << Set("shop").serialize();

  // The leader dies: the other replica takes over and acts on the next
  // change.
  std::string leader = Leader();
  ASSERT_TRUE(operators_.count(leader)) << leader;
  operators_[leader]->Stop(SIGKILL, seconds(5));
  operators_.erase(leader);
  const std::string other = operators_.begin()->first;
  ASSERT_TRUE(WaitFor([&] { return Leader() == other; }, seconds(20)));
  scale(2);
  ASSERT_TRUE(WaitHealthy("shop", 2, seconds(60))) << Set("shop").serialize();
  EXPECT_EQ(List(kube::PvcResource(), "pgrs.dev/set=shop").size(), 2u);
  EXPECT_TRUE(server_->CallJson("GET", kube::PodResource().Path(kNs, "shop-3")).is_null());

  // No operator at all: the primary keeps taking writes, its agent keeps
  // renewing the primary Lease.
  operators_.clear();
  const std::string primary = kube::GetString(Set("shop"), {"status", "currentPrimary"});
  auto renewTime = [&] {
    return kube::GetString(server_->CallJson("GET", kube::LeaseResource().Path(kNs, "shop-primary")),
                           {"spec", "renewTime"});
  };
  auto app = Connect(primary, true);
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  ASSERT_TRUE((*app)->Exec("CREATE TABLE w (id bigint PRIMARY KEY)").ok());
  std::string firstRenew = renewTime();
  // Three lease durations (5 s each by default), writing all along.
  auto until = std::chrono::steady_clock::now() + seconds(16);
  int written = 0;
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE((*app)->Exec("INSERT INTO w VALUES (" + std::to_string(++written) + ")").ok()) << written;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_GT(written, 100);
  EXPECT_NE(renewTime(), firstRenew);
  auto standbyApp = Connect(primary == "shop-1" ? "shop-2" : "shop-1", true);
  ASSERT_TRUE(standbyApp.ok());
  EXPECT_TRUE(WaitFor([&] {
    auto rows = (*standbyApp)->Query("SELECT count(*) FROM w");
    return rows.ok() && !rows->empty() && (*rows)[0][0] == std::to_string(written);
  }, seconds(10)));
  app->reset();
  standbyApp->reset();

  // Deleting the set removes every child (owner references), and the
  // kubelet ends the instances' processes.
  StartOperator("op-3");
  std::vector<pid_t> pids;
  for (const auto& pod : Pods("pgrs.dev/set=shop")) pids.push_back(kubelet_->PodPid(kNs, kube::NameOf(pod)));
  ASSERT_EQ(pids.size(), 2u);
  ASSERT_FALSE(server_->CallJson("DELETE", kube::ReplicaSetResource().Path(kNs, "shop")).is_null());
  for (const auto& r : {kube::PodResource(), kube::PvcResource(), kube::ServiceResource(), kube::SecretResource(),
                        kube::PdbResource(), kube::ServiceAccountResource(), kube::RoleResource(),
                        kube::RoleBindingResource(), kube::LeaseResource()}) {
    EXPECT_TRUE(WaitFor([&] { return List(r, "").empty(); }, seconds(10))) << r.plural << " left";
  }
  for (pid_t pid : pids) {
    EXPECT_TRUE(WaitFor([&] { return pid > 0 && ::kill(pid, 0) != 0; }, seconds(15))) << "pid " << pid;
  }
}

TEST_F(OperatorE2eTest, SyncModeLosesNoAcknowledgedCommitAndAFrozenAgentIsFencedFromOutside) {
  Json replication = Json::object();
  replication["mode"] = Json::string("sync");
  replication["syncReplicas"] = Json::number(1);
  replication["dataDurability"] = Json::string("required");
  ASSERT_TRUE(Apply("ledger", 3, replication));
  ASSERT_TRUE(WaitHealthy("ledger", 3, seconds(180))) << Set("ledger").serialize();
  std::string hosts, ports;
  for (const auto& pod : Pods("pgrs.dev/set=ledger")) {
    hosts += (hosts.empty() ? "" : ",") + PodIp(kube::NameOf(pod));
    ports += (ports.empty() ? "" : ",") + std::to_string(kube::kPostgresPort);
  }
  {
    auto app = Connect(kube::GetString(Set("ledger"), {"status", "currentPrimary"}), true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("CREATE TABLE ledger (id bigint PRIMARY KEY)").ok());
  }
  // A writer through the Pod addresses, the way a client with a multi-host
  // connection string reaches whichever instance is the primary.
  Writer writer("host=" + hosts + " port=" + ports + " user=app dbname=app password=" +
                    SecretValue("ledger-app", "password") + " connect_timeout=2 target_session_attrs=read-write",
                "ledger");
  writer.Start();
  ASSERT_TRUE(writer.WaitForMoreAcks(20, seconds(20)));

  auto expectNoAcknowledgedRowLost = [&] {
    const std::string primary = kube::GetString(Set("ledger"), {"status", "currentPrimary"});
    auto acknowledged = writer.Acknowledged();
    auto app = Connect(primary, true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    auto rows = (*app)->Query("SELECT id FROM ledger");
    ASSERT_TRUE(rows.ok()) << rows.status().ToString();
    std::set<int64_t> present;
    for (const auto& r : *rows) present.insert(std::atoll(r[0]->c_str()));
    int missing = 0;
    for (const auto& ack : acknowledged) missing += present.count(ack.id) ? 0 : 1;
    EXPECT_EQ(missing, 0) << missing << " of " << acknowledged.size() << " acknowledged rows missing on " << primary;
  };
  auto waitNewPrimary = [&](const std::string& old) {
    std::string next;
    EXPECT_TRUE(WaitFor([&] {
      next = kube::GetString(Set("ledger"), {"status", "currentPrimary"});
      return !next.empty() && next != old;
    }, seconds(60))) << Set("ledger").serialize();
    return next;
  };

  // 1. The primary's postmaster is killed.
  std::string old = kube::GetString(Set("ledger"), {"status", "currentPrimary"});
  int64_t pid = PostmasterPid(old);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  std::string next = waitNewPrimary(old);
  ASSERT_FALSE(next.empty());
  EXPECT_TRUE(writer.WaitForMoreAcks(20, seconds(30)));
  expectNoAcknowledgedRowLost();
  ASSERT_TRUE(WaitHealthy("ledger", 3, seconds(120))) << Set("ledger").serialize();

  // 2. The new primary's agent freezes: PostgreSQL serves on until the
  // agent's lease runs out; then the operator deletes the Pod without
  // grace (the kubelet kills it), promotes a standby, and the Pod comes
  // back as a standby on its volume.
  old = next;
  std::string oldUid = kube::UidOf(server_->CallJson("GET", kube::PodResource().Path(kNs, old)));
  pid_t agent = kubelet_->PodPid(kNs, old);
  ASSERT_GT(agent, 0);
  ASSERT_EQ(::kill(agent, SIGSTOP), 0);
  next = waitNewPrimary(old);
  ::kill(agent, SIGCONT);  // a no-op when it is gone, as it should be
  ASSERT_FALSE(next.empty());
  Json rs = Set("ledger");
  const Json* failovers = kube::GetField(rs, {"status", "failovers"});
  ASSERT_TRUE(failovers != nullptr && failovers->is_array() && failovers->size() >= 2) << rs.serialize();
  EXPECT_EQ(kube::GetString(failovers->as_array().at(failovers->size() - 1), {"reason"}), "LeaseExpired");
  EXPECT_TRUE(writer.WaitForMoreAcks(20, seconds(30)));
  expectNoAcknowledgedRowLost();
  ASSERT_TRUE(WaitHealthy("ledger", 3, seconds(120))) << Set("ledger").serialize();
  EXPECT_NE(kube::UidOf(server_->CallJson("GET", kube::PodResource().Path(kNs, old))), oldUid)
      << "the frozen primary's Pod was not replaced";
  EXPECT_EQ(Selected("ledger-rw"), std::set<std::string>{next});
  writer.Stop();
  expectNoAcknowledgedRowLost();
}


// Every Pod restart on an existing volume (a deletion, an eviction, a
// rolling update, a node reboot) starts the instance on its own data again:
// each Pod of the set deleted in turn, standbys and the primary, comes back
// on its PVC, streaming, with its data and without a fresh clone.
TEST_F(OperatorE2eTest, EachPodDeletedInTurnComesBackOnItsVolume) {
  ASSERT_TRUE(Apply("turns", 3));
  ASSERT_TRUE(WaitHealthy("turns", 3, seconds(180))) << Set("turns").serialize();
  {
    auto app = Connect(Primary("turns"), true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("CREATE TABLE kept (id bigint PRIMARY KEY)").ok());
    ASSERT_TRUE((*app)->Exec("INSERT INTO kept SELECT generate_series(1, 100)").ok());
  }
  std::set<int64_t> written;
  for (int64_t i = 1; i <= 100; ++i) written.insert(i);
  const std::string firstPrimary = Primary("turns");
  for (const std::string pod : {"turns-2", "turns-3", "turns-1"}) {
    SCOPED_TRACE(pod);
    const bool wasPrimary = pod == Primary("turns");
    const std::string uid = kube::UidOf(Pod(pod));
    ASSERT_FALSE(uid.empty());
    ASSERT_FALSE(server_->CallJson("DELETE", kube::PodResource().Path(kNs, pod)).is_null());
    ASSERT_TRUE(WaitReplaced(pod, uid, seconds(60))) << Pod(pod).serialize();
    ASSERT_TRUE(WaitHealthy("turns", 3, seconds(120))) << Set("turns").serialize();
    // Its own data directory, started again (rewound if it was the
    // primary), never cloned afresh.
    std::string log = ContainerLog(pod);
    EXPECT_EQ(Count(log, "cloning data directory"), 0) << log;
    EXPECT_EQ(Count(log, "initializing data directory"), 0) << log;
    EXPECT_TRUE(WaitFor([&] { return Rows(pod, "kept") == written; }, seconds(30)));
    if (wasPrimary) {
      EXPECT_NE(Primary("turns"), pod) << "a deleted primary's Pod hands over";
    }
  }
  EXPECT_NE(Primary("turns"), firstPrimary);
  for (const char* pod : {"turns-1", "turns-2", "turns-3"}) EXPECT_EQ(Rows(pod, "kept"), written) << pod;
  int planned = 0, unplanned = 0;
  CountFailovers("turns", &planned, &unplanned);
  EXPECT_EQ(planned, 1) << Set("turns").serialize();
  EXPECT_EQ(unplanned, 0) << Set("turns").serialize();
}

// A node drain: every Pod evicted one at a time through the Eviction API,
// which the PodDisruptionBudget (maxUnavailable 1) holds back while an
// instance is not Ready. Standbys first, the primary last (as a drain that
// knows its workload does): one planned switchover, no acknowledged row
// lost, and writes never wait long.
TEST_F(OperatorE2eTest, ADrainEvictsPodByPodWithOneSwitchoverAndNoLostWrite) {
  ASSERT_TRUE(Apply("drain", 3));
  ASSERT_TRUE(WaitHealthy("drain", 3, seconds(180))) << Set("drain").serialize();
  {
    auto app = Connect(Primary("drain"), true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("CREATE TABLE drained (id bigint PRIMARY KEY)").ok());
  }
  const std::string password = SecretValue("drain-app", "password");
  Writer writer([&] { return PodConninfo("drain", password); }, "drained");
  writer.Start();
  ASSERT_TRUE(writer.WaitForMoreAcks(20, seconds(20)));
  const auto drainStarted = std::chrono::steady_clock::now();

  std::vector<std::string> order;
  for (const char* pod : {"drain-1", "drain-2", "drain-3"}) {
    if (pod != Primary("drain")) order.push_back(pod);
  }
  order.push_back(Primary("drain"));
  int refused = 0;
  for (size_t k = 0; k < order.size(); ++k) {
    const std::string& pod = order[k];
    SCOPED_TRACE(pod);
    const std::string uid = kube::UidOf(Pod(pod));
    // Retried while the budget says no, as kubectl drain does.
    int answer = 0;
    ASSERT_TRUE(WaitFor([&] {
      answer = Evict(pod);
      if (answer == 429) refused++;
      return answer == 201 || answer == 200;
    }, seconds(120))) << "eviction answered " << answer;
    if (k + 1 < order.size()) {
      // While this one is away, the budget holds the next one back.
      EXPECT_EQ(Evict(order[k + 1]), 429);
      refused++;
    }
    ASSERT_TRUE(WaitReplaced(pod, uid, seconds(60))) << Pod(pod).serialize();
    ASSERT_TRUE(WaitHealthy("drain", 3, seconds(120))) << Set("drain").serialize();
  }
  EXPECT_GE(refused, 2);
  ASSERT_TRUE(writer.WaitForMoreAcks(20, seconds(30)));
  writer.Stop();

  int planned = 0, unplanned = 0;
  CountFailovers("drain", &planned, &unplanned);
  EXPECT_EQ(planned, 1) << Set("drain").serialize();
  EXPECT_EQ(unplanned, 0) << Set("drain").serialize();
  EXPECT_NE(Primary("drain"), order.back());
  std::set<int64_t> present = Rows(Primary("drain"), "drained");
  int missing = 0;
  auto acknowledged = writer.Acknowledged();
  for (const auto& ack : acknowledged) missing += present.count(ack.id) ? 0 : 1;
  EXPECT_EQ(missing, 0) << missing << " of " << acknowledged.size() << " acknowledged rows lost";
  double gap = writer.LongestGapAround(drainStarted);
  EXPECT_LT(gap, 2.0) << "longest write gap during the drain";
  std::fprintf(stderr, "drain: %zu rows acknowledged, longest write gap %.3f s\n", acknowledged.size(), gap);
}

// A container restarted in place (its agent killed; the kubelet starts it
// again in the same Pod, on the same volume): a standby streams again, a
// primary is failed over or restarted, and nothing is cloned afresh.
TEST_F(OperatorE2eTest, AContainerRestartedInPlaceKeepsItsVolume) {
  ASSERT_TRUE(Apply("again", 3));
  ASSERT_TRUE(WaitHealthy("again", 3, seconds(180))) << Set("again").serialize();
  {
    auto app = Connect(Primary("again"), true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("CREATE TABLE kept (id bigint PRIMARY KEY)").ok());
    ASSERT_TRUE((*app)->Exec("INSERT INTO kept SELECT generate_series(1, 50)").ok());
  }
  std::set<int64_t> written;
  for (int64_t i = 1; i <= 50; ++i) written.insert(i);
  std::string standby = Primary("again") == "again-2" ? "again-3" : "again-2";
  for (const std::string& pod : std::vector<std::string>{standby, Primary("again")}) {
    SCOPED_TRACE(pod);
    // Wait for the rows to be everywhere: a primary killed now loses nothing.
    ASSERT_TRUE(WaitFor([&] {
      for (const char* p : {"again-1", "again-2", "again-3"}) {
        if (Rows(p, "kept") != written) return false;
      }
      return true;
    }, seconds(30)));
    const std::string uid = kube::UidOf(Pod(pod));
    const int clones = Count(ContainerLog(pod), "cloning data directory");
    const int64_t restarts = RestartCount(pod);
    pid_t agent = kubelet_->PodPid(kNs, pod);
    ASSERT_GT(agent, 0);
    ASSERT_EQ(::kill(agent, SIGKILL), 0);
    ASSERT_TRUE(WaitFor([&] { return RestartCount(pod) > restarts; }, seconds(60))) << Pod(pod).serialize();
    ASSERT_TRUE(WaitHealthy("again", 3, seconds(120))) << Set("again").serialize();
    EXPECT_EQ(kube::UidOf(Pod(pod)), uid) << "restarted in place, not made again";
    EXPECT_EQ(Count(ContainerLog(pod), "cloning data directory"), clones) << ContainerLog(pod);
    EXPECT_TRUE(WaitFor([&] { return Rows(pod, "kept") == written; }, seconds(30)));
  }
}

}  // namespace
}  // namespace pgrs::e2e
