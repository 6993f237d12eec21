// The test API server's Pod lifecycle over real HTTP, as the real registry
// keeps it: binding, graceful deletion with DeleteOptions, eviction against
// PodDisruptionBudgets (whose status the server keeps), and service-account
// tokens from TokenRequest that expire and die with their Pod.
#include <gtest/gtest.h>

#include <thread>

#include "e2e/kube/apiserver.h"
#include "e2e/kube/test_util.h"
#include "operator/kube/client.h"
#include "operator/kube/objects.h"

namespace pgrs::e2e {
namespace {

using kube::GetInt;
using kube::GetString;
using kube::Json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const kube::Resource kPods = kube::PodResource();
const kube::Resource kBudgets = kube::PdbResource();
const kube::Resource kAccounts = kube::ServiceAccountResource();
constexpr char kNs[] = "ns1";

Json Str(const std::string& s) { return Json::string(s); }

Json PodObject(const std::string& name, const std::map<std::string, std::string>& labels = {}) {
  Json pod = Json::object();
  pod["apiVersion"] = Str("v1");
  pod["kind"] = Str("Pod");
  pod["metadata"]["name"] = Str(name);
  for (const auto& [k, v] : labels) pod["metadata"]["labels"][k] = Str(v);
  pod["spec"]["containers"][0]["name"] = Str("main");
  pod["spec"]["containers"][0]["image"] = Str("none");
  return pod;
}

Json Binding(const std::string& pod, const std::string& node) {
  Json b = Json::object();
  b["apiVersion"] = Str("v1");
  b["kind"] = Str("Binding");
  b["metadata"]["name"] = Str(pod);
  b["target"]["kind"] = Str("Node");
  b["target"]["name"] = Str(node);
  return b;
}

Json Parse(const ApiResponse& r) { return kube::ParseJson(r.body).value_or(Json::null()); }

class PodLifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = PlainClient(server_);
    ASSERT_NE(client_, nullptr);
  }

  Json Pod(const std::string& name) { return server_.CallJson("GET", kPods.Path(kNs, name)); }
  // A Pod bound to node-a and, as its kubelet would say, Running (Ready or not).
  Json RunningPod(const std::string& name, bool ready, const Json& owner = Json::null()) {
    Json pod = PodObject(name, {{"app", "db"}});
    if (!owner.is_null()) {
      Json ref = Json::object();
      ref["apiVersion"] = Str("pgrs.dev/v1alpha1");
      ref["kind"] = Str("PostgresReplicaSet");
      ref["name"] = Str(kube::NameOf(owner));
      ref["uid"] = Str(kube::UidOf(owner));
      ref["controller"] = Json::boolean(true);
      pod["metadata"]["ownerReferences"][0] = ref;
    }
    EXPECT_TRUE(client_->Create(kPods, kNs, pod).ok());
    EXPECT_EQ(server_.Call("POST", kPods.Path(kNs, name, "binding"), Binding(name, "node-a").serialize()).status, 201);
    SetReady(name, ready);
    return Pod(name);
  }
  void SetReady(const std::string& name, bool ready) {
    Json patch = Json::object();
    patch["status"]["phase"] = Str("Running");
    patch["status"]["conditions"][0]["type"] = Str("Ready");
    patch["status"]["conditions"][0]["status"] = Str(ready ? "True" : "False");
    ASSERT_TRUE(client_->MergePatch(kPods, kNs, name, patch, true).ok());
  }
  // The kubelet's last word on a Pod: delete it with grace 0, this very one.
  Status KubeletDelete(const Json& pod) {
    kube::DeleteOptions options;
    options.gracePeriodSeconds = 0;
    options.preconditionUid = kube::UidOf(pod);
    return client_->Delete(kPods, kNs, kube::NameOf(pod), options);
  }

  static ApiServerOptions TestOptions() {
    ApiServerOptions options;
    options.disruptedPodTimeout = milliseconds(1500);  // real: 2 min
    return options;
  }

  ApiServer server_{TestOptions()};
  std::unique_ptr<kube::Client> client_;
};

