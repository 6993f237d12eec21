// Bad manifests are refused with the field path, and nothing is stored.
#include <gtest/gtest.h>

#include "e2e/local/harness.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

struct BadManifest {
  const char* name;
  std::string text;
  std::string expected;  // must appear on stderr
};

class ManifestErrors : public ::testing::TestWithParam<BadManifest> {};

TEST_P(ManifestErrors, RefusedWithFieldPathAndNothingStored) {
  LocalCluster c;
  // An existing, valid object must stay exactly as it was.
  ASSERT_EQ(c.ApplyText(Manifest("demo", 3, 25432)).exitCode, 0);
  auto before = ReadFile(c.stateDir() + "/sets/demo/object.json");
  ASSERT_TRUE(before.ok());

  auto result = c.ApplyText(GetParam().text);
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.output.find(GetParam().expected), std::string::npos) << result.output;
  EXPECT_EQ(ReadFile(c.stateDir() + "/sets/demo/object.json").value(), *before);
  EXPECT_EQ(ListDirectory(c.stateDir() + "/sets"), std::vector<std::string>{"demo"});
}

// A second set on ports the first holds would crash-loop on "address already
// in use", its connection strings pointing at the other set's servers.
TEST(ManifestConflicts, SetWhosePortsOverlapAStoredSetIsRefusedNamingBothAndNothingStored) {
  LocalCluster c;
  ASSERT_EQ(c.ApplyText(Manifest("first", 3, 25432)).exitCode, 0);
  auto before = ReadFile(c.stateDir() + "/sets/first/object.json");
  ASSERT_TRUE(before.ok());

  auto result = c.ApplyText(Manifest("second", 2, 25434));
  EXPECT_EQ(result.exitCode, 1);
  EXPECT_NE(result.output.find("error: postgresreplicaset second: spec.local.basePort: ports 25434-25435 overlap the "
                               "ports 25432-25434 of postgresreplicaset first (its spec.local.basePort is 25432, "
                               "spec.instances 3)"),
            std::string::npos)
      << result.output;
  EXPECT_EQ(ListDirectory(c.stateDir() + "/sets"), std::vector<std::string>{"first"});
  EXPECT_EQ(ReadFile(c.stateDir() + "/sets/first/object.json").value(), *before);
  EXPECT_NE(c.Local("get", {"second"}).exitCode, 0);

  // Scaling the first set up into a second set's ports is refused too.
  ASSERT_EQ(c.ApplyText(Manifest("second", 2, 25435)).exitCode, 0);
  auto scaled = c.ApplyText(Manifest("first", 4, 25432));
  EXPECT_EQ(scaled.exitCode, 1);
  EXPECT_NE(scaled.output.find("postgresreplicaset first: spec.local.basePort: ports 25432-25435 overlap the ports "
                               "25435-25436 of postgresreplicaset second"),
            std::string::npos)
      << scaled.output;
  EXPECT_EQ(ReadFile(c.stateDir() + "/sets/first/object.json").value(), *before);
}

INSTANTIATE_TEST_SUITE_P(
    Local, ManifestErrors,
    ::testing::Values(
        BadManifest{"UnknownField", Manifest("demo", 3, 25432, "  replicaton:\n    mode: sync\n"),
                    "postgresreplicaset demo: spec.replicaton: unknown field"},
        BadManifest{"ZeroInstances", Manifest("demo", 0, 25432),
                    "postgresreplicaset demo: spec.instances: must be between 1 and 16"},
        BadManifest{"Version10", Manifest("demo", 3, 25432, "  postgres:\n    version: 10\n"),
                    "spec.postgres.version: must be between 11 and 17"},
        BadManifest{"WrongKind", "apiVersion: pgrs.dev/v1alpha1\nkind: Deployment\nmetadata:\n  name: demo\nspec: {}\n",
                    "kind:"},
        BadManifest{"NotYaml", "apiVersion: [unclosed\n  : : :\n", "is not valid YAML"},
        BadManifest{"OwnedParameter", Manifest("demo", 3, 25432, "  postgres:\n    parameters:\n      port: '5433'\n"),
                    "spec.postgres.parameters.port:"},
        BadManifest{"NewSetWithError", Manifest("other", 17, 25432), "postgresreplicaset other: spec.instances"},
        BadManifest{"BothRepositories",
                    Manifest("demo", 3, 25432, "  backup: {repository: {path: /b, s3: {endpoint: s3, bucket: pgrs, "
                                               "region: r1, credentialsFile: /c}}}\n"),
                    "postgresreplicaset demo: spec.backup.repository: exactly one of path (a POSIX repository, local "
                    "mode), volumeClaim (a ReadWriteMany PersistentVolumeClaim, Kubernetes) and s3 must be set"},
        BadManifest{"VolumeClaimInLocalMode",
                    Manifest("demo", 3, 25432, "  backup: {repository: {volumeClaim: backups}}\n"),
                    "error: postgresreplicaset demo: spec.backup.repository.volumeClaim: is Kubernetes' only: in local "
                    "mode set path (a directory)"},
        BadManifest{"MissingS3CredentialsFile",
                    Manifest("demo", 3, 25432, "  backup: {repository: {s3: {endpoint: s3, bucket: pgrs, "
                                               "region: r1, credentialsFile: /nonexistent/pgrs-s3}}}\n"),
                    "error: postgresreplicaset demo: spec.backup.repository.s3.credentialsFile /nonexistent/pgrs-s3: "}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pgrs::e2e
