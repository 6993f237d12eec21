// The PostgresReplicaSet CRD (crds/) against the API library: structural,
// accepts what `pgrs local apply` accepts, rejects what it rejects (as far
// as an OpenAPI schema can without CEL), and declares exactly the defaults
// of api::ApplyDefaults.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "e2e/install/openapi_schema.h"
#include "e2e/install/test_util.h"
#include "operator/api/types.h"

namespace pgrs::openapi {
namespace {

using install_test::ReadSource;
using install_test::SourceDir;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using web::json::value;

constexpr char kCrdPath[] = "crds/pgrs.dev_postgresreplicasets.yaml";

const Crd& TheCrd() {
  static const Crd* crd = [] {
    Result<Crd> loaded = LoadCrd(ReadSource(kCrdPath));
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    return new Crd(loaded.ok() ? *loaded : Crd{});
  }();
  return *crd;
}

value ToJson(const std::string& yaml) {
  Result<std::vector<value>> docs = YamlToJson(yaml);
  EXPECT_TRUE(docs.ok()) << docs.status().ToString();
  EXPECT_EQ(docs.ok() ? docs->size() : 0, 1u);
  return docs.ok() && !docs->empty() ? docs->front() : value::null();
}

// What a real API server does on create: default, then validate; unknown
// fields are rejected (kubectl's fieldValidation=Strict).
std::vector<std::string> ServerErrors(const std::string& yaml) {
  const Schema& schema = TheCrd().StorageVersion().schema;
  value object = ToJson(yaml);
  std::vector<std::string> errors = FindUnknownFields(schema, object);
  ApplySchemaDefaults(schema, object);
  for (std::string& e : ValidateObject(schema, object)) errors.push_back(std::move(e));
  return errors;
}

// The schema node at a dotted path (".spec.instances"), or nullptr.
const Schema* At(const Schema& root, const std::string& jsonPath) {
  const Schema* node = &root;
  size_t pos = 1;
  while (node != nullptr && pos < jsonPath.size() + 1) {
    const size_t dot = jsonPath.find('.', pos);
    const std::string name = jsonPath.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
    node = node->Property(name);
    if (dot == std::string::npos) break;
    pos = dot + 1;
  }
  return node;
}

std::string Minimal(const std::string& specYaml) {
  return "apiVersion: pgrs.dev/v1alpha1\nkind: PostgresReplicaSet\nmetadata:\n  name: demo\nspec:\n" + specYaml;
}

TEST(CrdTest, NamesTheApiTypesOfOperatorApi) {
  const Crd& crd = TheCrd();
  EXPECT_EQ(crd.group, api::kGroup);
  EXPECT_EQ(crd.kind, api::kKind);
  EXPECT_EQ(crd.plural, "postgresreplicasets");
  EXPECT_EQ(crd.singular, "postgresreplicaset");
  EXPECT_EQ(crd.listKind, "PostgresReplicaSetList");
  EXPECT_EQ(crd.scope, "Namespaced");
  EXPECT_EQ(crd.shortNames, std::vector<std::string>{"pgrs"});
  ASSERT_EQ(crd.versions.size(), 1u);
  EXPECT_EQ(crd.versions[0].name, api::kVersion);
  EXPECT_TRUE(crd.versions[0].served);
  EXPECT_TRUE(crd.versions[0].storage);
}

TEST(CrdTest, SchemaIsStructural) {
  EXPECT_THAT(CheckStructural(TheCrd().StorageVersion().rawSchema), IsEmpty());
}

TEST(CrdTest, StatusAndScaleSubresourcesPointAtFieldsOfTheRightType) {
  const CrdVersion& v = TheCrd().StorageVersion();
  ASSERT_TRUE(v.subresources.is_object());
  EXPECT_TRUE(v.subresources.has_field("status"));
  ASSERT_TRUE(v.subresources.has_field("scale"));
  const value& scale = v.subresources.at("scale");
  EXPECT_EQ(scale.at("specReplicasPath").as_string(), ".spec.instances");
  EXPECT_EQ(scale.at("statusReplicasPath").as_string(), ".status.readyInstances");
  EXPECT_EQ(scale.at("labelSelectorPath").as_string(), ".status.selector");
  for (const char* key : {"specReplicasPath", "statusReplicasPath", "labelSelectorPath"}) {
    const Schema* field = At(v.schema, scale.at(key).as_string());
    ASSERT_NE(field, nullptr) << key;
    EXPECT_EQ(field->type, std::string(key) == "labelSelectorPath" ? "string" : "integer") << key;
  }
}

TEST(CrdTest, PrinterColumnsNameFieldsOfTheSchemaWithTheirTypes) {
  const CrdVersion& v = TheCrd().StorageVersion();
  ASSERT_TRUE(v.printerColumns.is_array());
  std::vector<std::string> names;
  for (const value& column : v.printerColumns.as_array()) {
    const std::string name = column.at("name").as_string();
    const std::string path = column.at("jsonPath").as_string();
    names.push_back(name);
    if (path == ".metadata.creationTimestamp") {
      EXPECT_EQ(column.at("type").as_string(), "date");
      continue;
    }
    const Schema* field = At(v.schema, path);
    ASSERT_NE(field, nullptr) << name << " " << path;
    EXPECT_EQ(field->type, column.at("type").as_string()) << name;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"Primary", "Instances", "Ready", "Max Lag", "Phase", "Age"}));
}