TEST_F(PodLifecycleTest, BindingSetsTheNodeOnceAndConflictsAfter) {
  ASSERT_TRUE(client_->Create(kPods, kNs, PodObject("p")).ok());
  auto bound = client_->CreateSubresource(kPods, kNs, "p", "binding", Binding("p", "node-a"));
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  EXPECT_EQ(GetString(*bound, {"status"}), "Success");
  EXPECT_EQ(GetString(Pod("p"), {"spec", "nodeName"}), "node-a");
  EXPECT_EQ(GetString(kube::GetField(Pod("p"), {"status", "conditions"})->as_array().at(0), {"type"}), "PodScheduled");

  ApiResponse again = server_.Call("POST", kPods.Path(kNs, "p", "binding"), Binding("p", "node-b").serialize());
  EXPECT_EQ(again.status, 409);
  Json status = Parse(again);
  EXPECT_EQ(GetString(status, {"reason"}), "Conflict");
  EXPECT_EQ(GetString(status, {"message"}),
            "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"node-a\"");
  EXPECT_EQ(GetString(status, {"details", "kind"}), "pods/binding");
  EXPECT_EQ(GetString(Pod("p"), {"spec", "nodeName"}), "node-a");

  EXPECT_EQ(server_.Call("POST", kPods.Path(kNs, "ghost", "binding"), Binding("ghost", "node-a").serialize()).status,
            404);
  EXPECT_EQ(server_.Call("POST", kPods.Path(kNs, "p", "binding"), Binding("other", "node-a").serialize()).status, 400);
}

TEST_F(PodLifecycleTest, GracefulDeletionKeepsABoundPodUntilItsGraceZeroDelete) {
  Json pod = RunningPod("web", true);
  std::string rv = kube::ResourceVersionOf(pod);

  // A watcher sees the deletion begin as MODIFIED.
  kube::WatchCanceller canceller;
  std::atomic<bool> sawTerminating{false};
  std::thread watcher([&] {
    kube::WatchOptions options;
    options.resourceVersion = rv;
    options.timeoutSeconds = 30;
    client_->Watch(kPods, kNs, options, [&](const kube::WatchEvent& e) {
      if (e.type == "MODIFIED" && !GetString(e.object, {"metadata", "deletionTimestamp"}).empty()) {
        sawTerminating = true;
        canceller.Cancel();
      }
    }, &canceller);
  });

  auto before = std::chrono::system_clock::now();
  ASSERT_EQ(server_.Call("DELETE", kPods.Path(kNs, "web")).status, 200);  // no options: the spec's 30 s
  Json terminating = Pod("web");
  ASSERT_FALSE(terminating.is_null()) << "a bound, running Pod stays while it terminates";
  EXPECT_EQ(GetInt(terminating, {"metadata", "deletionGracePeriodSeconds"}).value_or(-1), 30);
  auto at = kube::ParseTime(GetString(terminating, {"metadata", "deletionTimestamp"}));
  ASSERT_TRUE(at.has_value());
  EXPECT_GE(*at, before + seconds(29));
  EXPECT_LE(*at, std::chrono::system_clock::now() + seconds(31));
  EXPECT_TRUE(WaitFor([&] { return sawTerminating.load(); }));
  canceller.Cancel();
  watcher.join();

  // A longer grace changes nothing; a shorter one moves the timestamp back.
  Json longer = Json::object();
  longer["gracePeriodSeconds"] = Json::number(60);
  ASSERT_EQ(server_.Call("DELETE", kPods.Path(kNs, "web"), longer.serialize()).status, 200);
  EXPECT_EQ(GetInt(Pod("web"), {"metadata", "deletionGracePeriodSeconds"}).value_or(-1), 30);
  ASSERT_EQ(server_.Call("DELETE", kPods.Path(kNs, "web") + "?gracePeriodSeconds=10").status, 200);
  Json shorter = Pod("web");
  EXPECT_EQ(GetInt(shorter, {"metadata", "deletionGracePeriodSeconds"}).value_or(-1), 10);
  EXPECT_EQ(*kube::ParseTime(GetString(shorter, {"metadata", "deletionTimestamp"})), *at - seconds(20));

  // Preconditions: a namesake's uid, a stale version.
  Json wrongUid = Json::object();
  wrongUid["gracePeriodSeconds"] = Json::number(0);
  wrongUid["preconditions"]["uid"] = Str("not-this-one");
  ApiResponse conflict = server_.Call("DELETE", kPods.Path(kNs, "web"), wrongUid.serialize());
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(GetString(Parse(conflict), {"reason"}), "Conflict");
  EXPECT_EQ(GetString(Parse(conflict), {"message"}),
            "Operation cannot be fulfilled on Pod \"web\": the UID in the precondition (not-this-one) does not match "
            "the UID in record (" + kube::UidOf(pod) + "). The object might have been deleted and then recreated");
  EXPECT_EQ(GetString(Parse(conflict), {"details", "name"}), "web");
  kube::DeleteOptions stale;
  stale.preconditionResourceVersion = rv;
  Status staleDelete = client_->Delete(kPods, kNs, "web", stale);
  EXPECT_EQ(staleDelete.code(), StatusCode::kConflict) << staleDelete.ToString();
  EXPECT_NE(staleDelete.message().find("the ResourceVersion in the precondition (" + rv + ")"), std::string::npos);
  EXPECT_FALSE(Pod("web").is_null());

  // The kubelet's grace-0 delete with the right uid removes it.
  ASSERT_TRUE(KubeletDelete(pod).ok());
  EXPECT_TRUE(Pod("web").is_null());
}

