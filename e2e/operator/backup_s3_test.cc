// Backups to S3 in Kubernetes mode: the test API server, the process
// kubelet, two operator replicas, real PostgreSQL 15 and pgBackRest, and
// s3rver behind TLS with a test CA (e2e/local/s3_server.h). The access keys
// and the CA reach the Pods from Secrets the operator reads.
#include <gtest/gtest.h>

#include "e2e/local/s3_server.h"
#include "e2e/operator/kube_env.h"
#include "operator/kube/backup_controller.h"
#include "operator/kube/objects.h"

namespace pgrs::e2e {
namespace {

using kube::Json;
using std::chrono::seconds;

class OperatorBackupS3E2eTest : public ::testing::Test, public KubeEnvironment {
 protected:
  void SetUp() override {
    Status s3 = s3_.Start(PGRS_S3RVER, dir_.path() + "/s3");
    ASSERT_TRUE(s3.ok()) << s3.ToString();
    Status started = Start();
    ASSERT_TRUE(started.ok()) << started.ToString();
  }
  // The Pods first: their last archive-push needs the server.
  void TearDown() override {
    Stop(HasFailure());
    s3_.Stop();
  }

  Json S3Repository(const std::string& path) {
    Json s3 = Json::object();
    s3["endpoint"] = Json::string(s3_.endpoint());
    s3["bucket"] = Json::string("pgrs");
    s3["region"] = Json::string("us-east-1");
    s3["uriStyle"] = Json::string("path");
    s3["path"] = Json::string(path);
    s3["credentialsSecret"] = Json::string("s3-keys");
    s3["caSecret"] = Json::string("s3-ca");
    return s3;
  }

  TestS3Server s3_;
};

// A set archives and backs up into the bucket with the keys and CA of its
// Secrets; a PostgresBackup completes; a new set restored from the bucket
// has every row.
TEST_F(OperatorBackupS3E2eTest, ArchivesBacksUpAndRestoresThroughSecrets) {
  ASSERT_TRUE(MakeSecret("s3-keys", {{"AWS_ACCESS_KEY_ID", TestS3Server::kAccessKey},
                                     {"AWS_SECRET_ACCESS_KEY", TestS3Server::kSecretKey}}));
  auto ca = ReadFile(s3_.CaFile());
  ASSERT_TRUE(ca.ok());
  ASSERT_TRUE(MakeSecret("s3-ca", {{"ca.crt", *ca}}));
  {
    Json rs = ReplicaSetObject("bucket", 1);
    rs["metadata"]["namespace"] = Json::string(kNs);
    rs["spec"]["backup"]["repository"]["s3"] = S3Repository("/k8s");
    ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path(kNs), rs).is_null());
  }
  ASSERT_TRUE(WaitHealthy("bucket", 1, seconds(180))) << Set("bucket").serialize();
  {
    auto app = Connect("bucket-1", true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("CREATE TABLE kept AS SELECT g AS id FROM generate_series(1, 300) g").ok());
  }
  ASSERT_TRUE(MakeBackup("bucket-full", "bucket"));  // spec.type defaulted (full)
  ASSERT_TRUE(WaitFor([&] { return BackupPhase("bucket-full") == "Completed"; }, seconds(120)))
      << Backup("bucket-full").serialize() << s3_.Tail();
  // Rows 301-400 in a segment switched now, which reaches the bucket.
  std::string wal;
  {
    auto app = Connect("bucket-1", true);
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    ASSERT_TRUE((*app)->Exec("INSERT INTO kept SELECT g FROM generate_series(301, 400) g").ok());
    auto su = Connect("bucket-1", false);
    ASSERT_TRUE(su.ok()) << su.status().ToString();
    auto switched = (*su)->Query("SELECT pg_walfile_name(pg_switch_wal())");
    ASSERT_TRUE(switched.ok() && !switched->empty() && (*switched)[0][0].has_value());
    wal = *(*switched)[0][0];
  }
  ASSERT_TRUE(WaitFor([&] {
    auto su = Connect("bucket-1", false);
    if (!su.ok()) return false;
    auto rows = (*su)->Query("SELECT coalesce(last_archived_wal >= $1, false) FROM pg_stat_archiver", {wal});
    return rows.ok() && !rows->empty() && (*rows)[0][0] == std::optional<std::string>("t");
  }, seconds(60))) << Set("bucket").serialize() << s3_.Tail();

  {
    Json rs = ReplicaSetObject("fromsss", 1);
    rs["metadata"]["namespace"] = Json::string(kNs);
    rs["spec"]["bootstrap"]["recovery"]["source"] = Json::string("bucket");
    rs["spec"]["bootstrap"]["recovery"]["repository"]["s3"] = S3Repository("/k8s");
    ASSERT_FALSE(server_->CallJson("POST", kube::ReplicaSetResource().Path(kNs), rs).is_null());
  }
  ASSERT_TRUE(WaitHealthy("fromsss", 1, seconds(180))) << Set("fromsss").serialize();
  EXPECT_EQ(Rows("fromsss-1", "kept").size(), 400u);
}

}  // namespace
}  // namespace pgrs::e2e