TEST(CrdTest, AcceptsTheExamplesThatLocalApplyAccepts) {
  for (const std::string& name : ListDirectory(SourceDir() + "/manifests/examples")) {
    if (name.size() < 5 || name.substr(name.size() - 5) != ".yaml") continue;
    const std::string text = ReadSource("manifests/examples/" + name);
    EXPECT_THAT(ServerErrors(text), IsEmpty()) << name;
    api::ParseResult parsed = api::ParseManifest(text);
    EXPECT_THAT(parsed.errors, IsEmpty()) << name;
  }
}

// Each row: a spec both the CRD and `pgrs local apply` refuse, and the
// error the API server gives.
struct BadSpec {
  const char* spec;
  const char* serverError;
};

TEST(CrdTest, RejectsWhatValidateRejects) {
  const BadSpec rows[] = {
      {"  instances: 0\n", "spec.instances: Invalid value: 0: spec.instances in body should be greater than or equal to 1"},
      {"  instances: 17\n", "spec.instances: Invalid value: 17: spec.instances in body should be less than or equal to 16"},
      {"  instances: \"3\"\n", "spec.instances: Invalid value: \"string\": spec.instances in body must be of type integer: \"string\""},
      {"  postgres: {version: 10}\n", "spec.postgres.version: Invalid value: 10: spec.postgres.version in body should be greater than or equal to 11"},
      {"  postgres: {version: 18}\n", "spec.postgres.version: Invalid value: 18: spec.postgres.version in body should be less than or equal to 17"},
      {"  postgres: {pgHBA: [\"  \"]}\n", "spec.postgres.pgHBA[0]: Invalid value: \"  \": spec.postgres.pgHBA[0] in body should match"},
      {"  postgres: {pgHBA: \"host all all 0.0.0.0/0 trust\"}\n", "spec.postgres.pgHBA: Invalid value: \"string\": spec.postgres.pgHBA in body must be of type array"},
      {"  postgres: {parameters: {work_mem: {a: 1}}}\n", "spec.postgres.parameters.work_mem: Invalid value: \"object\""},
      {"  postgres: {parameters: {work_mem: \"4MB\\nfsync = off\"}}\n", "spec.postgres.parameters.work_mem: Invalid value: \"4MB\\nfsync = off\""},
      {"  replication: {mode: fast}\n", "spec.replication.mode: Unsupported value: \"fast\": supported values: \"async\", \"sync\""},
      {"  replication: {dataDurability: sometimes}\n", "spec.replication.dataDurability: Unsupported value: \"sometimes\""},
      {"  replication: {slots: \"yes\"}\n", "spec.replication.slots: Invalid value: \"string\": spec.replication.slots in body must be of type boolean"},
      {"  replication: {maxSlotWalKeepSize: 2Gi}\n", "spec.replication.maxSlotWalKeepSize: Invalid value: \"2Gi\""},
      {"  replication: {maxSlotWalKeepSize: 512}\n", "spec.replication.maxSlotWalKeepSize: Invalid value: 512"},
      {"  postgres: {dataChecksums: \"yes\"}\n", "spec.postgres.dataChecksums: Invalid value: \"string\""},
      {"  failover: {enabled: 1}\n", "spec.failover.enabled: Invalid value: \"integer\""},
      {"  failover: {delaySeconds: -1}\n", "spec.failover.delaySeconds: Invalid value: -1: spec.failover.delaySeconds in body should be greater than or equal to 0"},
      {"  failover: {maxLagBytes: -1}\n", "spec.failover.maxLagBytes: Invalid value: -1"},
      {"  failover: {detectionSeconds: 0}\n", "spec.failover.detectionSeconds: Invalid value: 0"},
      {"  failover: {detectionSeconds: 301}\n", "spec.failover.detectionSeconds: Invalid value: 301"},
      {"  failover: {leaseDurationSeconds: 2, renewDeadlineSeconds: 1}\n", "spec.failover.leaseDurationSeconds: Invalid value: 2"},
      {"  failover: {retryPeriodSeconds: 0}\n", "spec.failover.retryPeriodSeconds: Invalid value: 0"},
      {"  primary: other-1\n", ""},  // the name prefix is a CEL rule: see below
      {"  primary: demo-x\n", "spec.primary: Invalid value: \"demo-x\": spec.primary in body should match"},
      {"  storage: {size: 1x}\n", "spec.storage.size: Invalid value: \"1x\": spec.storage.size in body should match"},
      {"  storage: {size: \"0\"}\n", "spec.storage.size: Invalid value: \"0\""},
      {"  storage: {size: -5Gi}\n", "spec.storage.size: Invalid value: \"-5Gi\""},
      {"  storage: {size: true}\n", "spec.storage.size: Invalid value: \"boolean\": spec.storage.size in body must be of type integer,string"},
      {"  local: {basePort: 80}\n", "spec.local.basePort: Invalid value: 80"},
      {"  local: {basePort: 70000}\n", "spec.local.basePort: Invalid value: 70000"},
      {"  backup: {repository: {path: backups}}\n", "spec.backup.repository.path: Invalid value: \"backups\""},
      {"  backup: {repository: {}}\n", ""},  // exactly one of path and s3: a CEL rule
      {"  backup: {repository: {s3: {}}}\n", "spec.backup.repository.s3.endpoint: Required value"},
      {"  backup: {repository: {s3: {endpoint: \"https://s3\", bucket: b1b, region: r, credentialsFile: /c}}}\n",
       "spec.backup.repository.s3.endpoint: Invalid value: \"https://s3\""},
      {"  backup: {repository: {s3: {endpoint: s3, bucket: B, region: r, credentialsFile: /c}}}\n",
       "spec.backup.repository.s3.bucket: Invalid value: \"B\""},
      {"  backup: {repository: {s3: {endpoint: s3, bucket: bbb, region: r, uriStyle: v, credentialsFile: /c}}}\n",
       "spec.backup.repository.s3.uriStyle: Unsupported value: \"v\""},
      {"  backup: {repository: {s3: {endpoint: s3, bucket: bbb, region: r, credentialsFile: c}}}\n",
       "spec.backup.repository.s3.credentialsFile: Invalid value: \"c\""},
      {"  backup: {repository: {s3: {endpoint: s3, bucket: bbb, region: r, credentialsSecret: S}}}\n",
       "spec.backup.repository.s3.credentialsSecret: Invalid value: \"S\""},
      {"  backup: {repository: {s3: {endpoint: s3, bucket: bbb, region: r, credentialsFile: /c, verifyTLS: no}}}\n",
       "spec.backup.repository.s3.verifyTLS: Invalid value: \"string\""},
      {"  backup: {repository: {s3: {endpoint: s3, bucket: bbb, region: r, credentialsFile: /c, bogus: 1}}}\n",
       "unknown field \"spec.backup.repository.s3.bogus\""},
      {"  bogus: 1\n", "unknown field \"spec.bogus\""},
      {"  replication: {mode: async, extra: true}\n", "unknown field \"spec.replication.extra\""},
  };
  for (const BadSpec& row : rows) {
    const std::string text = Minimal(row.spec);
    EXPECT_FALSE(api::ParseManifest(text).errors.empty()) << "pgrs local apply accepts " << row.spec;
    if (std::string(row.serverError).empty()) continue;
    const std::vector<std::string> errors = ServerErrors(text);
    ASSERT_FALSE(errors.empty()) << "the CRD accepts " << row.spec;
    EXPECT_THAT(errors, ::testing::Contains(HasSubstr(row.serverError))) << row.spec;
  }
}