TEST_F(PodLifecycleTest, UnboundFinishedOrForcedPodsGoAtOnceAndOtherKindsAsBefore) {
  ASSERT_TRUE(client_->Create(kPods, kNs, PodObject("unbound")).ok());
  ASSERT_TRUE(client_->Delete(kPods, kNs, "unbound").ok());
  EXPECT_TRUE(Pod("unbound").is_null()) << "nothing runs an unscheduled Pod";

  RunningPod("done", false);
  Json succeeded = Json::object();
  succeeded["status"]["phase"] = Str("Succeeded");
  ASSERT_TRUE(client_->MergePatch(kPods, kNs, "done", succeeded, true).ok());
  ASSERT_TRUE(client_->Delete(kPods, kNs, "done").ok());
  EXPECT_TRUE(Pod("done").is_null()) << "a finished Pod has nothing to stop";

  RunningPod("forced", true);
  kube::DeleteOptions force;
  force.gracePeriodSeconds = 0;  // as KubeRuntime::FenceFromOutside does
  ASSERT_TRUE(client_->Delete(kPods, kNs, "forced", force).ok());
  EXPECT_TRUE(Pod("forced").is_null());

  ASSERT_TRUE(client_->Create(kube::ConfigMapResource(), kNs, ConfigMap("cm", "v")).ok());
  ASSERT_TRUE(client_->Delete(kube::ConfigMapResource(), kNs, "cm").ok());
  EXPECT_TRUE(server_.CallJson("GET", kube::ConfigMapResource().Path(kNs, "cm")).is_null());
}

TEST_F(PodLifecycleTest, FinalizersHoldAPodAfterItsGraceZeroDeleteUntilTheyAreRemoved) {
  Json pod = PodObject("held");
  pod["metadata"]["finalizers"][0] = Str("test.pgrs.dev/hold");
  ASSERT_TRUE(client_->Create(kPods, kNs, pod).ok());
  ASSERT_EQ(server_.Call("POST", kPods.Path(kNs, "held", "binding"), Binding("held", "node-a").serialize()).status, 201);
  ASSERT_TRUE(client_->Delete(kPods, kNs, "held").ok());
  // The finalizer goes while the grace period runs: the Pod stays.
  Json noFinalizers = Json::object();
  noFinalizers["metadata"]["finalizers"] = Json::null();
  ASSERT_TRUE(client_->MergePatch(kPods, kNs, "held", noFinalizers).ok());
  EXPECT_FALSE(Pod("held").is_null()) << "a running grace period keeps the Pod";
  EXPECT_EQ(GetInt(Pod("held"), {"metadata", "deletionGracePeriodSeconds"}).value_or(-1), 30);
  ASSERT_TRUE(KubeletDelete(Pod("held")).ok());
  EXPECT_TRUE(Pod("held").is_null());

  // With the finalizer still there, the grace-0 delete leaves it held.
  ASSERT_TRUE(client_->Create(kPods, kNs, pod).ok());
  ASSERT_EQ(server_.Call("POST", kPods.Path(kNs, "held", "binding"), Binding("held", "node-a").serialize()).status, 201);
  ASSERT_TRUE(client_->Delete(kPods, kNs, "held").ok());
  ASSERT_TRUE(KubeletDelete(Pod("held")).ok());
  EXPECT_EQ(GetInt(Pod("held"), {"metadata", "deletionGracePeriodSeconds"}).value_or(-1), 0);
  ASSERT_TRUE(client_->MergePatch(kPods, kNs, "held", noFinalizers).ok());
  EXPECT_TRUE(Pod("held").is_null());
}

