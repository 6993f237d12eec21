#include "operator/kube/objects.h"

#include <gtest/gtest.h>

namespace pgrs::kube {
namespace {

TEST(BuildPodTest, MountsTheRepositoryClaimOnlyWithOne) {
  SetRef owner{"db", "shop", "uid-1"};
  api::ReplicaSetSpec spec;
  Json plain = BuildPod(owner, spec, "shop-1", "primary", InstancePodOptions{});
  EXPECT_EQ(PodRepositoryClaim(plain), "");
  EXPECT_EQ(plain.at("spec").at("volumes").size(), 2u);

  spec.backup.emplace().repository.volumeClaim = "backups";
  Json pod = BuildPod(owner, spec, "shop-1", "primary", InstancePodOptions{});
  EXPECT_EQ(PodRepositoryClaim(pod), "backups");
  bool mounted = false;
  for (const auto& m : pod.at("spec").at("containers").at(0).at("volumeMounts").as_array()) {
    if (GetString(m, {"name"}) == "repository") {
      mounted = true;
      EXPECT_EQ(GetString(m, {"mountPath"}), api::kRepositoryMountPath);
    }
  }
  EXPECT_TRUE(mounted) << pod.serialize();

  spec.backup->repository.volumeClaim.clear();  // an S3 repository: nothing to mount
  EXPECT_EQ(PodRepositoryClaim(BuildPod(owner, spec, "shop-1", "primary", InstancePodOptions{})), "");
}

TEST(ChooseOutdatedPodTest, OneAtATimeStandbysFirstOnlyWhileAllAreReady) {
  auto pod = [](const char* name, const char* claim, bool ready = true, bool exists = true, bool terminating = false) {
    return PodToRoll{name, exists, terminating, ready, claim};
  };
  struct Row {
    const char* name;
    std::vector<PodToRoll> pods;
    std::string wanted;
    std::string expected;
  };
  const std::vector<Row> rows = {
      {"AllCurrent", {pod("s-1", "b"), pod("s-2", "b")}, "b", ""},
      {"StandbyFirst", {pod("s-1", ""), pod("s-2", ""), pod("s-3", "")}, "b", "s-2"},
      {"PrimaryLast", {pod("s-1", ""), pod("s-2", "b"), pod("s-3", "b")}, "b", "s-1"},
      {"NotWhileOneIsNotReady", {pod("s-1", ""), pod("s-2", "b", false), pod("s-3", "")}, "b", ""},
      {"NotWhileOneIsMissing", {pod("s-1", ""), pod("s-2", "b", true, false)}, "b", ""},
      {"NotWhileOneTerminates", {pod("s-1", ""), pod("s-2", "", true, true, true)}, "b", ""},
      {"BackupRemoved", {pod("s-1", "b"), pod("s-2", "b")}, "", "s-2"},
      {"AnotherClaim", {pod("s-1", "old"), pod("s-2", "b")}, "b", "s-1"},
  };
  for (const Row& row : rows) EXPECT_EQ(ChooseOutdatedPod(row.pods, row.wanted, "s-1"), row.expected) << row.name;
}

}  // namespace
}  // namespace pgrs::kube
