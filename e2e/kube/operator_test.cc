// `pgrs operator` processes against the test API server: status recording,
// health, and leader election between two replicas (SIGKILL, SIGTERM).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include "e2e/kube/operator_process.h"
#include "e2e/kube/test_util.h"
#include "operator/util/http.h"
#include "operator/util/process.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::milliseconds;

class OperatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.tokens = {"operator-token"};
    server_ = std::make_unique<ApiServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/kubeconfig",
                                TestKubeconfig(server_->url(), "operator-token", "", "pgrs-system"))
                    .ok());
  }
  Json Get(const std::string& ns, const std::string& name) {
    return server_->CallJson("GET", kube::ReplicaSetResource().Path(ns, name));
  }
  std::string LeaseHolder() {
    auto lease = server_->CallJson("GET", kube::LeaseResource().Path("pgrs-system", "pgrs-operator"));
    return kube::GetString(lease, {"spec", "holderIdentity"});
  }
  static const Json* Accepted(const Json& object) {
    const Json* conditions = kube::GetField(object, {"status", "conditions"});
    if (conditions == nullptr || !conditions->is_array()) return nullptr;
    for (const auto& c : conditions->as_array()) {
      if (kube::GetString(c, {"type"}) == "Accepted") return &c;
    }
    return nullptr;
  }

  TempDir dir_;
  std::unique_ptr<ApiServer> server_;
};

const std::vector<std::string> kFastElection = {"--leader-elect-lease-duration", "3s", "--leader-elect-renew-deadline",
                                                "2s", "--leader-elect-retry-period", "250ms"};

TEST_F(OperatorTest, RecordsObservedGenerationAndTheAcceptedConditionInStatus) {
  const auto rs = kube::ReplicaSetResource();
  ASSERT_FALSE(server_->CallJson("POST", rs.Path("db"), ReplicaSetObject("good", 3)).is_null());
  ASSERT_FALSE(server_->CallJson("POST", rs.Path("db"), ReplicaSetObject("bad", 99)).is_null());
  ASSERT_FALSE(server_->CallJson("POST", rs.Path("elsewhere"), ReplicaSetObject("ignored", 1)).is_null());
  OperatorProcess op(dir_.path(), "op-a", {"--leader-elect=false", "--watch-namespace", "db"});

  ASSERT_TRUE(WaitFor([&] { return Accepted(Get("db", "good")) && Accepted(Get("db", "bad")); }));
  Json good = Get("db", "good");
  EXPECT_EQ(kube::GetString(*Accepted(good), {"status"}), "True");
  EXPECT_EQ(kube::GetInt(good, {"status", "observedGeneration"}), 1);
  Json bad = Get("db", "bad");
  EXPECT_EQ(kube::GetString(*Accepted(bad), {"status"}), "False");
  EXPECT_EQ(kube::GetString(*Accepted(bad), {"reason"}), "InvalidSpec");
  EXPECT_NE(kube::GetString(*Accepted(bad), {"message"}).find("spec.instances"), std::string::npos)
      << kube::GetString(*Accepted(bad), {"message"});
  EXPECT_EQ(Accepted(Get("elsewhere", "ignored")), nullptr) << "outside --watch-namespace";

  // A spec change moves generation; the operator follows it.
  Json fix = Json::object();
  fix["spec"]["instances"] = Json::number(2);
  ASSERT_FALSE(server_->CallJson("PATCH", rs.Path("db", "bad"), fix).is_null());
  ASSERT_TRUE(WaitFor([&] { return kube::GetInt(Get("db", "bad"), {"status", "observedGeneration"}) == 2; }));
  EXPECT_EQ(kube::GetString(*Accepted(Get("db", "bad")), {"status"}), "True");

  // Events tell people about the verdicts.
  auto events = server_->CallJson("GET", kube::EventResource().Path("db"));
  std::set<std::string> reasons;
  for (const auto& e : events.at("items").as_array()) reasons.insert(kube::GetString(e, {"reason"}));
  EXPECT_TRUE(reasons.count("Accepted"));
  EXPECT_TRUE(reasons.count("InvalidSpec"));

  // Nothing changed, nothing written: a relist after a restart reconciles
  // again but writes no status.
  EXPECT_EQ(op.Probe("/healthz"), 200);
  EXPECT_EQ(op.Probe("/readyz"), 200);
  // Only "good" is touched; "bad" has no kubelet to run its Pods and may
  // still write a changing status of its own.
  const std::string goodStatus = rs.Path("db", "good") + "/status";
  int writes = server_->CountRequests(goodStatus);
  double reconciles = op.Metric("pgrs_reconcile_total");
  ASSERT_TRUE(server_->Restart(/*compact=*/true).ok());
  Json touch = Json::object();
  touch["metadata"]["labels"]["touched"] = Json::string("yes");
  ASSERT_FALSE(server_->CallJson("PATCH", rs.Path("db", "good"), touch).is_null());
  EXPECT_TRUE(WaitFor([&] { return op.Metric("pgrs_reconcile_total") >= reconciles + 1; }));
  EXPECT_TRUE(WaitFor([&] { return op.Metric("pgrs_workqueue_depth") == 0; }));
  // The periodic look may count as the reconcile above before the watch
  // is back: wait for the relist itself.
  EXPECT_TRUE(WaitFor([&] { return op.Metric("pgrs_informer_relists_total") >= 1; }))
      << "the compacted restart forces a relist";
  EXPECT_TRUE(WaitFor([&] { return op.Metric("pgrs_workqueue_depth") == 0; }));
  EXPECT_EQ(server_->CountRequests(goodStatus), writes) << "no status write when nothing changed";

  auto exit = op.Stop(SIGTERM, milliseconds(5000));
  ASSERT_TRUE(exit.has_value()) << "pgrs operator did not exit on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << DescribeWaitStatus(*exit);
}