// A kubelet still writing for a Pod deleted and made again under its name
// (its last status, say) must not land on the namesake: the uid in a patch
// is a precondition, as in Kubernetes.
TEST_F(PodLifecycleTest, AStatusPatchForAnEarlierNamesakeIsAConflict) {
  Json first = RunningPod("twin", true);
  ASSERT_TRUE(KubeletDelete(first).ok());
  Json second = RunningPod("twin", false);
  ASSERT_NE(kube::UidOf(second), kube::UidOf(first));
  Json patch = Json::object();
  patch["metadata"]["uid"] = Str(kube::UidOf(first));
  patch["status"]["podIP"] = Str("127.0.0.99");
  auto stale = client_->MergePatch(kPods, kNs, "twin", patch, true);
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kConflict) << stale.status().ToString();
  EXPECT_NE(stale.status().message().find("Precondition failed: UID in precondition"), std::string::npos)
      << stale.status().message();
  EXPECT_EQ(kube::GetString(Pod("twin"), {"status", "podIP"}), "");
  patch["metadata"]["uid"] = Str(kube::UidOf(second));
  EXPECT_TRUE(client_->MergePatch(kPods, kNs, "twin", patch, true).ok());
  EXPECT_EQ(kube::GetString(Pod("twin"), {"status", "podIP"}), "127.0.0.99");
}

class EvictionTest : public PodLifecycleTest {
 protected:
  Json Budget(const std::string& name) { return server_.CallJson("GET", kBudgets.Path(kNs, name)); }
  int64_t Allowed(const std::string& name) { return GetInt(Budget(name), {"status", "disruptionsAllowed"}).value_or(-1); }
  Json MakeBudget(const std::string& name, const Json& selector) {
    Json pdb = Json::object();
    pdb["apiVersion"] = Str("policy/v1");
    pdb["kind"] = Str("PodDisruptionBudget");
    pdb["metadata"]["name"] = Str(name);
    pdb["spec"]["maxUnavailable"] = Json::number(1);
    pdb["spec"]["selector"] = selector;
    return pdb;
  }
  ApiResponse EvictRaw(const std::string& pod) {
    Json eviction = Json::object();
    eviction["apiVersion"] = Str("policy/v1");
    eviction["kind"] = Str("Eviction");
    eviction["metadata"]["name"] = Str(pod);
    return server_.Call("POST", kPods.Path(kNs, pod, "eviction"), eviction.serialize());
  }
};

