// Backups in Kubernetes mode end to end: the test API server, the process
// kubelet (instance Pods as local processes with real PostgreSQL 15 and
// real pgBackRest) and two operator replicas. The repository is a
// ReadWriteMany PersistentVolumeClaim the test makes, mounted by every
// instance Pod (on the process kubelet: one directory for all of them).
#include <gtest/gtest.h>

#include <set>

#include "e2e/operator/kube_env.h"
#include "operator/api/types.h"
#include "operator/kube/objects.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::seconds;

class OperatorBackupE2eTest : public ::testing::Test, public KubeEnvironment {
 protected:
  void SetUp() override {
    Status started = Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  void TearDown() override { Stop(HasFailure()); }

  bool MakeClaim(const std::string& name, const std::string& accessMode) {
    Json pvc = Json::object();
    pvc["apiVersion"] = Json::string("v1");
    pvc["kind"] = Json::string("PersistentVolumeClaim");
    pvc["metadata"]["name"] = Json::string(name);
    pvc["metadata"]["namespace"] = Json::string(kNs);
    pvc["spec"]["accessModes"][0] = Json::string(accessMode);
    pvc["spec"]["resources"]["requests"]["storage"] = Json::string("1Gi");
    return !server_->CallJson("POST", kube::PvcResource().Path(kNs), pvc).is_null();
  }
  Json Accepted(const std::string& set) {
    const Json rs = Set(set);
    const Json* conditions = kube::GetField(rs, {"status", "conditions"});
    if (conditions != nullptr && conditions->is_array()) {
      for (const auto& c : conditions->as_array()) {
        if (kube::GetString(c, {"type"}) == "Accepted") return c;
      }
    }
    return Json::null();
  }
  bool Patch(const std::string& set, const Json& patch) {
    return server_->Call("PATCH", kube::ReplicaSetResource().Path(kNs, set), patch.serialize()).status == 200;
  }
};

// A running set gets spec.backup with a volumeClaim repository: its Pods,
// made before, are made again one at a time to mount it (standbys first,
// the primary by a hand-over), archiving starts into the shared claim, and
// no row is lost. A set naming a claim that does not exist (or one that is
// not ReadWriteMany) is not accepted, the field named, until it is there.
TEST_F(OperatorBackupE2eTest, ARunningSetMountsItsRepositoryPodByPodAndArchivesIntoTheClaim) {
  ASSERT_TRUE(MakeClaim("backups", "ReadWriteMany"));
  ASSERT_TRUE(Apply("shop", 2));
  // The other set names a claim that is not there yet.
  {
    Json rs = ReplicaSetObject("later", 1);
    rs["metadata"]["namespace"] = Json::string(kNs);
    rs["spec"]["backup"]["repository"]["volumeClaim"] = Json::string("later-backups");
    ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path(kNs), rs).is_null());
  }
  ASSERT_TRUE(WaitFor([&] { return kube::GetString(Accepted("later"), {"reason"}) == "MissingReference"; },
                      seconds(30)))
      << Set("later").serialize();
  EXPECT_EQ(kube::GetString(Accepted("later"), {"status"}), "False");
  EXPECT_EQ(kube::GetString(Accepted("later"), {"message"}),
            "postgresreplicaset later: spec.backup.repository.volumeClaim: PersistentVolumeClaim db/later-backups "
            "not found (create it, ReadWriteMany)");
  EXPECT_TRUE(Pods(kube::PodSelector("later")).empty()) << "nothing is made for a set that is not accepted";

  ASSERT_TRUE(WaitHealthy("shop", 2, seconds(180))) << Set("shop").serialize();
  const std::string primary = Primary("shop");
  std::map<std::string, std::string> uids;
  for (const auto& pod : Pods(kube::PodSelector("shop"))) {
    EXPECT_EQ(kube::PodRepositoryClaim(pod), "");
    uids[kube::NameOf(pod)] = kube::UidOf(pod);
  }
  std::set<int64_t> written;
  {
    auto app = Connect(primary, true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("CREATE TABLE kept (id bigint PRIMARY KEY)").ok());
    for (int i = 1; i <= 20; i++) {
      ASSERT_TRUE((*app)->Exec("INSERT INTO kept VALUES (" + std::to_string(i) + ")").ok());
      written.insert(i);
    }
  }

  Json patch = Json::object();
  patch["spec"]["backup"]["repository"]["volumeClaim"] = Json::string("backups");
  ASSERT_TRUE(Patch("shop", patch));
  // Every Pod made again, now mounting the claim; the set healthy again.
  ASSERT_TRUE(WaitFor([&] {
    auto pods = Pods(kube::PodSelector("shop"));
    if (pods.size() != 2) return false;
    for (const auto& pod : pods) {
      if (kube::PodRepositoryClaim(pod) != "backups" || kube::UidOf(pod) == uids[kube::NameOf(pod)]) return false;
    }
    return true;
  }, seconds(180))) << Set("shop").serialize();
  ASSERT_TRUE(WaitHealthy("shop", 2, seconds(120))) << Set("shop").serialize();
  int planned = 0, unplanned = 0;
  CountFailovers("shop", &planned, &unplanned);
  EXPECT_EQ(planned, 1) << "the primary's Pod hands over once: " << Set("shop").serialize();
  EXPECT_EQ(unplanned, 0) << Set("shop").serialize();
  EXPECT_NE(Primary("shop"), primary);

  // The new primary archives into the claim: a segment switched now shows
  // up in status.backup and in the claim's directory.
  {
    auto app = Connect(Primary("shop"), true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("INSERT INTO kept VALUES (21)").ok());
    written.insert(21);
    auto su = Connect(Primary("shop"), false);
    ASSERT_TRUE(su.ok()) << su.status().ToString();
    ASSERT_TRUE((*su)->Query("SELECT pg_switch_wal()").ok());
  }
  ASSERT_TRUE(WaitFor([&] {
    return !kube::GetString(Set("shop"), {"status", "backup", "lastArchivedWal"}).empty();
  }, seconds(30))) << Set("shop").serialize();
  EXPECT_TRUE(PathExists(kubelet_->VolumeDir(kNs, "backups") + "/archive/shop/archive.info"));
  const Json shop = Set("shop");
  const Json* failing = kube::GetField(shop, {"status", "backup", "archivingFailing"});
  EXPECT_TRUE(failing == nullptr || (failing->is_boolean() && !failing->as_bool())) << Set("shop").serialize();
  for (const char* pod : {"shop-1", "shop-2"}) {
    EXPECT_TRUE(WaitFor([&] { return Rows(pod, "kept").size() >= written.size(); }, seconds(30))) << pod;
  }

  // The missing claim made (as ReadWriteOnce, for one instance that is
  // fine): the other set is accepted and runs, archiving into it.
  ASSERT_TRUE(MakeClaim("later-backups", "ReadWriteOnce"));
  ASSERT_TRUE(WaitHealthy("later", 1, seconds(120))) << Set("later").serialize();
  EXPECT_EQ(kube::GetString(Accepted("later"), {"status"}), "True");
  EXPECT_EQ(kube::PodRepositoryClaim(Pod("later-1")), "later-backups");
  // Scaled to two, a ReadWriteOnce claim cannot serve both Pods.
  Json scale = Json::object();
  scale["spec"]["instances"] = Json::number(2);
  ASSERT_TRUE(Patch("later", scale));
  ASSERT_TRUE(WaitFor([&] { return kube::GetString(Accepted("later"), {"reason"}) == "MissingReference"; },
                      seconds(30)))
      << Set("later").serialize();
  EXPECT_NE(kube::GetString(Accepted("later"), {"message"}).find("must have accessModes ReadWriteMany"),
            std::string::npos)
      << Set("later").serialize();
}

}  // namespace
}  // namespace pgrs::e2e