TEST_F(OperatorTest, ExactlyOneOfTwoReplicasLeadsAndAKilledLeaderIsReplacedAfterTheLease) {
  auto a = std::make_unique<OperatorProcess>(dir_.path(), "op-a", kFastElection);
  auto b = std::make_unique<OperatorProcess>(dir_.path(), "op-b", kFastElection);
  ASSERT_TRUE(WaitFor([&] { return !LeaseHolder().empty(); }));
  ASSERT_TRUE(WaitFor([&] { return a->Metric("pgrs_leader") >= 0 && b->Metric("pgrs_leader") >= 0; }));
  ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path("db"), ReplicaSetObject("demo", 1)).is_null());
  ASSERT_TRUE(WaitFor([&] { return Accepted(Get("db", "demo")) != nullptr; }));

  std::string first = LeaseHolder();
  auto& leader = first == "op-a" ? a : b;
  auto& standby = first == "op-a" ? b : a;
  EXPECT_EQ(leader->Metric("pgrs_leader"), 1);
  EXPECT_EQ(standby->Metric("pgrs_leader"), 0);
  EXPECT_GE(leader->Metric("pgrs_status_writes_total"), 1);
  EXPECT_EQ(standby->Metric("pgrs_status_writes_total"), 0) << "only the leader acts";

  auto killed = std::chrono::steady_clock::now();
  ASSERT_TRUE(leader->Stop(SIGKILL, milliseconds(2000)).has_value());
  ASSERT_TRUE(WaitFor([&] { return LeaseHolder() == standby->identity(); }, milliseconds(8000)));
  auto took = std::chrono::steady_clock::now() - killed;
  EXPECT_GE(took, milliseconds(2000)) << "took over before the lease ran out";
  EXPECT_LE(took, milliseconds(3000 + 1500)) << "did not take over within the lease duration";
  EXPECT_TRUE(WaitFor([&] { return standby->Metric("pgrs_leader") == 1; }));
  auto leaderEvents = [&] {
    std::set<std::string> messages;
    Json events = server_->CallJson("GET", kube::EventResource().Path("pgrs-system"));
    for (const auto& e : events.at("items").as_array()) {
      if (kube::GetString(e, {"reason"}) == "LeaderElection") messages.insert(kube::GetString(e, {"message"}));
    }
    return messages;
  };
  EXPECT_TRUE(WaitFor([&] { return leaderEvents().count(standby->identity() + " became leader") == 1; }));
  EXPECT_EQ(leaderEvents().count(first + " became leader"), 1u);

  // The new leader acts: a new replica set gets its status.
  ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path("db"), ReplicaSetObject("after", 1)).is_null());
  EXPECT_TRUE(WaitFor([&] { return Accepted(Get("db", "after")) != nullptr; }));
}

TEST_F(OperatorTest, ASigtermedLeaderReleasesTheLeaseAndTheOtherTakesOverAtOnce) {
  auto a = std::make_unique<OperatorProcess>(dir_.path(), "op-a", kFastElection);
  ASSERT_TRUE(WaitFor([&] { return LeaseHolder() == "op-a"; }));
  auto b = std::make_unique<OperatorProcess>(dir_.path(), "op-b", kFastElection);
  ASSERT_TRUE(WaitFor([&] { return b->Probe("/readyz") == 200; }));
  EXPECT_EQ(b->Metric("pgrs_leader"), 0);

  auto stopped = std::chrono::steady_clock::now();
  auto exit = a->Stop(SIGTERM, milliseconds(5000));
  ASSERT_TRUE(exit.has_value());
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << DescribeWaitStatus(*exit);
  ASSERT_TRUE(WaitFor([&] { return LeaseHolder() == "op-b"; }, milliseconds(5000)));
  EXPECT_LT(std::chrono::steady_clock::now() - stopped, milliseconds(1500))
      << "a released lease must not wait for the lease duration (3 s)";
}