TEST(CrdTest, AcceptsWhatValidateAccepts) {
  const char* rows[] = {
      "  instances: 16\n",
      "  instances: null\n",  // null means unset: defaulted
      "  postgres: {version: 11, parameters: {max_connections: 200, work_mem: 4MB}}\n",
      "  replication: {mode: async, syncReplicas: 0}\n",  // syncReplicas is checked in sync mode only
      "  replication: {mode: sync, syncReplicas: 2}\n  instances: 3\n",
      "  failover: {maxLagBytes: 0, delaySeconds: 0, leaseDurationSeconds: 300, renewDeadlineSeconds: 299, "
      "retryPeriodSeconds: 298}\n",
      "  primary: demo-16\n  instances: 16\n",
      "  primary: \"\"\n",
      "  storage: {size: 1024}\n",
      "  storage: {size: 1.5Gi}\n",
      "  storage: {size: \"1e9\"}\n",
      "  storage: {size: .5Ti}\n",
      "  local: {basePort: 65535}\n",
      "  replication: {maxSlotWalKeepSize: 64MB}\n",
      "  replication: {maxSlotWalKeepSize: -1}\n",
      "  replication: {maxSlotWalKeepSize: \"-1\"}\n",
      "  postgres: {dataChecksums: false}\n",
      "  backup: {repository: {path: /var/lib/pgrs-backups}}\n",
      "  backup: {repository: {s3: {endpoint: s3.eu-west-1.amazonaws.com, bucket: pgrs-backups, region: eu-west-1, "
      "credentialsFile: /etc/pgrs/s3-credentials}}}\n",
      "  backup: {repository: {s3: {endpoint: \"localhost:9000\", bucket: pgrs, region: us-east-1, uriStyle: path, "
      "path: /demo, credentialsSecret: s3-keys, caSecret: s3-ca, verifyTLS: false}}}\n",
  };
  for (const char* spec : rows) {
    const std::string text = Minimal(spec);
    EXPECT_THAT(api::ParseManifest(text).errors, IsEmpty()) << spec;
    EXPECT_THAT(ServerErrors(text), IsEmpty()) << spec;
  }
}