TEST_F(EvictionTest, ABudgetAllowsOneEvictionRefusesWhileAPodIsNotReadyAndAllowsAgainOnceReady) {
  auto owner = client_->Create(kube::ReplicaSetResource(), kNs, ReplicaSetObject("db", 3));
  ASSERT_TRUE(owner.ok());
  for (const char* name : {"db-1", "db-2", "db-3"}) RunningPod(name, true, *owner);
  Json selector = Json::object();
  selector["matchLabels"]["app"] = Str("db");
  ASSERT_TRUE(client_->Create(kBudgets, kNs, MakeBudget("db", selector)).ok());

  Json status = Budget("db").at("status");
  EXPECT_EQ(GetInt(status, {"expectedPods"}).value_or(-1), 3);  // the owner's scale (spec.instances)
  EXPECT_EQ(GetInt(status, {"desiredHealthy"}).value_or(-1), 2);
  EXPECT_EQ(GetInt(status, {"currentHealthy"}).value_or(-1), 3);
  EXPECT_EQ(GetInt(status, {"disruptionsAllowed"}).value_or(-1), 1);
  EXPECT_EQ(GetInt(status, {"observedGeneration"}).value_or(-1), 1);
  EXPECT_EQ(GetString(status.at("conditions").as_array().at(0), {"type"}), "DisruptionAllowed");
  EXPECT_EQ(GetString(status.at("conditions").as_array().at(0), {"status"}), "True");

  // One may go: it is deleted gracefully (it stays, terminating).
  Json first = Pod("db-1");
  Status evicted = client_->Evict(kNs, "db-1");
  ASSERT_TRUE(evicted.ok()) << evicted.ToString();
  EXPECT_FALSE(GetString(Pod("db-1"), {"metadata", "deletionTimestamp"}).empty());
  EXPECT_EQ(Allowed("db"), 0);
  EXPECT_EQ(GetInt(Budget("db"), {"status", "currentHealthy"}).value_or(-1), 2);
  EXPECT_TRUE(client_->Evict(kNs, "db-1").ok()) << "an already terminating Pod: success";

  // The next is refused: 429 with the budget's numbers.
  ApiResponse refused = EvictRaw("db-2");
  EXPECT_EQ(refused.status, 429);
  Json body = Parse(refused);
  EXPECT_EQ(GetString(body, {"reason"}), "TooManyRequests");
  EXPECT_EQ(GetInt(body, {"code"}).value_or(0), 429);
  EXPECT_EQ(GetString(body, {"message"}), "Cannot evict pod as it would violate the pod's disruption budget.");
  const Json& cause = kube::GetField(body, {"details", "causes"})->as_array().at(0);
  EXPECT_EQ(GetString(cause, {"reason"}), "DisruptionBudget");
  EXPECT_EQ(GetString(cause, {"message"}), "The disruption budget db needs 2 healthy pods and has 2 currently");
  Status tooMany = client_->Evict(kNs, "db-2");
  EXPECT_TRUE(kube::IsTooManyRequests(tooMany)) << tooMany.ToString();
  EXPECT_EQ(tooMany.code(), StatusCode::kUnavailable);
  EXPECT_NE(tooMany.message().find("needs 2 healthy pods and has 2 currently"), std::string::npos);

  // The evicted Pod goes, comes back not Ready: still refused.
  ASSERT_TRUE(KubeletDelete(first).ok());
  RunningPod("db-1", false, *owner);
  EXPECT_EQ(refused.status, EvictRaw("db-2").status);
  EXPECT_EQ(Allowed("db"), 0);

  // Ready again: a watcher sees the budget allow one, and one may go.
  std::string rv = kube::ResourceVersionOf(Budget("db"));
  std::atomic<bool> sawAllowed{false};
  kube::WatchCanceller canceller;
  std::thread watcher([&] {
    kube::WatchOptions options;
    options.resourceVersion = rv;
    client_->Watch(kBudgets, kNs, options, [&](const kube::WatchEvent& e) {
      if (GetInt(e.object, {"status", "disruptionsAllowed"}).value_or(0) == 1) {
        sawAllowed = true;
        canceller.Cancel();
      }
    }, &canceller);
  });
  SetReady("db-1", true);
  EXPECT_TRUE(WaitFor([&] { return sawAllowed.load(); }));
  canceller.Cancel();
  watcher.join();
  EXPECT_TRUE(client_->Evict(kNs, "db-2").ok());

  // The owner's scale is the denominator: 5 instances, maxUnavailable 1.
  Json scale = Json::object();
  scale["spec"]["instances"] = Json::number(5);
  ASSERT_TRUE(client_->MergePatch(kube::ReplicaSetResource(), kNs, "db", scale).ok());
  EXPECT_EQ(GetInt(Budget("db"), {"status", "expectedPods"}).value_or(-1), 5);
  EXPECT_EQ(GetInt(Budget("db"), {"status", "desiredHealthy"}).value_or(-1), 4);

  EXPECT_EQ(client_->Evict(kNs, "ghost").code(), StatusCode::kNotFound);
}

