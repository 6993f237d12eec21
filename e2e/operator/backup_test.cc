// Backups in Kubernetes mode end to end: the test API server, the process
// kubelet (instance Pods as local processes with real PostgreSQL 15 and
// real pgBackRest) and two operator replicas. The repository is a
// ReadWriteMany PersistentVolumeClaim the test makes, mounted by every
// instance Pod (on the process kubelet: one directory for all of them).
#include <gtest/gtest.h>

#include <set>

#include "e2e/operator/kube_env.h"
#include "operator/api/types.h"
#include "operator/kube/backup_controller.h"
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
  // Labels of the set's status.backup.backups.
  std::set<std::string> Listed(const std::string& set) {
    std::set<std::string> out;
    const Json rs = Set(set);
    const Json* backups = kube::GetField(rs, {"status", "backup", "backups"});
    if (backups != nullptr && backups->is_array()) {
      for (const auto& b : backups->as_array()) out.insert(kube::GetString(b, {"label"}));
    }
    return out;
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
  // An S3 repository whose Secret is missing, then lacks a key.
  {
    Json rs = ReplicaSetObject("objects", 1);
    rs["metadata"]["namespace"] = Json::string(kNs);
    Json& s3 = rs["spec"]["backup"]["repository"]["s3"];
    s3["endpoint"] = Json::string("s3.example:9000");
    s3["bucket"] = Json::string("pgrs");
    s3["region"] = Json::string("us-east-1");
    s3["credentialsSecret"] = Json::string("s3-keys");
    ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path(kNs), rs).is_null());
  }
  ASSERT_TRUE(WaitFor([&] { return kube::GetString(Accepted("objects"), {"reason"}) == "MissingReference"; },
                      seconds(30)))
      << Set("objects").serialize();
  EXPECT_EQ(kube::GetString(Accepted("objects"), {"message"}),
            "postgresreplicaset objects: spec.backup.repository.s3.credentialsSecret: Secret db/s3-keys not found");
  ASSERT_TRUE(MakeSecret("s3-keys", {{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLE"}}));
  ASSERT_TRUE(WaitFor([&] {
    return kube::GetString(Accepted("objects"), {"message"}) ==
           "postgresreplicaset objects: spec.backup.repository.s3.credentialsSecret: Secret db/s3-keys has no key "
           "AWS_SECRET_ACCESS_KEY";
  }, seconds(30))) << Set("objects").serialize();

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

// PostgresBackups: one asked for is taken on the primary (through its
// agent) into the shared claim and shows up in the set's status.backup;
// spec.backup.schedule makes one PostgresBackup per scheduled run, owned
// by the set. Bad ones fail or wait with the field named.
TEST_F(OperatorBackupE2eTest, PostgresBackupsOnDemandAndOnScheduleLandInTheRepository) {
  ASSERT_TRUE(MakeClaim("backups", "ReadWriteMany"));
  {
    Json rs = ReplicaSetObject("cart", 2);
    rs["metadata"]["namespace"] = Json::string(kNs);
    rs["spec"]["backup"]["repository"]["volumeClaim"] = Json::string("backups");
    rs["spec"]["backup"]["encryption"] = Json::boolean(true);
    ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path(kNs), rs).is_null());
  }
  // Asked for before the set runs: it waits for a settled primary.
  ASSERT_TRUE(MakeBackup("cart-first", "cart", "full"));
  ASSERT_TRUE(MakeBackup("nobody", "nosuchset", "full"));
  ASSERT_TRUE(MakeBackup("weekly", "cart", "weekly"));
  ASSERT_TRUE(WaitHealthy("cart", 2, seconds(180))) << Set("cart").serialize();
  {
    auto app = Connect(Primary("cart"), true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 1000) g").ok());
  }
  ASSERT_TRUE(WaitFor([&] { return BackupPhase("cart-first") == "Completed"; }, seconds(120))) << Backup("cart-first").serialize();
  const Json first = Backup("cart-first");
  const std::string label = kube::GetString(first, {"status", "label"});
  EXPECT_EQ(label.back(), 'F') << first.serialize();
  EXPECT_EQ(kube::GetString(first, {"status", "type"}), "full");
  EXPECT_EQ(kube::GetString(first, {"status", "instance"}), Primary("cart"));
  EXPECT_FALSE(kube::GetString(first, {"status", "stopLsn"}).empty()) << first.serialize();
  EXPECT_FALSE(kube::GetString(first, {"status", "stopTime"}).empty()) << first.serialize();
  EXPECT_GT(kube::GetInt(first, {"status", "databaseSize"}).value_or(0), 0) << first.serialize();
  EXPECT_TRUE(PathExists(kubelet_->VolumeDir(kNs, "backups") + "/backup/cart/" + label));
  // Encrypted: the passphrase Secret outlives the set (no owner), and the
  // repository's files start with OpenSSL's header.
  {
    const Json secret = server_->CallJson("GET", kube::SecretResource().Path(kNs, "cart-backup-encryption"));
    EXPECT_EQ(kube::SecretValue(secret, "passphrase").size(), 64u);
    EXPECT_EQ(kube::GetField(secret, {"metadata", "ownerReferences"}), nullptr) << secret.serialize();
    auto info = ReadFile(kubelet_->VolumeDir(kNs, "backups") + "/backup/cart/backup.info");
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->rfind("Salted__", 0), 0u);
  }
  EXPECT_TRUE(WaitFor([&] { return Listed("cart").count(label) == 1; }, seconds(60))) << Set("cart").serialize();

  EXPECT_EQ(BackupPhase("weekly"), "Failed");
  EXPECT_EQ(kube::GetString(Backup("weekly"), {"status", "message"}),
            "postgresbackup weekly: spec.type: \"weekly\" must be full, diff or incr");
  EXPECT_EQ(BackupPhase("nobody"), "Pending");
  EXPECT_EQ(kube::GetString(Backup("nobody"), {"status", "message"}), "waiting for postgresreplicaset nosuchset (not found)");

  // An incremental every minute: the next run becomes a PostgresBackup of
  // the set, taken after the full.
  Json patch = Json::object();
  patch["spec"]["backup"]["schedule"]["incremental"] = Json::string("* * * * *");
  ASSERT_EQ(server_->Call("PATCH", kube::ReplicaSetResource().Path(kNs, "cart"), patch.serialize()).status, 200);
  std::string scheduled;
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& b : List(kube::BackupResource(), std::string(kube::kScheduledLabel) + "=true")) {
      if (kube::GetString(b, {"spec", "replicaSet"}) == "cart") scheduled = kube::NameOf(b);
    }
    return !scheduled.empty();
  }, seconds(90)));
  EXPECT_EQ(scheduled.rfind("cart-incr-", 0), 0u) << scheduled;
  ASSERT_TRUE(WaitFor([&] { return BackupPhase(scheduled) == "Completed"; }, seconds(120))) << Backup(scheduled).serialize();
  const Json incr = Backup(scheduled);
  EXPECT_EQ(kube::GetString(incr, {"status", "type"}), "incr") << incr.serialize();
  EXPECT_EQ(kube::GetString(incr, {"status", "label"}).rfind(label + "_", 0), 0u) << incr.serialize();
  EXPECT_FALSE(kube::GetString(incr, {"status", "scheduledTime"}).empty()) << incr.serialize();
  // Taken by the primary, its files copied from the streaming standby in
  // the other Pod, through that Pod's pgBackRest TLS server
  // (spec.backup.fromStandby, the default).
  EXPECT_EQ(kube::GetString(incr, {"status", "instance"}), Primary("cart")) << incr.serialize();
  const std::string standby = Primary("cart") == "cart-1" ? "cart-2" : "cart-1";
  EXPECT_EQ(kube::GetString(incr, {"status", "source"}), standby) << incr.serialize();
  const Json* owners = kube::GetField(incr, {"metadata", "ownerReferences"});
  ASSERT_TRUE(owners != nullptr && owners->is_array() && owners->size() == 1) << incr.serialize();
  EXPECT_EQ(kube::GetString(owners->as_array().at(0), {"name"}), "cart");
  EXPECT_TRUE(WaitFor([&] {
    return kube::GetString(Set("cart"), {"status", "backup", "lastScheduledBackup", "outcome"}) == "Succeeded";
  }, seconds(30))) << Set("cart").serialize();

  // A new set restored from cart's backups in the same claim, to the end of
  // the archive: it has every row, and backs up under its own stanza.
  {
    auto app = Connect(Primary("cart"), true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("INSERT INTO items SELECT g FROM generate_series(1001, 1500) g").ok());
    auto su = Connect(Primary("cart"), false);
    ASSERT_TRUE(su.ok()) << su.status().ToString();
    ASSERT_TRUE((*su)->Query("SELECT pg_switch_wal()").ok());
  }
  const std::string wal = kube::GetString(Set("cart"), {"status", "backup", "lastArchivedWal"});
  ASSERT_TRUE(WaitFor([&] {
    return kube::GetString(Set("cart"), {"status", "backup", "lastArchivedWal"}) > wal;
  }, seconds(60))) << Set("cart").serialize();
  {
    Json rs = ReplicaSetObject("copy", 1);
    rs["metadata"]["namespace"] = Json::string(kNs);
    rs["spec"]["backup"]["repository"]["volumeClaim"] = Json::string("backups");
    rs["spec"]["bootstrap"]["recovery"]["source"] = Json::string("cart");
    rs["spec"]["bootstrap"]["recovery"]["repository"]["volumeClaim"] = Json::string("backups");
    rs["spec"]["bootstrap"]["recovery"]["repository"]["encryption"] = Json::boolean(true);
    ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path(kNs), rs).is_null());
  }
  ASSERT_TRUE(WaitHealthy("copy", 1, seconds(180))) << Set("copy").serialize();
  EXPECT_EQ(Rows("copy-1", "items").size(), 1500u);
  EXPECT_TRUE(WaitFor([&] {
    return PathExists(kubelet_->VolumeDir(kNs, "backups") + "/archive/copy/archive.info");
  }, seconds(60)));
}

}  // namespace
}  // namespace pgrs::e2e