TEST(CrdTest, StatusWithoutConditionTypeIsRejected) {
  const std::string text = Minimal("  instances: 1\n") +
                           "status:\n  conditions:\n  - status: \"True\"\n    reason: Ok\n";
  EXPECT_THAT(ServerErrors(text), ::testing::Contains("status.conditions[0].type: Required value"));
}

// The defaults the API server fills in from the CRD are exactly those of
// api::ApplyDefaults: nothing more, nothing less, same values.
TEST(CrdTest, SchemaDefaultsEqualApplyDefaults) {
  const Schema& schema = TheCrd().StorageVersion().schema;
  for (const char* spec : {"spec: {}\n", "", "spec:\n  replication: {mode: sync}\n  failover: {}\n",
                           "spec:\n  backup: {repository: {s3: {endpoint: s3, bucket: bbb, region: r, "
                           "credentialsFile: /c}}}\n"}) {
    const std::string text = std::string("apiVersion: pgrs.dev/v1alpha1\nkind: PostgresReplicaSet\n"
                                         "metadata: {name: demo}\n") + spec;
    value byServer = ToJson(text);
    ApplySchemaDefaults(schema, byServer);

    api::DecodeResult decoded = api::DecodeReplicaSet(text);
    ASSERT_TRUE(decoded.object) << spec;
    api::ApplyDefaults(decoded.object->spec);
    const value byOperator = value::parse(api::EncodeJson(*decoded.object));

    EXPECT_EQ(CanonicalJson(byServer.at("spec")), CanonicalJson(byOperator.at("spec"))) << spec;
  }
}

// Cross-field rules are CEL, which this validator does not evaluate (a real
// API server does): at least each rule of Validate has one.
TEST(CrdTest, CrossFieldRulesOfValidateHaveCelRules) {
  std::string rules;
  std::function<void(const Schema&)> collect = [&](const Schema& s) {
    for (const ValidationRule& r : s.validations) rules += r.rule + "\n";
    for (const auto& [name, child] : s.properties) collect(child);
  };
  collect(TheCrd().StorageVersion().schema);
  for (const char* needle : {"replication.syncReplicas < ", "self.syncReplicas >= 1",
                             "self.renewDeadlineSeconds < self.leaseDurationSeconds",
                             "self.retryPeriodSeconds < self.renewDeadlineSeconds", "self.local.basePort +",
                             "size(self.metadata.name) <= 50", "self.spec.primary.startsWith",
                             "[has(self.path), has(self.volumeClaim), has(self.s3)].exists_one(x, x)",
                             "has(self.credentialsFile) != has(self.credentialsSecret)",
                             "!has(self.caFile) || !has(self.caSecret)"}) {
    EXPECT_THAT(rules, HasSubstr(needle));
  }
}

}  // namespace
}  // namespace pgrs::openapi