TEST_F(OperatorTest, ALeaderThatCannotRenewItsLeaseStopsActingAndExits) {
  OperatorProcess op(dir_.path(), "op-a", kFastElection);
  ASSERT_TRUE(WaitFor([&] { return LeaseHolder() == "op-a"; }));
  ASSERT_TRUE(WaitFor([&] { return op.Metric("pgrs_leader") == 1; }));
  auto broken = std::chrono::steady_clock::now();
  server_->AddFault({Fault::Kind::kStatus, "", "/leases/", 500, 0, milliseconds(0), -1});
  auto exit = op.Stop(0, milliseconds(6000));  // signal 0: only wait for it
  ASSERT_TRUE(exit.has_value()) << "the leader kept running without its lease";
  EXPECT_TRUE(WIFEXITED(*exit) && WEXITSTATUS(*exit) == 1) << DescribeWaitStatus(*exit);
  // Renew deadline 2 s + one renewal (two requests of at most 0.5 s): within the 3 s lease.
  EXPECT_LT(std::chrono::steady_clock::now() - broken, milliseconds(3600));
}

TEST_F(OperatorTest, ConnectsOverHttpsWithAClientCertificateFromKUBECONFIG) {
  auto certs = MakeTestCertificates(dir_.path() + "/certs");
  ASSERT_TRUE(certs.ok()) << certs.status().ToString();
  ApiServerOptions options = TlsServerOptions(*certs);
  options.clientCaFile = certs->caFile;
  ApiServer tls(options);
  ASSERT_TRUE(tls.Start().ok());
  // kubectl's layout: file paths relative to the kubeconfig's directory.
  std::string kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: tls\n"
                           "clusters:\n- name: tls\n  cluster:\n    server: " + tls.url() +
                           "\n    certificate-authority: certs/ca.crt\n"
                           "users:\n- name: admin\n  user:\n    client-certificate: certs/client.crt\n"
                           "    client-key: certs/client.key\n"
                           "contexts:\n- name: tls\n  context: {cluster: tls, user: admin, namespace: pgrs-system}\n";
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/tls-kubeconfig", kubeconfig).ok());
  ASSERT_FALSE(tls.CallJson("POST", kube::ReplicaSetResource().Path("db"), ReplicaSetObject("secure", 1)).is_null());
  OperatorProcess op(dir_.path(), "op-tls", {"--leader-elect=true"}, "",
                     {"KUBECONFIG=" + dir_.path() + "/tls-kubeconfig"});
  EXPECT_TRUE(WaitFor([&] {
    auto object = tls.CallJson("GET", kube::ReplicaSetResource().Path("db", "secure"));
    return Accepted(object) != nullptr;
  }));
  auto lease = tls.CallJson("GET", kube::LeaseResource().Path("pgrs-system", "pgrs-operator"));
  EXPECT_EQ(kube::GetString(lease, {"spec", "holderIdentity"}), "op-tls");
}

TEST_F(OperatorTest, BadFlagsAndAMissingConfigurationFailWithAMessage) {
  const char* binary = std::getenv("PGRS_BINARY");
  ProcessSpec spec;
  spec.argv = {binary != nullptr ? binary : "pgrs", "operator", "--leader-elect-lease-duration", "1s",
               "--kubeconfig", dir_.path() + "/kubeconfig"};
  auto result = RunCommand(spec, std::chrono::seconds(10));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exitCode, 2);
  EXPECT_NE(result->output.find("lease duration must be greater than the renew deadline"), std::string::npos)
      << result->output;
  spec.argv = {binary != nullptr ? binary : "pgrs", "operator", "--kubeconfig", dir_.path() + "/missing"};
  result = RunCommand(spec, std::chrono::seconds(10));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->exitCode, 1);
  EXPECT_NE(result->output.find("missing"), std::string::npos) << result->output;
  spec.argv = {binary != nullptr ? binary : "pgrs", "operator", "--no-such-flag"};
  result = RunCommand(spec, std::chrono::seconds(10));
  EXPECT_EQ(result->exitCode, 2);
}

}  // namespace
}  // namespace pgrs::e2e