TEST_F(EvictionTest, TwoBudgetsOverOnePodAreAnInternalErrorAndAFailedDeleteExpiresFromDisruptedPods) {
  RunningPod("a", true);
  RunningPod("b", true);
  Json byLabel = Json::object();
  byLabel["matchLabels"]["app"] = Str("db");
  ASSERT_TRUE(client_->Create(kBudgets, kNs, MakeBudget("one", byLabel)).ok());

  // The eviction's delete fails (a namesake's uid): the budget has counted
  // the Pod as disrupted, until disruptedPodTimeout.
  Json eviction = Json::object();
  eviction["metadata"]["name"] = Str("a");
  eviction["deleteOptions"]["preconditions"]["uid"] = Str("not-this-one");
  EXPECT_EQ(server_.Call("POST", kPods.Path(kNs, "a", "eviction"), eviction.serialize()).status, 409);
  Json disrupted = Budget("one");
  EXPECT_TRUE(kube::GetField(disrupted, {"status", "disruptedPods", "a"}) != nullptr) << disrupted.serialize();
  EXPECT_EQ(GetInt(disrupted, {"status", "currentHealthy"}).value_or(-1), 1);
  EXPECT_TRUE(WaitFor([&] { return kube::GetField(Budget("one"), {"status", "disruptedPods"}) == nullptr; },
                      seconds(5)))
      << Budget("one").serialize();
  EXPECT_EQ(GetInt(Budget("one"), {"status", "currentHealthy"}).value_or(-1), 2);

  Json byExpression = Json::object();
  byExpression["matchExpressions"][0]["key"] = Str("app");
  byExpression["matchExpressions"][0]["operator"] = Str("In");
  byExpression["matchExpressions"][0]["values"][0] = Str("db");
  ASSERT_TRUE(client_->Create(kBudgets, kNs, MakeBudget("two", byExpression)).ok());
  ApiResponse refused = EvictRaw("b");
  EXPECT_EQ(refused.status, 500);
  EXPECT_EQ(GetString(Parse(refused), {"reason"}), "InternalError");
  EXPECT_EQ(GetString(Parse(refused), {"message"}),
            "Internal error occurred: This pod has more than one PodDisruptionBudget, which the eviction subresource "
            "does not support.");
  EXPECT_TRUE(GetString(Pod("b"), {"metadata", "deletionTimestamp"}).empty());

  // No budget at all: a plain graceful delete.
  RunningPod("free", true);
  Json other = Pod("free");
  other["metadata"]["labels"]["app"] = Str("web");
  ASSERT_TRUE(client_->Update(kPods, kNs, other).ok());
  EXPECT_EQ(EvictRaw("free").status, 201);
  EXPECT_EQ(GetInt(Pod("free"), {"metadata", "deletionGracePeriodSeconds"}).value_or(-1), 30);
}

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.tokens = {"admin-token"};
    options.minTokenExpiration = seconds(1);
    server_ = std::make_unique<ApiServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    admin_ = ClientWith("admin-token");
  }
  std::unique_ptr<kube::Client> ClientWith(const std::string& token, const std::string& tokenFile = "") {
    kube::ClientConfig config;
    config.server = server_->url();
    config.token = token;
    config.tokenFile = tokenFile;
    config.tokenRefresh = std::chrono::hours(1);  // only a 401 makes it read the file again
    kube::ClientOptions options;
    options.maxAttempts = 1;
    auto client = kube::Client::Create(config, options);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client.value()) : nullptr;
  }
  Result<Json> RequestToken(const std::string& account, int64_t seconds, const std::string& pod = "",
                            const std::string& uid = "") {
    Json request = Json::object();
    request["apiVersion"] = Str("authentication.k8s.io/v1");
    request["kind"] = Str("TokenRequest");
    request["spec"]["expirationSeconds"] = Json::number(seconds);
    if (!pod.empty()) {
      request["spec"]["boundObjectRef"]["kind"] = Str("Pod");
      request["spec"]["boundObjectRef"]["apiVersion"] = Str("v1");
      request["spec"]["boundObjectRef"]["name"] = Str(pod);
      if (!uid.empty()) request["spec"]["boundObjectRef"]["uid"] = Str(uid);
    }
    return admin_->CreateSubresource(kAccounts, kNs, account, "token", request);
  }
  // What a request with `token` gets: OK, or the error of its 401.
  Status Authenticates(const std::string& token) {
    auto got = ClientWith(token)->List(kube::ConfigMapResource(), kNs);
    return got.ok() ? Status::Ok() : got.status();
  }

  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<kube::Client> admin_;
};

