#include "operator/kube/replicaset_controller.h"

#include <gtest/gtest.h>

namespace pgrs::kube {
namespace {

Json ReplicaSet(int instances) {
  Json rs = Json::object();
  rs["apiVersion"] = Json::string("pgrs.dev/v1alpha1");
  rs["kind"] = Json::string("PostgresReplicaSet");
  rs["metadata"]["name"] = Json::string("demo");
  rs["metadata"]["namespace"] = Json::string("db");
  rs["metadata"]["uid"] = Json::string("u-1");
  rs["metadata"]["resourceVersion"] = Json::string("42");
  rs["metadata"]["generation"] = Json::number(3);
  rs["metadata"]["managedFields"] = Json::array();
  rs["spec"]["instances"] = Json::number(instances);
  return rs;
}

TEST(EvaluateReplicaSetTest, AValidSpecIsAcceptedWhateverTheServerAddedToMetadataAndStatus) {
  Json rs = ReplicaSet(3);
  rs["status"]["conditions"][0]["type"] = Json::string("Accepted");
  rs["status"]["whatever"] = Json::string("ours to write");
  Acceptance verdict = EvaluateReplicaSet(rs);
  EXPECT_TRUE(verdict.accepted) << verdict.message;
  EXPECT_EQ(verdict.reason, "SpecValid");
}

TEST(EvaluateReplicaSetTest, AnInvalidSpecNamesTheObjectAndTheField) {
  Acceptance verdict = EvaluateReplicaSet(ReplicaSet(99));
  EXPECT_FALSE(verdict.accepted);
  EXPECT_EQ(verdict.reason, "InvalidSpec");
  EXPECT_NE(verdict.message.find("postgresreplicaset demo: spec.instances"), std::string::npos) << verdict.message;
}

TEST(EvaluateReplicaSetTest, ALocalModeRepositoryIsRefusedAndAVolumeClaimAccepted) {
  Json rs = ReplicaSet(2);
  rs["spec"]["backup"]["repository"]["path"] = Json::string("/var/lib/pgrs/backup");
  Acceptance verdict = EvaluateReplicaSet(rs);
  EXPECT_FALSE(verdict.accepted);
  EXPECT_EQ(verdict.reason, "Unsupported");
  EXPECT_EQ(verdict.message.rfind("postgresreplicaset demo: spec.backup.repository.path: is local mode's", 0), 0u)
      << verdict.message;

  rs["spec"]["backup"]["repository"] = Json::object();
  rs["spec"]["backup"]["repository"]["volumeClaim"] = Json::string("backups");
  verdict = EvaluateReplicaSet(rs);
  EXPECT_TRUE(verdict.accepted) << verdict.message;

  rs["spec"]["backup"]["repository"] = Json::object();
  rs["spec"]["backup"]["repository"]["s3"]["endpoint"] = Json::string("s3.example");
  rs["spec"]["backup"]["repository"]["s3"]["bucket"] = Json::string("pgrs");
  rs["spec"]["backup"]["repository"]["s3"]["region"] = Json::string("r1");
  rs["spec"]["backup"]["repository"]["s3"]["credentialsFile"] = Json::string("/c");
  verdict = EvaluateReplicaSet(rs);
  EXPECT_FALSE(verdict.accepted);
  EXPECT_NE(verdict.message.find("spec.backup.repository.s3.credentialsFile: is local mode's: in Kubernetes set "
                                 "credentialsSecret"),
            std::string::npos)
      << verdict.message;
}

TEST(SetConditionTest, TransitionTimeMovesOnlyWhenTheStatusChanges) {
  Json status = Json::object();
  EXPECT_TRUE(SetCondition(status, "Accepted", "False", "InvalidSpec", "bad", 1, "2026-01-01T00:00:00Z"));
  EXPECT_FALSE(SetCondition(status, "Accepted", "False", "InvalidSpec", "still bad", 2, "2026-01-02T00:00:00Z"));
  ASSERT_EQ(status.at("conditions").as_array().size(), 1u);
  const Json& c = status.at("conditions").at(0);
  EXPECT_EQ(GetString(c, {"lastTransitionTime"}), "2026-01-01T00:00:00Z");
  EXPECT_EQ(GetString(c, {"message"}), "still bad");
  EXPECT_EQ(GetInt(c, {"observedGeneration"}), 2);
  EXPECT_TRUE(SetCondition(status, "Accepted", "True", "SpecValid", "ok", 3, "2026-01-03T00:00:00Z"));
  EXPECT_EQ(GetString(status.at("conditions").at(0), {"lastTransitionTime"}), "2026-01-03T00:00:00Z");
  SetCondition(status, "Ready", "Unknown", "Pending", "", 3, "2026-01-03T00:00:00Z");
  EXPECT_EQ(status.at("conditions").as_array().size(), 2u);
}

}  // namespace
}  // namespace pgrs::kube
