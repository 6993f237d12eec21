// `pgrs operator` end to end, without a cluster: the in-memory API server
// (HTTPS, bearer tokens), the process kubelet running each instance Pod's
// `pgrs instance` as a local process on its own 127.0.x.y address with
// real PostgreSQL 15, and two operator replicas electing a leader. The same
// outcomes as the local-mode tests, seen through the Kubernetes API.
#include <gtest/gtest.h>
#include <pwd.h>
#include <signal.h>

#include <cstdlib>
#include <set>

#include "e2e/kube/apiserver.h"
#include "e2e/kube/operator_process.h"
#include "e2e/kube/test_util.h"
#include "e2e/kubelet/kubelet.h"
#include "e2e/local/workload.h"
#include "operator/kube/objects.h"
#include "operator/pq/pq.h"
#include "operator/util/http.h"
#include "operator/util/process.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kNs[] = "db";
constexpr char kToken[] = "e2e-operator-token";

std::string Encode(const std::string& selector) {
  std::string out;
  for (char c : selector) {
    if (c == '=') out += "%3D";
    else if (c == ',') out += "%2C";
    else out += c;
  }
  return out;
}

class OperatorE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto certs = MakeTestCertificates(dir_.path() + "/certs");
    ASSERT_TRUE(certs.ok()) << certs.status().ToString();
    ApiServerOptions options = TlsServerOptions(*certs);
    options.tokens = {kToken};
    server_ = std::make_unique<ApiServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/kubeconfig",
                                TestKubeconfig(server_->url(), kToken, certs->caFile, "pgrs-system"), 0600)
                    .ok());
    auto config = kube::LoadKubeconfig(dir_.path() + "/kubeconfig");
    ASSERT_TRUE(config.ok()) << config.status().ToString();

    KubeletOptions kubelet;
    kubelet.config = *config;
    kubelet.root = dir_.path() + "/node";
    const char* binary = std::getenv("PGRS_BINARY");
    ASSERT_NE(binary, nullptr) << "PGRS_BINARY must name the pgrs binary";
    kubelet.commandMap["/usr/local/bin/pgrs"] = binary;
    // The instance Pod runs as 999:999 (fsGroup 999), the postgres image's
    // user; here that is the host's postgres user.
    struct passwd* postgres = getpwnam("postgres");
    ASSERT_NE(postgres, nullptr) << "the OS user postgres is needed";
    kubelet.uidMap[999] = postgres->pw_uid;
    kubelet.gidMap[999] = postgres->pw_gid;
    kubelet.ipBase = "127.0.20.1";
    kubelet.maxGrace = seconds(5);
    kubelet_ = std::make_unique<ProcessKubelet>(kubelet);
    ASSERT_TRUE(kubelet_->Start().ok());
    StartOperator("op-1");
    StartOperator("op-2");
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "---- replica sets ----\n%s\n",
                   server_->CallJson("GET", kube::ReplicaSetResource().Path(kNs)).serialize().c_str());
      for (const auto& pod : Pods("")) {
        std::string dir = kubelet_->PodDir(kNs, kube::NameOf(pod));
        auto log = ReadFile(dir + "/container.log");
        std::string text = log.ok() ? log->substr(log->size() > 3000 ? log->size() - 3000 : 0) : "(no log)";
        std::fprintf(stderr, "---- pod %s (%s) ----\n%s\n", kube::NameOf(pod).c_str(), dir.c_str(), text.c_str());
      }
    }
    // Pods first (they run PostgreSQL), then the operators, then the server.
    if (kubelet_) kubelet_->Stop();
    if (HasFailure()) {
      // Logs of the operators and the Pods, kept for a look after the run.
      std::string keep = "/tmp/pgrs-kube-e2e-failure";
      ProcessSpec copy;
      copy.argv = {"/bin/sh", "-c", "rm -rf " + keep + " && mkdir -p " + keep + " && cp " + dir_.path() +
                                       "/*.log " + keep + "/ ; for d in " + dir_.path() +
                                       "/node/pods/*; do cp $d/container.log " + keep +
                                       "/$(basename $d).log 2>/dev/null; done; true"};
      (void)RunCommand(copy, seconds(30));
      std::fprintf(stderr, "logs kept in %s\n", keep.c_str());
    }
    operators_.clear();
    if (server_) server_->Stop();
  }

  void StartOperator(const std::string& identity) {
    operators_[identity] = std::make_unique<OperatorProcess>(
        dir_.path(), identity,
        std::vector<std::string>{"--leader-election-namespace", "pgrs-system", "--leader-elect-lease-duration", "4s",
                                 "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms",
                                 "--instance-image", "pgrs:test"});
  }

  std::string Leader() {
    auto lease = server_->CallJson("GET", kube::LeaseResource().Path("pgrs-system", "pgrs-operator"));
    return kube::GetString(lease, {"spec", "holderIdentity"});
  }

  void Apply(const std::string& name, int instances, const Json& replication = Json::null()) {
    Json rs = ReplicaSetObject(name, instances);
    rs["metadata"]["namespace"] = Json::string(kNs);
    if (!replication.is_null()) rs["spec"]["replication"] = replication;
    ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path(kNs), rs).is_null());
  }
  Json Set(const std::string& name) { return server_->CallJson("GET", kube::ReplicaSetResource().Path(kNs, name)); }

  std::vector<Json> List(const kube::Resource& r, const std::string& selector) {
    std::string path = r.Path(kNs) + (selector.empty() ? "" : "?labelSelector=" + Encode(selector));
    Json list = server_->CallJson("GET", path);
    std::vector<Json> out;
    if (list.has_array_field("items")) {
      for (const auto& item : list.at("items").as_array()) out.push_back(item);
    }
    return out;
  }
  std::vector<Json> Pods(const std::string& selector) { return List(kube::PodResource(), selector); }

  // Names of the Pods a Service selects (what its Endpoints would hold,
  // readiness aside).
  std::set<std::string> Selected(const std::string& service) {
    Json svc = server_->CallJson("GET", kube::ServiceResource().Path(kNs, service));
    const Json* selector = kube::GetField(svc, {"spec", "selector"});
    if (selector == nullptr || !selector->is_object() || selector->size() == 0) return {"<no selector>"};
    std::string text;
    for (const auto& [k, v] : selector->as_object()) text += (text.empty() ? "" : ",") + k + "=" + v.as_string();
    std::set<std::string> names;
    for (const auto& pod : Pods(text)) names.insert(kube::NameOf(pod));
    return names;
  }

  std::string SecretValue(const std::string& secret, const std::string& key) {
    return kube::SecretValue(server_->CallJson("GET", kube::SecretResource().Path(kNs, secret)), key);
  }
  std::string PodIp(const std::string& pod) {
    return kube::GetString(server_->CallJson("GET", kube::PodResource().Path(kNs, pod)), {"status", "podIP"});
  }

  bool WaitHealthy(const std::string& name, int instances, seconds timeout) {
    return WaitFor([&] {
      Json rs = Set(name);
      return kube::GetString(rs, {"status", "phase"}) == "Healthy" &&
             kube::GetInt(rs, {"status", "readyInstances"}).value_or(0) == instances &&
             static_cast<int>(Pods(kube::PodSelector(name)).size()) == instances;
    }, timeout);
  }

  Result<std::unique_ptr<pq::Connection>> Connect(const std::string& pod, bool app) {
    pq::ConnectionParams params;
    params.host = PodIp(pod);
    params.port = kube::kPostgresPort;
    params.user = app ? "app" : "postgres";
    params.dbname = app ? "app" : "postgres";
    params.password = SecretValue(SetOf(pod) + (app ? "-app" : "-superuser"), "password");
    return pq::Connection::Open(params);
  }
  static std::string SetOf(const std::string& pod) { return pod.substr(0, pod.rfind('-')); }

  // The postmaster's pid, from the agent's status (bearer token from the
  // set's agent Secret).
  int64_t PostmasterPid(const std::string& pod) {
    auto response = HttpCall("GET", "http://" + PodIp(pod) + ":8000/status", "",
                             SecretValue(SetOf(pod) + "-agent", "token"), milliseconds(1000));
    if (!response.ok() || response->status != 200) return 0;
    auto status = kube::ParseJson(response->body);
    return status ? kube::GetInt(*status, {"postmasterPid"}).value_or(0) : 0;
  }

  TempDir dir_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<ProcessKubelet> kubelet_;
  std::map<std::string, std::unique_ptr<OperatorProcess>> operators_;
};

TEST_F(OperatorE2eTest, ReplicatesFailsOverAndMovesTheRoleLabels) {
  Apply("orders", 3);
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
  Apply("shop", 2);
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
  Apply("ledger", 3, replication);
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

}  // namespace
}  // namespace pgrs::e2e