TEST_F(TokenTest, TokenRequestTokensAuthenticateUntilTheyExpireOrTheirPodIsDeleted) {
  EXPECT_EQ(RequestToken("ghost", 600).status().code(), StatusCode::kNotFound);
  auto defaulted = RequestToken("default", 0);  // 0: the default 3600 s
  ASSERT_TRUE(defaulted.ok());
  EXPECT_EQ(GetInt(*defaulted, {"spec", "expirationSeconds"}).value_or(0), 3600);
  ApiResponse invalid = server_->Call("POST", kAccounts.Path(kNs, "default", "token"), R"({"spec":{"expirationSeconds":-5}})");
  EXPECT_EQ(invalid.status, 422);
  EXPECT_EQ(GetString(Parse(invalid), {"reason"}), "Invalid");
  EXPECT_NE(GetString(Parse(invalid), {"message"}).find("spec.expirationSeconds"), std::string::npos);

  // `default` needs no object; a short token works, then 401.
  auto shortLived = RequestToken("default", 2);
  ASSERT_TRUE(shortLived.ok()) << shortLived.status().ToString();
  std::string token = GetString(*shortLived, {"status", "token"});
  ASSERT_FALSE(token.empty());
  EXPECT_EQ(GetInt(*shortLived, {"spec", "expirationSeconds"}).value_or(0), 2);
  auto expires = kube::ParseTime(GetString(*shortLived, {"status", "expirationTimestamp"}));
  ASSERT_TRUE(expires.has_value());
  EXPECT_LE(*expires, std::chrono::system_clock::now() + seconds(3));
  EXPECT_TRUE(Authenticates(token).ok());
  EXPECT_TRUE(WaitFor([&] { return !Authenticates(token).ok(); }, seconds(5)));
  EXPECT_NE(Authenticates(token).message().find("HTTP 401"), std::string::npos) << Authenticates(token).ToString();
  EXPECT_NE(Authenticates("made-up").message().find("HTTP 401"), std::string::npos);

  // A token bound to a Pod dies with it.
  auto pod = admin_->Create(kPods, kNs, PodObject("app-1"));
  ASSERT_TRUE(pod.ok());
  EXPECT_EQ(RequestToken("default", 600, "app-1", "not-its-uid").status().code(), StatusCode::kConflict);
  EXPECT_EQ(RequestToken("default", 600, "nobody").status().code(), StatusCode::kNotFound);
  Json account = Json::object();
  account["metadata"]["name"] = Str("robot");
  ASSERT_TRUE(admin_->Create(kAccounts, kNs, account).ok());
  EXPECT_EQ(RequestToken("robot", 600, "app-1").status().code(), StatusCode::kInvalid)
      << "the Pod runs as default, not robot";
  auto bound = RequestToken("default", 600, "app-1", kube::UidOf(*pod));
  ASSERT_TRUE(bound.ok()) << bound.status().ToString();
  std::string boundToken = GetString(*bound, {"status", "token"});
  EXPECT_TRUE(Authenticates(boundToken).ok());
  ASSERT_TRUE(admin_->Delete(kPods, kNs, "app-1").ok());  // unbound: gone at once
  EXPECT_FALSE(Authenticates(boundToken).ok());

  // A ServiceAccount's token dies with the account.
  auto robot = RequestToken("robot", 600);
  ASSERT_TRUE(robot.ok());
  EXPECT_TRUE(Authenticates(GetString(*robot, {"status", "token"})).ok());
  ASSERT_TRUE(admin_->Delete(kAccounts, kNs, "robot").ok());
  EXPECT_FALSE(Authenticates(GetString(*robot, {"status", "token"})).ok());
}

TEST_F(TokenTest, AClientWithATokenFileKeepsWorkingAcrossAKubeletStyleRotation) {
  TempDir tmp;
  std::string dir = tmp.path() + "/serviceaccount";
  ASSERT_TRUE(MakeDirs(dir).ok());
  auto first = RequestToken("default", 2);
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/token", GetString(*first, {"status", "token"})).ok());
  auto client = ClientWith("", dir + "/token");
  ASSERT_TRUE(client->List(kube::ConfigMapResource(), kNs).ok());

  // The kubelet renames a new token over the old one; the old one expires.
  auto second = RequestToken("default", 600);
  ASSERT_TRUE(second.ok());
  std::string fresh = GetString(*second, {"status", "token"});
  ASSERT_TRUE(WriteFileAtomic(dir + "/token", fresh).ok());
  ASSERT_TRUE(WaitFor([&] { return !Authenticates(GetString(*first, {"status", "token"})).ok(); }, seconds(5)));
  EXPECT_NE(client->CurrentToken(), fresh) << "not re-read before a 401 (tokenRefresh is an hour)";
  // The 401 makes the client read the file again and retry at once.
  auto listed = client->List(kube::ConfigMapResource(), kNs);
  EXPECT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(client->CurrentToken(), fresh);
}

}  // namespace
}  // namespace pgrs::e2e
