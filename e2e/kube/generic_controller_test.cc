// The generic Controller: owned objects enqueue their owner, requeue-after,
// error backoff, and standing by while not the leader.
#include <gtest/gtest.h>

#include "e2e/kube/test_util.h"
#include "operator/kube/controller.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::milliseconds;

class GenericControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    client_ = PlainClient(server_);
    kube::ControllerOptions options;
    options.retry = {milliseconds(20), milliseconds(500), 2.0, 0.0};
    options.standbyRecheck = milliseconds(50);
    controller_ = std::make_unique<kube::Controller>("test", client_.get(), rs_, options);
  }
  void TearDown() override { controller_->Stop(); }
  int Count(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return counts_[key];
  }
  void Bump(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    counts_[key]++;
  }
  Json Owned(const std::string& name, const Json& owner) {
    Json cm = ConfigMap(name, "v");
    Json ref = Json::object();
    ref["apiVersion"] = Json::string("pgrs.dev/v1alpha1");
    ref["kind"] = Json::string("PostgresReplicaSet");
    ref["name"] = Json::string(kube::NameOf(owner));
    ref["uid"] = Json::string(kube::UidOf(owner));
    ref["controller"] = Json::boolean(true);
    cm["metadata"]["ownerReferences"][0] = ref;
    return cm;
  }

  ApiServer server_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<kube::Controller> controller_;
  kube::Resource rs_ = kube::ReplicaSetResource();
  kube::Resource cms_ = kube::ConfigMapResource();
  std::mutex mu_;
  std::map<std::string, int> counts_;
};

TEST_F(GenericControllerTest, AChangeToAnOwnedObjectReconcilesItsOwner) {
  controller_->Owns(cms_);
  controller_->SetReconciler([&](const std::string& key) {
    Bump(key);
    return kube::ReconcileResult::Done();
  });
  Json owner = server_.CallJson("POST", rs_.Path("db"), ReplicaSetObject("demo", 1));
  ASSERT_FALSE(server_.CallJson("POST", cms_.Path("db"), Owned("demo-config", owner)).is_null());
  ASSERT_FALSE(server_.CallJson("POST", cms_.Path("db"), ConfigMap("unowned", "v")).is_null());
  controller_->StartInformers();
  controller_->StartWorkers(nullptr);
  ASSERT_TRUE(WaitFor([&] { return controller_->Synced() && Count("db/demo") >= 1; }));
  ASSERT_EQ(controller_->ListOwned(cms_, kube::UidOf(owner)).size(), 1u);
  int before = Count("db/demo");
  Json changed = server_.CallJson("GET", cms_.Path("db", "demo-config"));
  changed["data"]["value"] = Json::string("tampered");
  ASSERT_FALSE(server_.CallJson("PUT", cms_.Path("db", "demo-config"), changed).is_null());
  EXPECT_TRUE(WaitFor([&] { return Count("db/demo") > before; }));
  EXPECT_EQ(Count("db/unowned"), 0);
}

TEST_F(GenericControllerTest, NothingIsReconciledUntilEveryCacheHasSynced) {
  controller_->Owns(cms_);
  std::atomic<bool> ownedCacheWasEmpty{false};
  controller_->SetReconciler([&](const std::string& key) {
    if (controller_->ListOwned(cms_, kube::UidOf(*controller_->Get(key))).empty()) ownedCacheWasEmpty = true;
    Bump(key);
    return kube::ReconcileResult::Done();
  });
  Json owner = server_.CallJson("POST", rs_.Path("db"), ReplicaSetObject("demo", 1));
  ASSERT_FALSE(server_.CallJson("POST", cms_.Path("db"), Owned("demo-config", owner)).is_null());
  // The owned kind's list is slow: the primary syncs first.
  server_.AddFault({Fault::Kind::kDelay, "GET", "/configmaps", 0, 0, milliseconds(400), 1});
  controller_->StartInformers();
  controller_->StartWorkers(nullptr);
  ASSERT_TRUE(WaitFor([&] { return Count("db/demo") >= 1; }));
  EXPECT_FALSE(ownedCacheWasEmpty) << "reconciled before the owned objects were known";
}

TEST_F(GenericControllerTest, RequeueAfterLooksAgainAndErrorsBackOff) {
  std::atomic<int> failures{0};
  controller_->SetReconciler([&](const std::string& key) {
    Bump(key);
    if (key == "db/flaky" && failures.fetch_add(1) < 3) {
      return kube::ReconcileResult::Failed(Status::Unavailable("agent not up yet"));
    }
    if (key == "db/poll" && Count(key) < 3) return kube::ReconcileResult::After(milliseconds(100));
    return kube::ReconcileResult::Done();
  });
  ASSERT_FALSE(server_.CallJson("POST", rs_.Path("db"), ReplicaSetObject("flaky", 1)).is_null());
  ASSERT_FALSE(server_.CallJson("POST", rs_.Path("db"), ReplicaSetObject("poll", 1)).is_null());
  controller_->StartInformers();
  controller_->StartWorkers(nullptr);
  EXPECT_TRUE(WaitFor([&] { return Count("db/flaky") == 4 && Count("db/poll") == 3; }));
  EXPECT_EQ(controller_->stats().reconcileErrors, 3);
  // Settled: nothing more happens.
  std::this_thread::sleep_for(milliseconds(300));  // a window to observe quiet, not a wait for a condition
  EXPECT_EQ(Count("db/flaky"), 4);
  EXPECT_EQ(Count("db/poll"), 3);
}

TEST_F(GenericControllerTest, AStandbyReconcilesNothingUntilItMayAct) {
  std::atomic<bool> leader{false};
  controller_->SetReconciler([&](const std::string& key) {
    Bump(key);
    return kube::ReconcileResult::Done();
  });
  ASSERT_FALSE(server_.CallJson("POST", rs_.Path("db"), ReplicaSetObject("demo", 1)).is_null());
  controller_->StartInformers();
  controller_->StartWorkers([&] { return leader.load(); });
  ASSERT_TRUE(WaitFor([&] { return controller_->Synced(); }));
  ASSERT_TRUE(controller_->Get("db/demo").has_value()) << "the cache is warm before leading";
  std::this_thread::sleep_for(milliseconds(200));  // a window in which nothing may happen
  EXPECT_EQ(Count("db/demo"), 0);
  leader = true;
  EXPECT_TRUE(WaitFor([&] { return Count("db/demo") == 1; }));
}

}  // namespace
}  // namespace pgrs::e2e
