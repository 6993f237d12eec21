#include "operator/api/types.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace pgrs::api {
namespace {

const char kHeader[] =
    "apiVersion: pgrs.dev/v1alpha1\n"
    "kind: PostgresReplicaSet\n"
    "metadata:\n"
    "  name: demo\n";

// A manifest for set "demo" with `spec` (YAML text indented by two spaces
// under "spec:").
std::string Manifest(const std::string& spec) { return std::string(kHeader) + "spec:\n" + spec; }

std::vector<std::string> Paths(const std::vector<FieldError>& errors) {
  std::vector<std::string> paths;
  for (const FieldError& e : errors) paths.push_back(e.path);
  return paths;
}

std::string Describe(const std::vector<FieldError>& errors) {
  std::string text;
  for (const FieldError& e : errors) text += "\n  " + e.ToString();
  return text;
}

// A valid, defaulted object as ParseManifest would return it.
PostgresReplicaSet DefaultedDemo(int instances = 3) {
  PostgresReplicaSet object;
  object.metadata.name = "demo";
  object.spec.instances = instances;
  ApplyDefaults(object.spec);
  return object;
}

// Every field set, with values that are easy to get wrong: large int64s,
// strings that read as numbers or booleans, multi-line text, non-ASCII.
PostgresReplicaSet FullyPopulated() {
  PostgresReplicaSet o;
  o.metadata.name = "demo";
  o.metadata.namespace_ = "databases";
  o.metadata.uid = "5f0c7c34-6f6e-4c1e-9f4d-3b2d2b8e1a11";
  o.metadata.resourceVersion = "123456";
  o.metadata.generation = std::numeric_limits<int64_t>::max();
  o.metadata.creationTimestamp = "2024-05-01T10:00:00Z";
  o.metadata.deletionTimestamp = "2024-05-02T10:00:00Z";
  o.metadata.labels = {{"app", "shop"}, {"tier", "true"}, {"version", "1.0"}};
  o.metadata.annotations = {{"note", "line one\nline two: with colon"}, {"empty", ""}, {"null", "null"}};
  o.spec.instances = 3;
  o.spec.postgres.version = 16;
  o.spec.postgres.parameters = {{"shared_buffers", "256MB"},
                                {"max_connections", "200"},
                                {"jit", "off"},
                                {"search_path", "\"$user\", public"},
                                {"auto_explain.log_min_duration", "1.5"},
                                {"log_line_prefix", "%m [%p] "}};
  o.spec.postgres.pgHBA = {"host all all 10.0.0.0/8 scram-sha-256", "local all postgres peer"};
  o.spec.replication.mode = "sync";
  o.spec.replication.syncReplicas = 2;
  o.spec.replication.slots = false;
  o.spec.replication.dataDurability = "preferred";
  o.spec.replication.maxSlotWalKeepSize = "2GB";
  o.spec.postgres.dataChecksums = false;
  o.spec.failover.enabled = false;
  o.spec.failover.delaySeconds = 30;
  o.spec.failover.maxLagBytes = 9007199254740993;  // not representable as a double
  o.spec.failover.detectionSeconds = 7;
  o.spec.failover.leaseDurationSeconds = 9;
  o.spec.failover.renewDeadlineSeconds = 6;
  o.spec.failover.retryPeriodSeconds = 2;
  o.spec.primary = "demo-2";
  o.spec.storage.size = "1024";
  o.spec.storage.storageClassName = "fast-ssd";
  o.spec.local.basePort = 20000;
  o.spec.tls.enabled = false;
  o.spec.tls.certificateValidity = "720h";
  o.spec.backup.emplace().repository.path = "/var/lib/pgrs-backups";
  o.spec.backup->fromStandby = false;
  o.spec.backup->bootstrapStandbys = true;
  o.spec.backup->retention.full = 2;
  o.spec.backup->schedule = {"0 2 * * 0", "0 2 * * 1-6", "*/15 * * * *"};
  o.spec.backup->encryption = true;

  ReplicaSetStatus& s = o.status;
  s.phase = "Healthy";
  s.currentPrimary = "demo-2";
  s.targetPrimary = "demo-1";
  s.promotionReason = "LeaseExpired";
  s.promotionStarted = "2026-11-28T04:05:09.001Z";
  s.primaryLostSince = "2026-11-28T04:05:06.123Z";
  s.timeline = 3;
  s.readyInstances = 2;
  s.observedGeneration = std::numeric_limits<int64_t>::max() - 1;
  s.connection.readWrite = "host=127.0.0.1 port=20001 dbname=postgres";
  s.connection.readOnly = "host=127.0.0.1,127.0.0.1 port=20000,20002 target_session_attrs=prefer-standby";
  InstanceStatus primary;
  primary.name = "demo-2";
  primary.role = "primary";
  primary.state = "Running";
  primary.host = "127.0.0.1";
  primary.port = 20001;
  primary.lsn = "0/5000060";
  primary.timeline = 3;
  InstanceStatus standby;
  standby.name = "demo-1";
  standby.role = "standby";
  standby.state = "Streaming";
  standby.host = "127.0.0.1";
  standby.port = 20000;
  standby.lsn = "0/5000000";
  standby.lagBytes = std::numeric_limits<int64_t>::max();
  standby.lagSeconds = 0.1;
  standby.syncState = "sync";
  standby.timeline = 3;
  InstanceStatus down;
  down.name = "demo-3";
  down.state = "Down";
  down.lagBytes = 0;
  down.lagSeconds = 1234.5678901234567;
  down.message = "could not connect: «connection refused»";
  down.fenced = true;
  s.instances = {primary, standby, down};
  s.conditions = {
      Condition{"Ready", "True", "AllInstancesReady", "2 of 3 instances ready", "2024-05-01T10:05:00Z", 7},
      Condition{"Degraded", "Unknown", "", "", "", 0},
  };
  s.failovers = {
      FailoverRecord{"2026-11-27T22:00:00.000Z", "demo-1", "demo-2", "Switchover", 0, 2},
      FailoverRecord{"2026-11-28T01:02:03.456Z", "demo-2", "demo-3", "PostmasterDown", 12.345678901234567, 3},
      FailoverRecord{"2026-11-28T02:00:00.999Z", "demo-3", "demo-2", "Unresponsive", 1e-9, 4},
      FailoverRecord{},  // every field at its zero value
  };
  BackupStatus& b = s.backup.emplace();
  b.backups = {
      BackupRecord{"20261203-100000F", "full", "2026-12-03T10:00:00Z", "2026-12-03T10:00:04Z", "0/2000028",
                   "0/2000100", 22992541, 3043463},
      BackupRecord{"20261203-100000F_20261203-100030I", "incr", "", "", "", "", 0, 0},
  };
  b.firstRecoverableTime = "2026-12-03T10:00:04Z";
  b.lastRecoverableTime = "2026-12-03T10:01:00Z";
  b.lastArchivedWal = "000000010000000000000004";
  b.lastArchivedTime = "2026-12-03T10:01:00Z";
  b.lastFailedWal = "000000010000000000000003";
  b.lastFailedTime = "2026-12-03T09:59:00Z";
  b.archiveFailedCount = std::numeric_limits<int64_t>::max();
  b.archivingFailing = true;
  b.repositoryError = "pgbackrest info: «denied»";
  b.repositoryCheckedTime = "2026-12-03T10:01:10Z";
  b.lastScheduled = {"", "2026-12-03T02:00:00Z", "2026-12-03T10:00:00Z"};
  b.lastScheduledBackup = ScheduledBackupRun{"incr", "2026-12-03T10:00:00Z", "2026-12-03T10:00:01Z",
                                             "2026-12-03T10:00:03Z", "Failed", "", "pgbackrest backup failed"};
  return o;
}

// ---------------------------------------------------------------------------
// Names

TEST(InstanceNames, NameIsSetDashIndex) {
  EXPECT_EQ(InstanceName("demo", 2), "demo-2");
  EXPECT_EQ(InstanceName("a-b", 16), "a-b-16");
}

TEST(InstanceNames, IndexOnlyForThisSetsSpelling) {
  struct Row {
    std::string set, instance;
    int index;
  };
  const Row rows[] = {
      {"demo", "demo-1", 1},     {"demo", "demo-2", 2},     {"demo", "demo-16", 16},
      {"demo-2", "demo-2-1", 1}, {"demo", "demo-x", 0},     {"demo", "demo-0", 0},
      {"demo", "other-1", 0},    {"demo", "demo-2-1", 0},   {"demo", "demo-", 0},
      {"demo", "demo", 0},       {"demo", "demo-01", 0},    {"demo", "demo-+1", 0},
      {"demo", "demo--1", 0},    {"demo", "demo1", 0},      {"demo", "xdemo-1", 0},
      {"demo", "demo-99999999999999999999", 0},             {"demo", "demo-1 ", 0},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(InstanceIndex(row.set, row.instance), row.index) << row.set << " " << row.instance;
  }
}

TEST(InstanceNames, IndexInvertsName) {
  for (int i = 1; i <= kMaxInstances; ++i) EXPECT_EQ(InstanceIndex("demo", InstanceName("demo", i)), i);
}

TEST(CheckName, AcceptsDns1123LabelsUpTo50Characters) {
  for (const std::string& name : std::vector<std::string>{"demo", "a", "a0", "my-db-1", std::string(50, 'a')}) {
    EXPECT_EQ(CheckName(name), "") << name;
  }
  struct Row {
    std::string name, problem;
  };
  const Row rows[] = {
      {"", "is required"},
      {std::string(51, 'a'), "must be at most 50 characters"},
      {"Demo", "must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"},
      {"-demo", "must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"},
      {"demo-", "must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"},
      {"de_mo", "must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"},
      {"de.mo", "must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"},
      {"0", "must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"},
      {"1db", "must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"},
  };
  for (const Row& row : rows) EXPECT_EQ(CheckName(row.name), row.problem) << row.name;
}

TEST(FindCondition, FindsByTypeOrReturnsNull) {
  ReplicaSetStatus status;
  status.conditions = {Condition{"Ready", "True", "", "", "", 0}, Condition{"Degraded", "False", "", "", "", 0}};
  ASSERT_NE(FindCondition(status, "Degraded"), nullptr);
  EXPECT_EQ(FindCondition(status, "Degraded")->status, "False");
  EXPECT_EQ(FindCondition(status, "Ready"), &status.conditions[0]);
  EXPECT_EQ(FindCondition(status, "Missing"), nullptr);
}

// ---------------------------------------------------------------------------
// Defaults

TEST(ApplyDefaults, FillsEveryUnsetField) {
  ReplicaSetSpec spec;
  ApplyDefaults(spec);
  EXPECT_EQ(spec.instances, 1);
  EXPECT_EQ(spec.postgres.version, kDefaultPostgresVersion);
  EXPECT_EQ(spec.replication.mode, "async");
  EXPECT_EQ(spec.replication.syncReplicas, 1);
  EXPECT_EQ(spec.replication.slots, true);
  EXPECT_EQ(spec.replication.dataDurability, "required");
  EXPECT_EQ(spec.replication.maxSlotWalKeepSize, "512MB");
  EXPECT_EQ(spec.postgres.dataChecksums, true);
  EXPECT_EQ(spec.failover.enabled, true);
  EXPECT_EQ(spec.failover.delaySeconds, 0);
  EXPECT_FALSE(spec.failover.maxLagBytes.has_value());
  EXPECT_EQ(spec.failover.detectionSeconds, 5);
  EXPECT_EQ(spec.failover.leaseDurationSeconds, 5);
  EXPECT_EQ(spec.failover.renewDeadlineSeconds, 3);
  EXPECT_EQ(spec.failover.retryPeriodSeconds, 1);
  EXPECT_EQ(spec.storage.size, "1Gi");
  EXPECT_EQ(spec.storage.storageClassName, "");
  EXPECT_EQ(spec.primary, "");
  EXPECT_EQ(spec.local.basePort, kDefaultBasePort);
  EXPECT_EQ(spec.tls.enabled, true);
  EXPECT_EQ(spec.tls.certificateValidity, "2160h");
  EXPECT_EQ(CertificateValidity(spec), std::chrono::hours(2160));
  EXPECT_FALSE(spec.backup.has_value());  // no backups unless asked for
  spec.backup.emplace().repository.path = "/b";
  ApplyDefaults(spec);
  EXPECT_EQ(spec.backup->fromStandby, true);
  EXPECT_EQ(spec.backup->encryption, false);
  EXPECT_FALSE(spec.backup->retention.full.has_value());  // keep every backup
  spec.bootstrap.emplace().recovery.emplace().repository.path = "/b";
  ApplyDefaults(spec);
  EXPECT_EQ(spec.bootstrap->recovery->repository.encryption, false);
}

TEST(ApplyDefaults, KeepsWhatTheUserSetIncludingFalseAndZero) {
  ReplicaSetSpec spec = FullyPopulated().spec;
  spec.failover.delaySeconds = 0;
  const ReplicaSetSpec before = spec;
  ApplyDefaults(spec);
  EXPECT_EQ(spec, before);
  EXPECT_EQ(spec.replication.slots, false);
  EXPECT_EQ(spec.failover.enabled, false);
}

TEST(ApplyDefaults, IsIdempotent) {
  ReplicaSetSpec once;
  ApplyDefaults(once);
  ReplicaSetSpec twice = once;
  ApplyDefaults(twice);
  EXPECT_EQ(once, twice);
}

// ---------------------------------------------------------------------------
// Decoding

TEST(Decode, MinimalManifestLeavesUnsetFieldsUnset) {
  DecodeResult r = DecodeReplicaSet(Manifest("  instances: 3\n"));
  ASSERT_TRUE(r.errors.empty()) << Describe(r.errors);
  ASSERT_TRUE(r.object);
  EXPECT_EQ(r.object->metadata.name, "demo");
  EXPECT_EQ(r.object->spec.instances, 3);
  EXPECT_EQ(r.object->spec.postgres.version, 0);
  EXPECT_FALSE(r.object->spec.replication.slots.has_value());
  EXPECT_EQ(r.object->status, ReplicaSetStatus{});
}

TEST(Decode, AcceptsJsonText) {
  DecodeResult r = DecodeReplicaSet(
      R"({"apiVersion":"pgrs.dev/v1alpha1","kind":"PostgresReplicaSet","metadata":{"name":"demo"},)"
      R"("spec":{"instances":2,"replication":{"mode":"sync","slots":false},"failover":{"maxLagBytes":1024}}})");
  ASSERT_TRUE(r.errors.empty()) << Describe(r.errors);
  EXPECT_EQ(r.object->spec.instances, 2);
  EXPECT_EQ(r.object->spec.replication.mode, "sync");
  EXPECT_EQ(r.object->spec.replication.slots, false);
  EXPECT_EQ(r.object->spec.failover.maxLagBytes, 1024);
}

TEST(Decode, NullValuesMeanUnset) {
  DecodeResult r = DecodeReplicaSet(Manifest(
      "  instances: ~\n  primary: null\n  postgres:\n  failover:\n    maxLagBytes:\n"));
  ASSERT_TRUE(r.errors.empty()) << Describe(r.errors);
  EXPECT_FALSE(r.object->spec.instances.has_value());
  EXPECT_FALSE(r.object->spec.failover.maxLagBytes.has_value());
}

TEST(Decode, ParametersKeepTheTextTheUserWrote) {
  DecodeResult r = DecodeReplicaSet(Manifest(
      "  postgres:\n"
      "    parameters:\n"
      "      shared_buffers: 256MB\n"
      "      max_connections: 0200\n"
      "      jit: off\n"
      "      hot_standby_feedback_typo: true\n"
      "      random_page_cost: 1.10\n"
      "      quoted: \"42\"\n"));
  ASSERT_TRUE(r.errors.empty()) << Describe(r.errors);
  const auto& p = r.object->spec.postgres.parameters;
  EXPECT_EQ(p.at("shared_buffers"), "256MB");
  EXPECT_EQ(p.at("max_connections"), "0200");
  EXPECT_EQ(p.at("jit"), "off");
  EXPECT_EQ(p.at("hot_standby_feedback_typo"), "true");
  EXPECT_EQ(p.at("random_page_cost"), "1.10");
  EXPECT_EQ(p.at("quoted"), "42");
}

TEST(Decode, StorageSizeMayBeABareNumber) {
  DecodeResult r = DecodeReplicaSet(Manifest("  storage:\n    size: 1024\n"));
  ASSERT_TRUE(r.errors.empty()) << Describe(r.errors);
  EXPECT_EQ(r.object->spec.storage.size, "1024");
}

TEST(Decode, MetadataAndStatusOfStoredObjects) {
  DecodeResult r = DecodeReplicaSet(
      "apiVersion: pgrs.dev/v1alpha1\n"
      "kind: PostgresReplicaSet\n"
      "metadata:\n"
      "  name: demo\n"
      "  namespace: db\n"
      "  uid: abc\n"
      "  resourceVersion: \"77\"\n"
      "  generation: 4\n"
      "  creationTimestamp: \"2024-01-01T00:00:00Z\"\n"
      "  labels: {app: shop}\n"
      "  annotations: {note: hi}\n"
      "  managedFields: [{manager: kubectl}]\n"
      "  finalizers: [pgrs.dev/cleanup]\n"
      "spec: {}\n"
      "status:\n"
      "  phase: Healthy\n"
      "  readyInstances: 1\n"
      "  instances:\n"
      "    - {name: demo-1, role: primary, lagBytes: 5, lagSeconds: 0.5}\n"
      "  conditions:\n"
      "    - {type: Ready, status: \"True\", observedGeneration: 4}\n");
  ASSERT_TRUE(r.errors.empty()) << Describe(r.errors);
  const PostgresReplicaSet& o = *r.object;
  EXPECT_EQ(o.metadata.namespace_, "db");
  EXPECT_EQ(o.metadata.uid, "abc");
  EXPECT_EQ(o.metadata.resourceVersion, "77");
  EXPECT_EQ(o.metadata.generation, 4);
  EXPECT_EQ(o.metadata.creationTimestamp, "2024-01-01T00:00:00Z");
  EXPECT_EQ(o.metadata.labels.at("app"), "shop");
  EXPECT_EQ(o.metadata.annotations.at("note"), "hi");
  EXPECT_EQ(o.status.phase, "Healthy");
  EXPECT_EQ(o.status.readyInstances, 1);
  ASSERT_EQ(o.status.instances.size(), 1u);
  EXPECT_EQ(o.status.instances[0].lagBytes, 5);
  EXPECT_EQ(o.status.instances[0].lagSeconds, 0.5);
  ASSERT_NE(FindCondition(o.status, "Ready"), nullptr);
  EXPECT_EQ(FindCondition(o.status, "Ready")->observedGeneration, 4);
}

TEST(Decode, NotYamlIsOneDocumentErrorWithPosition) {
  for (const std::string text : {"spec: [1, 2\n", "a: b: c\n", "{\"apiVersion\": \"x\"", "a: 1\n b: 2\n"}) {
    DecodeResult r = DecodeReplicaSet(text);
    EXPECT_FALSE(r.object);
    ASSERT_EQ(r.errors.size(), 1u) << text << Describe(r.errors);
    EXPECT_EQ(r.errors[0].path, "<document>");
    EXPECT_NE(r.errors[0].message.find("line "), std::string::npos) << r.errors[0].message;
    EXPECT_NE(r.errors[0].message.find("column "), std::string::npos) << r.errors[0].message;
  }
  DecodeResult r = DecodeReplicaSet("a: b: c\n");
  EXPECT_EQ(r.errors[0].message, "is not valid YAML or JSON: line 1, column 5: illegal map value");
}

TEST(Decode, DocumentShapeErrors) {
  struct Row {
    std::string text;
    std::string message;
  };
  const Row rows[] = {
      {"", "must hold exactly one object, found 0 YAML documents"},
      {"- 1\n- 2\n", "must be a map with apiVersion, kind, metadata and spec"},
      {"just text\n", "must be a map with apiVersion, kind, metadata and spec"},
      {std::string(kHeader) + "---\n" + kHeader, "must hold exactly one object, found 2 YAML documents"},
      // yaml-cpp's parser yields empty documents here forever (LoadAll
      // filled memory): found by fuzz/manifest_fuzzer, its input kept in
      // fuzz/corpus/manifest/.
      {R"({"apiVersion": "pgrs.dev/v1alpha1"}, "spec"2 }})",
       "is not valid YAML or JSON: line 1, column 36: unexpected text after the document"},
      // Bytes that are not UTF-8 did not survive EncodeYaml (fuzz/manifest_fuzzer).
      {std::string(kHeader) + "  labels: {a: \"x\xff\"}\n", "is not UTF-8 text: line 5, column 17: invalid byte 0xff"},
      {"a: \xc0\xaf\n", "is not UTF-8 text: line 1, column 4: invalid byte 0xc0"},      // overlong '/'
      {"a: \xed\xa0\x80\n", "is not UTF-8 text: line 1, column 4: invalid byte 0xed"},  // a surrogate
      {"a: \xe2\x82\n", "is not UTF-8 text: line 1, column 4: invalid byte 0xe2"},      // cut short
  };
  for (const Row& row : rows) {
    DecodeResult r = DecodeReplicaSet(row.text);
    EXPECT_FALSE(r.object);
    ASSERT_EQ(r.errors.size(), 1u) << row.text << Describe(r.errors);
    EXPECT_EQ(r.errors[0], (FieldError{"<document>", row.message})) << row.text;
  }
}

TEST(Decode, DeeplyNestedInputIsAnErrorNotACrash) {
  const std::string text = "spec: " + std::string(100000, '[') + "\n";
  DecodeResult r = DecodeReplicaSet(text);
  EXPECT_FALSE(r.object);
  ASSERT_EQ(r.errors.size(), 1u) << Describe(r.errors);
  EXPECT_EQ(r.errors[0].path, "<document>");
}

// One row per mistake: the manifest and the single error it must produce.
struct DecodeErrorRow {
  std::string name;
  std::string text;
  FieldError error;
};

class DecodeErrors : public ::testing::TestWithParam<DecodeErrorRow> {};

TEST_P(DecodeErrors, ReportsTheFieldPath) {
  const DecodeErrorRow& row = GetParam();
  DecodeResult r = DecodeReplicaSet(row.text);
  EXPECT_FALSE(r.object);
  ASSERT_EQ(r.errors.size(), 1u) << Describe(r.errors);
  EXPECT_EQ(r.errors[0], row.error) << Describe(r.errors);
}

const char kWithoutName[] = "apiVersion: pgrs.dev/v1alpha1\nkind: PostgresReplicaSet\n";

INSTANTIATE_TEST_SUITE_P(
    Rows, DecodeErrors,
    ::testing::Values(
        DecodeErrorRow{"WrongApiVersion",
                       "apiVersion: pgrs.dev/v1\nkind: PostgresReplicaSet\nmetadata: {name: demo}\n",
                       {"apiVersion", "must be pgrs.dev/v1alpha1, not \"pgrs.dev/v1\""}},
        DecodeErrorRow{"MissingApiVersion", "kind: PostgresReplicaSet\nmetadata: {name: demo}\n",
                       {"apiVersion", "is required (pgrs.dev/v1alpha1)"}},
        DecodeErrorRow{"WrongKind", "apiVersion: pgrs.dev/v1alpha1\nkind: Deployment\nmetadata: {name: demo}\n",
                       {"kind", "must be PostgresReplicaSet, not \"Deployment\""}},
        DecodeErrorRow{"MissingKind", "apiVersion: pgrs.dev/v1alpha1\nmetadata: {name: demo}\n",
                       {"kind", "is required (PostgresReplicaSet)"}},
        DecodeErrorRow{"MissingMetadata", kWithoutName, {"metadata.name", "is required"}},
        DecodeErrorRow{"MissingName", std::string(kWithoutName) + "metadata: {namespace: x}\n",
                       {"metadata.name", "is required"}},
        DecodeErrorRow{"BadName", std::string(kWithoutName) + "metadata: {name: My_DB}\n",
                       {"metadata.name",
                        "must consist of lowercase letters, digits and '-', start with a letter and end with a "
                        "letter or digit"}},
        DecodeErrorRow{"LongName", std::string(kWithoutName) + "metadata: {name: " + std::string(51, 'x') + "}\n",
                       {"metadata.name", "must be at most 50 characters"}},
        DecodeErrorRow{"NameNotString", std::string(kWithoutName) + "metadata: {name: [a]}\n",
                       {"metadata.name", "must be a string"}},
        DecodeErrorRow{"MetadataNotMap", std::string(kWithoutName) + "metadata: demo\n",
                       {"metadata", "must be a map"}},
        DecodeErrorRow{"UnknownTopLevel", std::string(kHeader) + "sepc: {}\n", {"sepc", "unknown field"}},
        DecodeErrorRow{"UnknownMetadata", std::string(kHeader) + "  nmae: x\n",
                       {"metadata.nmae", "unknown field"}},
        DecodeErrorRow{"UnknownSpec", Manifest("  replicas: 3\n"), {"spec.replicas", "unknown field"}},
        DecodeErrorRow{"UnknownReplication", Manifest("  replication:\n    foo: 1\n"),
                       {"spec.replication.foo", "unknown field"}},
        DecodeErrorRow{"UnknownLocal", Manifest("  local:\n    port: 1\n"), {"spec.local.port", "unknown field"}},
        DecodeErrorRow{"UnknownStatusInstance", Manifest("  {}\nstatus:\n  instances:\n    - {name: a, lag: 1}\n"),
                       {"status.instances[0].lag", "unknown field"}},
        DecodeErrorRow{"UnknownCondition", Manifest("  {}\nstatus:\n  conditions:\n    - {type: A}\n    - {kind: B}\n"),
                       {"status.conditions[1].kind", "unknown field"}},
        DecodeErrorRow{"DuplicateField", Manifest("  instances: 1\n  instances: 2\n"),
                       {"spec.instances", "is set more than once"}},
        DecodeErrorRow{"InstancesString", Manifest("  instances: three\n"), {"spec.instances", "must be an integer"}},
        DecodeErrorRow{"InstancesQuoted", Manifest("  instances: \"3\"\n"), {"spec.instances", "must be an integer"}},
        DecodeErrorRow{"InstancesFloat", Manifest("  instances: 3.0\n"), {"spec.instances", "must be an integer"}},
        DecodeErrorRow{"InstancesList", Manifest("  instances: [3]\n"), {"spec.instances", "must be an integer"}},
        DecodeErrorRow{"InstancesHuge", Manifest("  instances: 4294967296\n"),
                       {"spec.instances", "must be an integer that fits in 32 bits"}},
        DecodeErrorRow{"MaxLagTooBig", Manifest("  failover:\n    maxLagBytes: 9223372036854775808\n"),
                       {"spec.failover.maxLagBytes", "must be an integer that fits in 64 bits"}},
        DecodeErrorRow{"VersionString", Manifest("  postgres:\n    version: fifteen\n"),
                       {"spec.postgres.version", "must be an integer"}},
        DecodeErrorRow{"SlotsNotBool", Manifest("  replication:\n    slots: yes\n"),
                       {"spec.replication.slots", "must be a boolean (true or false)"}},
        DecodeErrorRow{"ModeNumber", Manifest("  replication:\n    mode: 1\n"),
                       {"spec.replication.mode", "must be a string"}},
        DecodeErrorRow{"PostgresNotMap", Manifest("  postgres: 15\n"), {"spec.postgres", "must be a map"}},
        DecodeErrorRow{"SpecNotMap", std::string(kHeader) + "spec: [1]\n", {"spec", "must be a map"}},
        DecodeErrorRow{"ParametersNotMap", Manifest("  postgres:\n    parameters: [a]\n"),
                       {"spec.postgres.parameters", "must be a map"}},
        DecodeErrorRow{"ParameterList", Manifest("  postgres:\n    parameters:\n      work_mem: [4MB]\n"),
                       {"spec.postgres.parameters.work_mem", "must be a string, number or boolean"}},
        DecodeErrorRow{"ParameterNull", Manifest("  postgres:\n    parameters:\n      work_mem:\n"),
                       {"spec.postgres.parameters.work_mem", "must be a string, number or boolean"}},
        DecodeErrorRow{"PgHbaNotList", Manifest("  postgres:\n    pgHBA: host all all all trust\n"),
                       {"spec.postgres.pgHBA", "must be a list"}},
        DecodeErrorRow{"PgHbaItemNotString", Manifest("  postgres:\n    pgHBA: [a, b, {c: d}]\n"),
                       {"spec.postgres.pgHBA[2]", "must be a string"}},
        DecodeErrorRow{"LabelNotString", std::string(kHeader) + "  labels: {version: 1.0}\n",
                       {"metadata.labels.version", "must be a string"}},
        DecodeErrorRow{"LagSecondsText", Manifest("  {}\nstatus:\n  instances:\n    - {lagSeconds: soon}\n"),
                       {"status.instances[0].lagSeconds", "must be a finite number"}},
        DecodeErrorRow{"LagSecondsInfinite", Manifest("  {}\nstatus:\n  instances:\n    - {lagSeconds: .inf}\n"),
                       {"status.instances[0].lagSeconds", "must be a finite number"}},
        DecodeErrorRow{"DetectionSecondsText", Manifest("  failover:\n    detectionSeconds: 5s\n"),
                       {"spec.failover.detectionSeconds", "must be an integer"}},
        DecodeErrorRow{"LeaseDurationFloat", Manifest("  failover:\n    leaseDurationSeconds: 2.5\n"),
                       {"spec.failover.leaseDurationSeconds", "must be an integer"}},
        DecodeErrorRow{"RenewDeadlineQuoted", Manifest("  failover:\n    renewDeadlineSeconds: \"3\"\n"),
                       {"spec.failover.renewDeadlineSeconds", "must be an integer"}},
        DecodeErrorRow{"RetryPeriodList", Manifest("  failover:\n    retryPeriodSeconds: [1]\n"),
                       {"spec.failover.retryPeriodSeconds", "must be an integer"}},
        DecodeErrorRow{"DataDurabilityBool", Manifest("  replication:\n    dataDurability: true\n"),
                       {"spec.replication.dataDurability", "must be a string"}},
        DecodeErrorRow{"UnknownFailover", Manifest("  failover:\n    leaseSeconds: 5\n"),
                       {"spec.failover.leaseSeconds", "unknown field"}},
        DecodeErrorRow{"FencedNotBool", Manifest("  {}\nstatus:\n  instances:\n    - {name: a, fenced: 1}\n"),
                       {"status.instances[0].fenced", "must be a boolean (true or false)"}},
        DecodeErrorRow{"FailoversNotList", Manifest("  {}\nstatus:\n  failovers: {to: a}\n"),
                       {"status.failovers", "must be a list"}},
        DecodeErrorRow{"UnknownFailoverRecord",
                       Manifest("  {}\nstatus:\n  failovers:\n    - {to: a}\n    - {to: b, by: c}\n"),
                       {"status.failovers[1].by", "unknown field"}},
        DecodeErrorRow{"UnavailableSecondsText",
                       Manifest("  {}\nstatus:\n  failovers:\n    - {unavailableSeconds: 3s}\n"),
                       {"status.failovers[0].unavailableSeconds", "must be a finite number"}},
        DecodeErrorRow{"FailoverTimelineFloat", Manifest("  {}\nstatus:\n  failovers:\n    - {timeline: 2.0}\n"),
                       {"status.failovers[0].timeline", "must be an integer"}},
        DecodeErrorRow{"PrimaryLostSinceNumber", Manifest("  {}\nstatus:\n  primaryLostSince: 5\n"),
                       {"status.primaryLostSince", "must be a string"}},
        DecodeErrorRow{"StorageSizeMap", Manifest("  storage:\n    size: {gi: 1}\n"),
                       {"spec.storage.size", "must be a quantity such as 1Gi"}}),
    [](const ::testing::TestParamInfo<DecodeErrorRow>& info) { return info.param.name; });

TEST(Decode, AnotherKindIsNotCheckedAgainstOurSchema) {
  DecodeResult r = DecodeReplicaSet(
      "apiVersion: apps/v1\n"
      "kind: Deployment\n"
      "metadata: {name: web}\n"
      "spec: {replicas: 3, template: {}}\n"
      "data: {a: b}\n");
  EXPECT_FALSE(r.object);
  EXPECT_EQ(r.errors, (std::vector<FieldError>{{"apiVersion", "must be pgrs.dev/v1alpha1, not \"apps/v1\""},
                                               {"kind", "must be PostgresReplicaSet, not \"Deployment\""}}));
}

TEST(Decode, CollectsAllErrors) {
  DecodeResult r = DecodeReplicaSet(
      "apiVersion: pgrs.dev/v1alpha1\n"
      "kind: PostgresReplicaSet\n"
      "metadata: {name: demo}\n"
      "spec:\n"
      "  instances: three\n"
      "  replication: {mode: sync, foo: 1}\n"
      "  postgres: {pgHBA: [ok, 7]}\n");
  EXPECT_FALSE(r.object);
  EXPECT_EQ(Paths(r.errors),
            (std::vector<std::string>{"spec.instances", "spec.replication.foo", "spec.postgres.pgHBA[1]"}))
      << Describe(r.errors);
}

// ---------------------------------------------------------------------------
// Validation

struct ValidateRow {
  std::string name;
  std::string spec;  // YAML under "spec:", indented by two spaces
  FieldError error;
};

class ValidateErrors : public ::testing::TestWithParam<ValidateRow> {};

TEST_P(ValidateErrors, ReportsTheFieldPath) {
  const ValidateRow& row = GetParam();
  DecodeResult r = DecodeReplicaSet(Manifest(row.spec));
  ASSERT_TRUE(r.object) << Describe(r.errors);
  ApplyDefaults(r.object->spec);
  const std::vector<FieldError> errors = Validate(*r.object);
  ASSERT_EQ(errors.size(), 1u) << Describe(errors);
  EXPECT_EQ(errors[0], row.error);
}

INSTANTIATE_TEST_SUITE_P(
    Rows, ValidateErrors,
    ::testing::Values(
        ValidateRow{"InstancesZero", "  instances: 0\n", {"spec.instances", "must be between 1 and 16"}},
        ValidateRow{"InstancesSeventeen", "  instances: 17\n", {"spec.instances", "must be between 1 and 16"}},
        ValidateRow{"InstancesNegative", "  instances: -1\n", {"spec.instances", "must be between 1 and 16"}},
        ValidateRow{"Version10", "  postgres: {version: 10}\n",
                    {"spec.postgres.version", "must be between 11 and 17"}},
        ValidateRow{"Version18", "  postgres: {version: 18}\n",
                    {"spec.postgres.version", "must be between 11 and 17"}},
        ValidateRow{"ModeUnknown", "  replication: {mode: quorum}\n",
                    {"spec.replication.mode", "must be one of async, sync"}},
        ValidateRow{"SyncReplicasEqualInstances", "  instances: 3\n  replication: {mode: sync, syncReplicas: 3}\n",
                    {"spec.replication.syncReplicas", "must be less than spec.instances (3)"}},
        ValidateRow{"SyncWithOneInstance", "  replication: {mode: sync}\n",
                    {"spec.replication.syncReplicas", "must be less than spec.instances (1)"}},
        ValidateRow{"SyncReplicasZero", "  instances: 3\n  replication: {mode: sync, syncReplicas: 0}\n",
                    {"spec.replication.syncReplicas", "must be at least 1"}},
        ValidateRow{"DelayNegative", "  failover: {delaySeconds: -5}\n",
                    {"spec.failover.delaySeconds", "must not be negative"}},
        ValidateRow{"MaxLagNegative", "  failover: {maxLagBytes: -1}\n",
                    {"spec.failover.maxLagBytes", "must not be negative"}},
        ValidateRow{"DetectionZero", "  failover: {detectionSeconds: 0}\n",
                    {"spec.failover.detectionSeconds", "must be between 1 and 300"}},
        ValidateRow{"DetectionTooLong", "  failover: {detectionSeconds: 301}\n",
                    {"spec.failover.detectionSeconds", "must be between 1 and 300"}},
        ValidateRow{"LeaseOne", "  failover: {leaseDurationSeconds: 1, renewDeadlineSeconds: 2}\n",
                    {"spec.failover.leaseDurationSeconds", "must be between 3 and 300"}},
        // 1 <= retry < renew < lease cannot hold with a 2 s lease.
        ValidateRow{"LeaseTwo", "  failover: {leaseDurationSeconds: 2}\n",
                    {"spec.failover.leaseDurationSeconds", "must be between 3 and 300"}},
        ValidateRow{"LeaseTooLong", "  failover: {leaseDurationSeconds: 301}\n",
                    {"spec.failover.leaseDurationSeconds", "must be between 3 and 300"}},
        // The default renew deadline (3) is not blamed for a lease that is
        // itself out of range.
        ValidateRow{"LeaseOneWithDefaultRenew", "  failover: {leaseDurationSeconds: 1}\n",
                    {"spec.failover.leaseDurationSeconds", "must be between 3 and 300"}},
        ValidateRow{"RenewEqualsDefaultLease", "  failover: {renewDeadlineSeconds: 5}\n",
                    {"spec.failover.renewDeadlineSeconds",
                     "must be less than spec.failover.leaseDurationSeconds (5)"}},
        ValidateRow{"RenewAboveLease", "  failover: {leaseDurationSeconds: 10, renewDeadlineSeconds: 12}\n",
                    {"spec.failover.renewDeadlineSeconds",
                     "must be less than spec.failover.leaseDurationSeconds (10)"}},
        ValidateRow{"LeaseShortenedBelowDefaultRenew", "  failover: {leaseDurationSeconds: 3}\n",
                    {"spec.failover.renewDeadlineSeconds",
                     "must be less than spec.failover.leaseDurationSeconds (3)"}},
        // Not blamed on the default retry period (1).
        ValidateRow{"RenewOne", "  failover: {renewDeadlineSeconds: 1}\n",
                    {"spec.failover.renewDeadlineSeconds", "must be at least 2"}},
        ValidateRow{"RenewNegative", "  failover: {renewDeadlineSeconds: -3}\n",
                    {"spec.failover.renewDeadlineSeconds", "must be at least 2"}},
        ValidateRow{"RetryEqualsDefaultRenew", "  failover: {retryPeriodSeconds: 3}\n",
                    {"spec.failover.retryPeriodSeconds",
                     "must be less than spec.failover.renewDeadlineSeconds (3)"}},
        ValidateRow{"RetryAboveRenew",
                    "  failover: {leaseDurationSeconds: 30, renewDeadlineSeconds: 20, retryPeriodSeconds: 25}\n",
                    {"spec.failover.retryPeriodSeconds",
                     "must be less than spec.failover.renewDeadlineSeconds (20)"}},
        ValidateRow{"RetryZero", "  failover: {retryPeriodSeconds: 0}\n",
                    {"spec.failover.retryPeriodSeconds", "must be at least 1"}},
        ValidateRow{"DataDurabilityUnknown", "  instances: 3\n  replication: {mode: sync, dataDurability: best}\n",
                    {"spec.replication.dataDurability", "must be one of required, preferred"}},
        ValidateRow{"DataDurabilityCase", "  replication: {dataDurability: Required}\n",
                    {"spec.replication.dataDurability", "must be one of required, preferred"}},
        ValidateRow{"MaxSlotWalKeepSizeNoUnit", "  replication: {maxSlotWalKeepSize: 512}\n",
                    {"spec.replication.maxSlotWalKeepSize",
                     "must be -1 (no bound) or a size of at least 16MB in MB, GB or TB, such as 512MB or 2GB"}},
        ValidateRow{"MaxSlotWalKeepSizeKubernetesUnit", "  replication: {maxSlotWalKeepSize: 2Gi}\n",
                    {"spec.replication.maxSlotWalKeepSize",
                     "must be -1 (no bound) or a size of at least 16MB in MB, GB or TB, such as 512MB or 2GB"}},
        ValidateRow{"MaxSlotWalKeepSizeTooSmall", "  replication: {maxSlotWalKeepSize: 8MB}\n",
                    {"spec.replication.maxSlotWalKeepSize",
                     "must be -1 (no bound) or a size of at least 16MB in MB, GB or TB, such as 512MB or 2GB"}},
        ValidateRow{"MaxSlotWalKeepSizeOtherNegative", "  replication: {maxSlotWalKeepSize: -2}\n",
                    {"spec.replication.maxSlotWalKeepSize",
                     "must be -1 (no bound) or a size of at least 16MB in MB, GB or TB, such as 512MB or 2GB"}},
        ValidateRow{"MaxSlotWalKeepSizeParameter", "  postgres: {parameters: {max_slot_wal_keep_size: 1GB}}\n",
                    {"spec.postgres.parameters.max_slot_wal_keep_size",
                     "is managed by pgrs: set spec.replication.maxSlotWalKeepSize instead"}},
        ValidateRow{"PrimaryOutOfRange", "  instances: 3\n  primary: demo-4\n",
                    {"spec.primary", "must name an instance of this set (demo-1..demo-3)"}},
        ValidateRow{"PrimaryOtherSet", "  instances: 3\n  primary: other-1\n",
                    {"spec.primary", "must name an instance of this set (demo-1..demo-3)"}},
        ValidateRow{"PrimaryOneInstance", "  primary: demo-2\n",
                    {"spec.primary", "must name an instance of this set (demo-1)"}},
        ValidateRow{"StorageSizeWord", "  storage: {size: big}\n",
                    {"spec.storage.size", "must be a quantity of bytes such as 1Gi, 500Mi, 10G or 1024"}},
        ValidateRow{"StorageSizeLowercaseUnit", "  storage: {size: 1gi}\n",
                    {"spec.storage.size", "must be a quantity of bytes such as 1Gi, 500Mi, 10G or 1024"}},
        ValidateRow{"StorageSizeZero", "  storage: {size: 0Gi}\n",
                    {"spec.storage.size", "must be a quantity of bytes such as 1Gi, 500Mi, 10G or 1024"}},
        ValidateRow{"StorageSizeNegative", "  storage: {size: -1Gi}\n",
                    {"spec.storage.size", "must be a quantity of bytes such as 1Gi, 500Mi, 10G or 1024"}},
        ValidateRow{"TlsValidityNotADuration", "  tls: {certificateValidity: 90d}\n",
                    {"spec.tls.certificateValidity",
                     "must be a duration such as 2160h or 90m, from 1m to 8760h (one year)"}},
        ValidateRow{"TlsValidityTooShort", "  tls: {certificateValidity: 30s}\n",
                    {"spec.tls.certificateValidity",
                     "must be a duration such as 2160h or 90m, from 1m to 8760h (one year)"}},
        ValidateRow{"TlsValidityTooLong", "  tls: {certificateValidity: 9000h}\n",
                    {"spec.tls.certificateValidity",
                     "must be a duration such as 2160h or 90m, from 1m to 8760h (one year)"}},
        ValidateRow{"SslParameterWhileTlsOn", "  postgres: {parameters: {ssl: 'off'}}\n",
                    {"spec.postgres.parameters.ssl",
                     "is managed by pgrs while spec.tls.enabled is true and cannot be set"}},
        ValidateRow{"BasePortLow", "  local: {basePort: 80}\n",
                    {"spec.local.basePort", "must be between 1024 and 65535"}},
        ValidateRow{"BasePortHigh", "  local: {basePort: 70000}\n",
                    {"spec.local.basePort", "must be between 1024 and 65535"}},
        ValidateRow{"BasePortNoRoom", "  instances: 3\n  local: {basePort: 65534}\n",
                    {"spec.local.basePort", "must leave room for spec.instances (3) ports: at most 65533"}},
        ValidateRow{"BackupRetentionZero", "  backup: {repository: {path: /b}, retention: {full: 0}}\n",
                    {"spec.backup.retention.full", "must be between 1 and 9999999"}},
        ValidateRow{"BackupScheduleMinuteOutOfRange",
                    "  backup: {repository: {path: /b}, schedule: {full: '61 * * * *'}}\n",
                    {"spec.backup.schedule.full", "minute field \"61\": 61 is out of range 0-59"}},
        ValidateRow{"BackupScheduleFourFields",
                    "  backup: {repository: {path: /b}, schedule: {differential: '0 2 * *'}}\n",
                    {"spec.backup.schedule.differential",
                     "\"0 2 * *\" must have 5 fields (minute hour day-of-month month day-of-week), has 4"}},
        ValidateRow{"BackupScheduleBadStep",
                    "  backup: {repository: {path: /b}, schedule: {incremental: '*/0 * * * *'}}\n",
                    {"spec.backup.schedule.incremental", "minute field \"*/0\": step \"0\" must be a number of at least 1"}},
        ValidateRow{"BackupRetentionHuge", "  backup: {repository: {path: /b}, retention: {full: 10000000}}\n",
                    {"spec.backup.retention.full", "must be between 1 and 9999999"}},
        ValidateRow{"BackupRepositoryRelative", "  backup: {repository: {path: backups}}\n",
                    {"spec.backup.repository.path", "must be an absolute path"}},
        ValidateRow{"BackupRepositoryMissing", "  backup: {repository: {}}\n",
                    {"spec.backup.repository", "exactly one of path (a POSIX repository, local mode), volumeClaim (a ReadWriteMany "
                     "PersistentVolumeClaim, Kubernetes) and s3 must be set"}},
        ValidateRow{"BackupWithoutRepository", "  backup: {}\n",
                    {"spec.backup.repository", "exactly one of path (a POSIX repository, local mode), volumeClaim (a ReadWriteMany "
                     "PersistentVolumeClaim, Kubernetes) and s3 must be set"}},
        ValidateRow{"BackupRepositoryPathAndS3", "  backup: {repository: {path: /b, s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsFile: /c}}}\n",
                    {"spec.backup.repository", "exactly one of path (a POSIX repository, local mode), volumeClaim (a ReadWriteMany "
                     "PersistentVolumeClaim, Kubernetes) and s3 must be set"}},
        ValidateRow{"S3EndpointMissing", "  backup: {repository: {s3: {bucket: pgrs, region: r1, credentialsFile: /c}}}\n",
                    {"spec.backup.repository.s3.endpoint", "is required"}},
        ValidateRow{"S3EndpointScheme", "  backup: {repository: {s3: {endpoint: 'https://s3', bucket: pgrs, region: r1, credentialsFile: /c}}}\n",
                    {"spec.backup.repository.s3.endpoint", "must be a host name or address with an optional :port (1-65535), without a scheme, "
                     "such as s3.eu-west-1.amazonaws.com or minio.example:9000"}},
        ValidateRow{"S3EndpointPortTooHigh", "  backup: {repository: {s3: {endpoint: 'h:70000', bucket: pgrs, region: r1, credentialsFile: /c}}}\n",
                    {"spec.backup.repository.s3.endpoint", "must be a host name or address with an optional :port (1-65535), without a scheme, "
                     "such as s3.eu-west-1.amazonaws.com or minio.example:9000"}},
        ValidateRow{"S3BucketUppercase", "  backup: {repository: {s3: {endpoint: s3.example, bucket: Pgrs, region: r1, credentialsFile: /c}}}\n",
                    {"spec.backup.repository.s3.bucket", "must be an S3 bucket name: 3-63 lowercase letters, digits, '.' and '-'"}},
        ValidateRow{"S3BucketMissing", "  backup: {repository: {s3: {endpoint: s3.example, region: r1, credentialsFile: /c}}}\n",
                    {"spec.backup.repository.s3.bucket", "is required"}},
        ValidateRow{"S3RegionMissing", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, credentialsFile: /c}}}\n",
                    {"spec.backup.repository.s3.region", "is required (e.g. us-east-1; S3-compatible servers accept any)"}},
        ValidateRow{"S3RegionSpace", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: 'us east', credentialsFile: /c}}}\n",
                    {"spec.backup.repository.s3.region", "must be one word, such as us-east-1"}},
        ValidateRow{"S3UriStyle", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsFile: /c, uriStyle: virtual}}}\n",
                    {"spec.backup.repository.s3.uriStyle", "must be host or path"}},
        ValidateRow{"S3PathRelative", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsFile: /c, path: demo}}}\n",
                    {"spec.backup.repository.s3.path", "must be an absolute path"}},
        ValidateRow{"S3NoCredentials", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1}}}\n",
                    {"spec.backup.repository.s3", "exactly one of credentialsFile (local mode) and credentialsSecret (Kubernetes) must be set"}},
        ValidateRow{"S3BothCredentials", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsFile: /c, credentialsSecret: keys}}}\n",
                    {"spec.backup.repository.s3", "exactly one of credentialsFile (local mode) and credentialsSecret (Kubernetes) must be set"}},
        ValidateRow{"S3CredentialsFileRelative", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsFile: c}}}\n",
                    {"spec.backup.repository.s3.credentialsFile", "must be an absolute path"}},
        ValidateRow{"S3CredentialsSecretName", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsSecret: Keys}}}\n",
                    {"spec.backup.repository.s3.credentialsSecret", "must be a Secret's name (lowercase letters, digits, '-' and '.')"}},
        ValidateRow{"S3BothCas", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsFile: /c, caFile: /ca.pem, caSecret: ca}}}\n",
                    {"spec.backup.repository.s3", "at most one of caFile and caSecret may be set"}},
        ValidateRow{"S3CaFileNewline", "  backup: {repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsFile: /c, caFile: \"/ca\\nx\"}}}\n",
                    {"spec.backup.repository.s3.caFile", "must not contain a line break"}},
        ValidateRow{"RecoveryS3NoCredentials",
                    "  bootstrap: {recovery: {source: old, repository: {s3: {endpoint: s3.example, bucket: pgrs, region: r1}}}}\n",
                    {"spec.bootstrap.recovery.repository.s3",
                     "exactly one of credentialsFile (local mode) and credentialsSecret (Kubernetes) must be set"}},
        ValidateRow{"RecoveryS3BucketMissing",
                    "  bootstrap: {recovery: {source: old, repository: {s3: {endpoint: s3.example, region: r1, credentialsFile: /c}}}}\n",
                    {"spec.bootstrap.recovery.repository.s3.bucket", "is required"}},
        ValidateRow{"RecoveryPathAndS3",
                    "  bootstrap: {recovery: {source: old, repository: {path: /b, s3: {endpoint: s3.example, bucket: pgrs, region: r1, credentialsFile: /c}}}}\n",
                    {"spec.bootstrap.recovery.repository",
                     "exactly one of path (a POSIX repository, local mode), volumeClaim (a ReadWriteMany "
                     "PersistentVolumeClaim, Kubernetes) and s3 must be set"}},
        ValidateRow{"RecoveryPassphraseFileWithoutEncryption",
                    "  bootstrap: {recovery: {source: old, repository: {path: /b}, encryptionPassphraseFile: /k}}\n",
                    {"spec.bootstrap.recovery.encryptionPassphraseFile",
                     "needs spec.bootstrap.recovery.repository.encryption: true"}},
        ValidateRow{"RecoveryPassphraseSecretWithoutEncryption",
                    "  bootstrap: {recovery: {source: old, repository: {path: /b, encryption: false}, "
                    "encryptionPassphraseSecret: k}}\n",
                    {"spec.bootstrap.recovery.encryptionPassphraseSecret",
                     "needs spec.bootstrap.recovery.repository.encryption: true"}},
        ValidateRow{"RecoveryPassphraseFileAndSecret",
                    "  bootstrap: {recovery: {source: old, repository: {path: /b, encryption: true}, "
                    "encryptionPassphraseFile: /k, encryptionPassphraseSecret: k}}\n",
                    {"spec.bootstrap.recovery",
                     "at most one of encryptionPassphraseFile and encryptionPassphraseSecret may be set"}},
        ValidateRow{"RecoveryPassphraseFileRelative",
                    "  bootstrap: {recovery: {source: old, repository: {path: /b, encryption: true}, "
                    "encryptionPassphraseFile: key}}\n",
                    {"spec.bootstrap.recovery.encryptionPassphraseFile", "must be an absolute path"}},
        ValidateRow{"RecoveryPassphraseSecretName",
                    "  bootstrap: {recovery: {source: old, repository: {path: /b, encryption: true}, "
                    "encryptionPassphraseSecret: Key}}\n",
                    {"spec.bootstrap.recovery.encryptionPassphraseSecret",
                     "must be a Secret's name (lowercase letters, digits, '-' and '.')"}},
        ValidateRow{"BackupRepositoryNewline", "  backup: {repository: {path: \"/b\\nrepo2-path=/x\"}}\n",
                    {"spec.backup.repository.path", "must not contain a line break"}},
        ValidateRow{"ArchiveCommandWithBackup",
                    "  backup: {repository: {path: /b}}\n  postgres: {parameters: {archive_command: 'true'}}\n",
                    {"spec.postgres.parameters.archive_command",
                     "is managed by pgrs when spec.backup is set and cannot be set"}},
        ValidateRow{"ParameterOwned", "  postgres: {parameters: {port: 5433}}\n",
                    {"spec.postgres.parameters.port", "is managed by pgrs and cannot be set"}},
        ValidateRow{"ParameterOwnedWalLevel", "  postgres: {parameters: {wal_level: minimal}}\n",
                    {"spec.postgres.parameters.wal_level", "is managed by pgrs and cannot be set"}},
        ValidateRow{"ParameterUppercase", "  postgres: {parameters: {Work_Mem: 4MB}}\n",
                    {"spec.postgres.parameters.Work_Mem", "must be a lowercase parameter name ([a-z_][a-z0-9_.]*)"}},
        ValidateRow{"ParameterLeadingDigit", "  postgres: {parameters: {1x: a}}\n",
                    {"spec.postgres.parameters.1x", "must be a lowercase parameter name ([a-z_][a-z0-9_.]*)"}},
        ValidateRow{"ParameterValueNewline", "  postgres: {parameters: {work_mem: \"4MB\\nport = 1\"}}\n",
                    {"spec.postgres.parameters.work_mem", "must not contain a line break"}},
        ValidateRow{"PgHbaEmpty", "  postgres: {pgHBA: [\"local all all peer\", \"  \"]}\n",
                    {"spec.postgres.pgHBA[1]", "must not be empty"}},
        ValidateRow{"PgHbaNewline",
                    "  postgres: {pgHBA: [a, b, \"host all all 10.0.0.0/8 md5\\nhost all all 0.0.0.0/0 trust\"]}\n",
                    {"spec.postgres.pgHBA[2]", "must not contain a line break"}}),
    [](const ::testing::TestParamInfo<ValidateRow>& info) { return info.param.name; });

TEST(Validate, AcceptsBoundaryValues) {
  const std::string specs[] = {
      "  instances: 1\n",
      "  instances: 16\n  local: {basePort: 65520}\n",
      "  backup: {repository: {path: /var/lib/pgrs-backups}}\n",
      "  backup: {repository: {s3: {endpoint: 's3.eu-west-1.amazonaws.com:443', bucket: a.b-c, region: eu-west-1, "
      "uriStyle: path, path: /x, credentialsSecret: s3-keys, caSecret: s3.ca, verifyTLS: false}}}\n",
      "  bootstrap: {recovery: {source: old, repository: {s3: {endpoint: 'localhost:9000', bucket: pgrs, region: r1, "
      "uriStyle: path, credentialsFile: /c, caFile: /ca.pem}}}}\n",
      "  backup: {repository: {path: /b}, encryption: true}\n",
      "  bootstrap: {recovery: {source: old, repository: {path: /b, encryption: true}}}\n",  // the kept passphrase
      "  bootstrap: {recovery: {source: old, repository: {path: /b, encryption: true}, encryptionPassphraseFile: /k}}\n",
      "  bootstrap: {recovery: {source: old, repository: {path: /b, encryption: true}, encryptionPassphraseSecret: k}}\n",
      "  postgres: {parameters: {archive_mode: 'on', archive_command: 'true'}}\n",  // the user's without spec.backup
      "  postgres: {version: 11}\n",
      "  postgres: {version: 17}\n",
      "  instances: 2\n  replication: {mode: sync, syncReplicas: 1}\n",
      "  instances: 3\n  primary: demo-3\n",
      "  failover: {delaySeconds: 0, maxLagBytes: 0}\n",
      "  local: {basePort: 1024}\n",
      "  local: {basePort: 65535}\n",
      "  storage: {size: 500Mi}\n",
      "  storage: {size: 10G}\n",
      "  storage: {size: 1024}\n",
      "  storage: {size: 1.5Ti}\n",
      "  storage: {size: 1e9}\n",
      "  postgres: {parameters: {auto_explain.log_min_duration: 1s, _x: y}}\n",
      "  replication: {mode: async, syncReplicas: 0}\n",  // unused outside sync mode
      "  instances: 2\n  replication: {mode: sync, dataDurability: required}\n",
      "  instances: 2\n  replication: {mode: sync, dataDurability: preferred}\n",
      "  replication: {dataDurability: preferred}\n",
      "  replication: {maxSlotWalKeepSize: 16MB}\n",
      "  replication: {maxSlotWalKeepSize: 2GB}\n",
      "  replication: {maxSlotWalKeepSize: 1TB}\n",
      "  replication: {maxSlotWalKeepSize: -1}\n",  // a bare number: no bound
      "  replication: {maxSlotWalKeepSize: \"-1\"}\n",
      "  replication: {slots: false, maxSlotWalKeepSize: 64MB}\n",
      "  postgres: {version: 12}\n  replication: {maxSlotWalKeepSize: 64MB}\n",  // no effect before 13
      "  postgres: {dataChecksums: false}\n",
      "  failover: {detectionSeconds: 1}\n",
      "  failover: {detectionSeconds: 300}\n",
      "  failover: {leaseDurationSeconds: 300, renewDeadlineSeconds: 299, retryPeriodSeconds: 298}\n",
      "  failover: {leaseDurationSeconds: 3, renewDeadlineSeconds: 2, retryPeriodSeconds: 1}\n",
      "  failover: {leaseDurationSeconds: 4}\n",  // the defaults 3 and 1 still fit
  };
  for (const std::string& spec : specs) {
    DecodeResult r = DecodeReplicaSet(Manifest(spec));
    ASSERT_TRUE(r.object) << spec << Describe(r.errors);
    ApplyDefaults(r.object->spec);
    EXPECT_EQ(Validate(*r.object), std::vector<FieldError>{}) << spec << Describe(Validate(*r.object));
  }
}

TEST(Validate, EveryLeaseTimingMistakeIsReportedOnce) {
  PostgresReplicaSet object = DefaultedDemo();
  object.spec.failover.leaseDurationSeconds = 10;
  object.spec.failover.renewDeadlineSeconds = 12;
  object.spec.failover.retryPeriodSeconds = 15;
  EXPECT_EQ(Validate(object),
            (std::vector<FieldError>{
                {"spec.failover.renewDeadlineSeconds", "must be less than spec.failover.leaseDurationSeconds (10)"},
                {"spec.failover.retryPeriodSeconds", "must be less than spec.failover.renewDeadlineSeconds (12)"},
            }));
}

TEST(ParseManifest, FailoverTimingErrorsNameTheObjectAndField) {
  ParseResult r = ParseManifest(Manifest("  failover: {renewDeadlineSeconds: 5}\n"));
  EXPECT_EQ(r.errors, (std::vector<std::string>{"postgresreplicaset demo: spec.failover.renewDeadlineSeconds: must "
                                                "be less than spec.failover.leaseDurationSeconds (5)"}));
  r = ParseManifest(Manifest("  failover: {retryPeriodSeconds: 3}\n"));
  EXPECT_EQ(r.errors, (std::vector<std::string>{"postgresreplicaset demo: spec.failover.retryPeriodSeconds: must "
                                                "be less than spec.failover.renewDeadlineSeconds (3)"}));
  r = ParseManifest(Manifest("  replication: {dataDurability: always}\n"));
  EXPECT_EQ(r.errors, (std::vector<std::string>{"postgresreplicaset demo: spec.replication.dataDurability: must "
                                                "be one of required, preferred"}));
}

TEST(Validate, CollectsAllErrors) {
  PostgresReplicaSet object = DefaultedDemo();
  object.spec.instances = 17;
  object.spec.postgres.version = 10;
  object.spec.postgres.parameters["port"] = "5433";
  EXPECT_EQ(Paths(Validate(object)), (std::vector<std::string>{"spec.instances", "spec.postgres.version",
                                                                "spec.postgres.parameters.port"}));
}

TEST(Validate, ChecksTheName) {
  PostgresReplicaSet object = DefaultedDemo();
  object.metadata.name = "Demo";
  EXPECT_EQ(Paths(Validate(object)), std::vector<std::string>{"metadata.name"});
}

TEST(Validate, UndefaultedObjectIsCheckedAsIfDefaulted) {
  PostgresReplicaSet object;
  object.metadata.name = "demo";
  EXPECT_EQ(Validate(object), std::vector<FieldError>{});
}

// ---------------------------------------------------------------------------
// ParseManifest

TEST(ParseManifest, DefaultsAndValidates) {
  ParseResult r = ParseManifest(Manifest("  instances: 3\n"));
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  ASSERT_TRUE(r.object);
  EXPECT_EQ(r.object->spec, DefaultedDemo(3).spec);
}

TEST(ParseManifest, FormatsErrorsWithTheObjectName) {
  ParseResult r = ParseManifest(Manifest(
      "  instances: 3\n"
      "  replication: {mode: sync, syncReplicas: 3}\n"
      "  postgres: {version: 10, parameters: {port: 1}}\n"));
  EXPECT_FALSE(r.object);
  EXPECT_EQ(r.errors, (std::vector<std::string>{
                          "postgresreplicaset demo: spec.postgres.version: must be between 11 and 17",
                          "postgresreplicaset demo: spec.postgres.parameters.port: is managed by pgrs and cannot be set",
                          "postgresreplicaset demo: spec.replication.syncReplicas: must be less than spec.instances (3)",
                      }));
}

TEST(ParseManifest, DecodeErrorsAreReportedWithoutValidating) {
  ParseResult r = ParseManifest(Manifest("  instances: 0\n  replication: {foo: 1}\n"));
  EXPECT_FALSE(r.object);
  EXPECT_EQ(r.errors,
            std::vector<std::string>{"postgresreplicaset demo: spec.replication.foo: unknown field"});
}

TEST(ParseManifest, UnknownNameWhenTheNameCannotBeRead) {
  EXPECT_EQ(ParseManifest("not: [valid\n").errors.at(0).rfind("postgresreplicaset <unknown>: <document>: ", 0),
            0u);
  EXPECT_EQ(ParseManifest(std::string(kWithoutName) + "metadata: {name: Bad Name}\nspec: {}\n").errors,
            (std::vector<std::string>{"postgresreplicaset <unknown>: metadata.name: must consist of lowercase "
                                      "letters, digits and '-', start with a letter and end with a letter or digit"}));
  EXPECT_EQ(ParseManifest(std::string(kWithoutName) + "spec: {}\n").errors,
            (std::vector<std::string>{"postgresreplicaset <unknown>: metadata.name: is required"}));
}

// ---------------------------------------------------------------------------
// Encoding

TEST(Encode, RoundTripsThroughJson) {
  const PostgresReplicaSet object = FullyPopulated();
  for (bool pretty : {false, true}) {
    const std::string json = EncodeJson(object, pretty);
    DecodeResult r = DecodeReplicaSet(json);
    ASSERT_TRUE(r.object) << json << Describe(r.errors);
    EXPECT_EQ(*r.object, object) << json;
  }
}

TEST(Encode, S3RepositoryRoundTrips) {
  PostgresReplicaSet object = FullyPopulated();
  S3RepositorySpec s3;
  s3.endpoint = "localhost:9000";
  s3.bucket = "pgrs";
  s3.region = "us-east-1";
  s3.uriStyle = "path";
  s3.path = "/demo";
  s3.credentialsFile = "/etc/pgrs/s3";
  s3.caFile = "/etc/pgrs/ca.pem";
  s3.credentialsSecret = "keys";
  s3.caSecret = "ca";
  s3.verifyTLS = false;
  object.spec.backup->repository = BackupRepositorySpec{"", "", s3};
  // spec.bootstrap.recovery.repository takes the same struct.
  RecoverySpec& recovery = object.spec.bootstrap.emplace().recovery.emplace();
  recovery.source = "old";
  recovery.repository.s3 = s3;
  for (const std::string& text : {EncodeJson(object), EncodeYaml(object)}) {
    DecodeResult r = DecodeReplicaSet(text);
    ASSERT_TRUE(r.object) << text << Describe(r.errors);
    EXPECT_EQ(*r.object, object) << text;
  }
}

TEST(Codec, VolumeClaimRepositoryRoundTrips) {
  PostgresReplicaSet object = FullyPopulated();
  object.spec.backup->repository = BackupRepositorySpec{"", "backups", std::nullopt};
  for (const std::string& text : {EncodeJson(object), EncodeYaml(object)}) {
    DecodeResult r = DecodeReplicaSet(text);
    ASSERT_TRUE(r.object) << text << Describe(r.errors);
    EXPECT_EQ(*r.object, object) << text;
  }
}

TEST(ValidateForMode, EachModeRefusesTheOthersRepositoriesAndSecrets) {
  struct Row {
    const char* name;
    BackupRepositorySpec repository;
    Mode mode;
    std::vector<std::string> errors;
  };
  S3RepositorySpec files;
  files.credentialsFile = "/c";
  files.caFile = "/ca.pem";
  S3RepositorySpec secrets;
  secrets.credentialsSecret = "keys";
  secrets.caSecret = "ca";
  const std::vector<Row> rows = {
      {"PathInLocalMode", {"/b", "", std::nullopt}, Mode::kLocal, {}},
      {"ClaimInKubernetes", {"", "backups", std::nullopt}, Mode::kKubernetes, {}},
      {"PathInKubernetes", {"/b", "", std::nullopt}, Mode::kKubernetes,
       {"spec.backup.repository.path: is local mode's: in Kubernetes a directory of a Pod is lost with it; use "
        "volumeClaim (a ReadWriteMany PersistentVolumeClaim) or s3"}},
      {"ClaimInLocalMode", {"", "backups", std::nullopt}, Mode::kLocal,
       {"spec.backup.repository.volumeClaim: is Kubernetes' only: in local mode set path (a directory)"}},
      {"FilesInKubernetes", {"", "", files}, Mode::kKubernetes,
       {"spec.backup.repository.s3.credentialsFile: is local mode's: in Kubernetes set credentialsSecret",
        "spec.backup.repository.s3.caFile: is local mode's: in Kubernetes set caSecret"}},
      {"SecretsInLocalMode", {"", "", secrets}, Mode::kLocal,
       {"spec.backup.repository.s3.credentialsSecret: is Kubernetes' only: in local mode set credentialsFile",
        "spec.backup.repository.s3.caSecret: is Kubernetes' only: in local mode set caFile"}},
      {"FilesInLocalMode", {"", "", files}, Mode::kLocal, {}},
      {"SecretsInKubernetes", {"", "", secrets}, Mode::kKubernetes, {}},
  };
  for (const Row& row : rows) {
    PostgresReplicaSet object = FullyPopulated();
    object.spec.backup->repository = row.repository;
    object.spec.backup->encryption = false;
    std::vector<std::string> got;
    for (const auto& e : ValidateForMode(object, row.mode)) got.push_back(e.ToString());
    EXPECT_EQ(got, row.errors) << row.name;
  }
  // The restore's repository too.
  PostgresReplicaSet object = FullyPopulated();
  object.spec.backup.reset();
  object.spec.bootstrap.emplace().recovery.emplace().repository.volumeClaim = "old";
  ASSERT_EQ(ValidateForMode(object, Mode::kLocal).size(), 1u);
  EXPECT_EQ(ValidateForMode(object, Mode::kLocal)[0].path, "spec.bootstrap.recovery.repository.volumeClaim");
}

TEST(ValidateForMode, EncryptionWorksInBothModesEachWithItsPassphraseSource) {
  PostgresReplicaSet object = FullyPopulated();  // spec.backup.encryption: true
  object.spec.backup->repository = BackupRepositorySpec{"", "backups", std::nullopt};
  auto paths = [&](Mode mode) {
    std::vector<std::string> out;
    for (const auto& e : ValidateForMode(object, mode)) out.push_back(e.path);
    return out;
  };
  EXPECT_EQ(paths(Mode::kKubernetes), std::vector<std::string>{});
  object.spec.backup->repository = BackupRepositorySpec{"/b", "", std::nullopt};
  EXPECT_EQ(paths(Mode::kLocal), std::vector<std::string>{});
  object.spec.backup.reset();
  RecoverySpec& recovery = object.spec.bootstrap.emplace().recovery.emplace();
  recovery.repository.s3.emplace().credentialsFile = "/c";
  recovery.repository.encryption = true;
  recovery.encryptionPassphraseFile = "/k";
  EXPECT_EQ(paths(Mode::kLocal), std::vector<std::string>{});
  EXPECT_EQ(paths(Mode::kKubernetes), (std::vector<std::string>{"spec.bootstrap.recovery.repository.s3.credentialsFile",
                                                                 "spec.bootstrap.recovery.encryptionPassphraseFile"}));
  recovery.encryptionPassphraseFile = "";
  recovery.encryptionPassphraseSecret = "old-key";
  EXPECT_EQ(paths(Mode::kLocal), std::vector<std::string>{"spec.bootstrap.recovery.encryptionPassphraseSecret"});
}

TEST(ApplyDefaults, S3RepositoryDefaultsToHostStyleRootPathAndVerifiedTls) {
  ReplicaSetSpec spec;
  spec.backup.emplace().repository.s3.emplace();
  ApplyDefaults(spec);
  const S3RepositorySpec& s3 = *spec.backup->repository.s3;
  EXPECT_EQ(s3.uriStyle, "host");
  EXPECT_EQ(s3.path, "/");
  EXPECT_EQ(s3.verifyTLS, true);
}

TEST(ApplyDefaults, RecoveryS3RepositoryGetsTheSameDefaults) {
  ReplicaSetSpec spec;
  spec.bootstrap.emplace().recovery.emplace().repository.s3.emplace();
  ApplyDefaults(spec);
  const S3RepositorySpec& s3 = *spec.bootstrap->recovery->repository.s3;
  EXPECT_EQ(s3.uriStyle, "host");
  EXPECT_EQ(s3.path, "/");
  EXPECT_EQ(s3.verifyTLS, true);
}

TEST(Encode, RecoveryEncryptionRoundTrips) {
  PostgresReplicaSet object = FullyPopulated();
  RecoverySpec& recovery = object.spec.bootstrap.emplace().recovery.emplace();
  recovery.source = "old";
  recovery.repository.path = "/b";
  recovery.repository.encryption = true;
  recovery.encryptionPassphraseFile = "/etc/pgrs/old.key";
  recovery.encryptionPassphraseSecret = "old-key";
  for (const std::string& text : {EncodeJson(object), EncodeYaml(object)}) {
    DecodeResult r = DecodeReplicaSet(text);
    ASSERT_TRUE(r.object) << text << Describe(r.errors);
    EXPECT_EQ(*r.object, object) << text;
  }
  // spec.backup.repository has no encryption of its own: it is spec.backup.encryption.
  DecodeResult misplaced = DecodeReplicaSet(Manifest("  backup: {repository: {path: /b, encryption: true}}\n"));
  EXPECT_FALSE(misplaced.object);
  EXPECT_EQ(Describe(misplaced.errors).find("spec.backup.repository.encryption: unknown field") != std::string::npos,
            true)
      << Describe(misplaced.errors);
}

TEST(ValidateUpdate, RefusesAChangeOfBackupEncryption) {
  PostgresReplicaSet existing = FullyPopulated();
  ApplyDefaults(existing.spec);
  PostgresReplicaSet updated = existing;
  EXPECT_EQ(ValidateUpdate(existing, updated), std::vector<FieldError>{});
  updated.spec.backup->encryption = false;
  const auto errors = ValidateUpdate(existing, updated);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].path, "spec.backup.encryption");
  EXPECT_EQ(errors[0].message.rfind("cannot change once the set exists", 0), 0u) << errors[0].message;
  // Adding spec.backup (a stanza of its own from then on) is not a change.
  existing.spec.backup.reset();
  EXPECT_EQ(ValidateUpdate(existing, updated), std::vector<FieldError>{});
}

TEST(ParseEndpoint, SplitsHostAndPort) {
  EXPECT_EQ(ParseEndpoint("s3.amazonaws.com")->host, "s3.amazonaws.com");
  EXPECT_EQ(ParseEndpoint("s3.amazonaws.com")->port, 0);
  EXPECT_EQ(ParseEndpoint("localhost:9000")->host, "localhost");
  EXPECT_EQ(ParseEndpoint("localhost:9000")->port, 9000);
  for (const char* bad : {"", ":9000", "h:", "h:0", "h:65536", "https://h", "h/x", "-h", "h:9x"}) {
    EXPECT_FALSE(ParseEndpoint(bad)) << bad;
  }
}

TEST(Encode, RoundTripsThroughYaml) {
  const PostgresReplicaSet object = FullyPopulated();
  const std::string yaml = EncodeYaml(object);
  DecodeResult r = DecodeReplicaSet(yaml);
  ASSERT_TRUE(r.object) << yaml << Describe(r.errors);
  EXPECT_EQ(*r.object, object) << yaml;
}

TEST(Encode, RoundTripsStringsThatLookLikeOtherTypes) {
  PostgresReplicaSet object = DefaultedDemo();
  const std::string tricky[] = {"true", "False", "yes", "no", "on", "off", "y", "n", "null", "~", "", "123",
                                "-1", "+1", "1.5", ".5", "1e3", ".inf", "-.inf", ".nan", "0x1f", "0o17",
                                "1_000", "1:30", "2024-01-01", "#comment", "- item", "key: value", "[a]",
                                "{a}", "2024-05-01T10:00:00Z", "1 2", "1Gi", "0/5000060", "*alias", "&anchor", "!tag", "|", ">", "@x", "`x", "%x", "'q'",
                                "\"q\"", " lead", "trail ", "tab\there", "multi\nline\n", "\\back", "é"};
  int i = 0;
  for (const std::string& text : tricky) object.metadata.annotations["k" + std::to_string(i++)] = text;
  // Keys too: parameter names are validated later, decoding keeps them.
  for (const std::string& text : tricky) object.spec.postgres.parameters[text + "key"] = text;
  object.spec.postgres.parameters["true"] = "1";
  object.spec.postgres.parameters["123"] = "1";
  for (const std::string& text : {EncodeYaml(object), EncodeJson(object), EncodeJson(object, true)}) {
    DecodeResult r = DecodeReplicaSet(text);
    ASSERT_TRUE(r.object) << text << Describe(r.errors);
    EXPECT_EQ(*r.object, object) << text;
  }
}

TEST(Encode, RoundTripsExtremeNumbers) {
  PostgresReplicaSet object = DefaultedDemo();
  object.metadata.generation = std::numeric_limits<int64_t>::min();
  object.spec.failover.maxLagBytes = std::numeric_limits<int64_t>::max();
  InstanceStatus instance;
  instance.name = "demo-1";
  instance.lagBytes = std::numeric_limits<int64_t>::min();
  instance.lagSeconds = 5e-324;  // smallest subnormal
  instance.port = std::numeric_limits<int>::max();
  object.status.instances = {instance, instance};
  object.status.instances[1].lagSeconds = std::numeric_limits<double>::max();
  for (const std::string& text : {EncodeYaml(object), EncodeJson(object)}) {
    DecodeResult r = DecodeReplicaSet(text);
    ASSERT_TRUE(r.object) << text << Describe(r.errors);
    EXPECT_EQ(*r.object, object) << text;
  }
}

TEST(Encode, OmitsUnsetFieldsButKeepsTheEssentials) {
  PostgresReplicaSet object;
  object.metadata.name = "demo";
  EXPECT_EQ(EncodeJson(object),
            R"({"apiVersion":"pgrs.dev/v1alpha1","kind":"PostgresReplicaSet","metadata":{"name":"demo"},"spec":{}})");
  EXPECT_EQ(EncodeYaml(object),
            "apiVersion: pgrs.dev/v1alpha1\nkind: PostgresReplicaSet\nmetadata:\n  name: demo\nspec: {}\n");
  DecodeResult r = DecodeReplicaSet(EncodeYaml(object));
  ASSERT_TRUE(r.object) << Describe(r.errors);
  EXPECT_EQ(*r.object, object);
}

TEST(Encode, DefaultedSpecIsReadable) {
  const std::string yaml = EncodeYaml(DefaultedDemo(3));
  EXPECT_NE(yaml.find("  instances: 3\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("    mode: async\n"), std::string::npos) << yaml;
  EXPECT_NE(yaml.find("    size: 1Gi\n"), std::string::npos) << yaml;  // no quotes needed for people
  EXPECT_EQ(yaml.find("status"), std::string::npos) << yaml;
}

TEST(Encode, PrettyJsonIsIndentedAndEqualToCompact) {
  const PostgresReplicaSet object = FullyPopulated();
  const std::string pretty = EncodeJson(object, true);
  EXPECT_EQ(pretty.rfind("{\n  \"apiVersion\": \"pgrs.dev/v1alpha1\",\n", 0), 0u) << pretty;
  std::string squeezed;
  bool inString = false;
  for (size_t i = 0; i < pretty.size(); ++i) {
    const char c = pretty[i];
    if (c == '"' && (i == 0 || pretty[i - 1] != '\\')) inString = !inString;
    if (!inString && (c == ' ' || c == '\n')) continue;
    squeezed += c;
  }
  EXPECT_EQ(squeezed, EncodeJson(object));
}

TEST(StatusJson, RoundTrips) {
  const ReplicaSetStatus status = FullyPopulated().status;
  Result<ReplicaSetStatus> decoded = DecodeStatusJson(EncodeStatusJson(status));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, status);
}

TEST(StatusJson, FailoverHistoryIsWrittenUnderItsApiNames) {
  ReplicaSetStatus status;
  status.currentPrimary = "demo-1";
  status.targetPrimary = "demo-2";
  status.promotionReason = "PostmasterDown";
  status.promotionStarted = "2026-11-28T04:05:07.000Z";
  status.primaryLostSince = "2026-11-28T04:05:06.123Z";
  InstanceStatus old;
  old.name = "demo-1";
  old.fenced = true;
  InstanceStatus healthy;
  healthy.name = "demo-2";
  status.instances = {old, healthy};
  status.failovers = {FailoverRecord{"2026-11-27T01:00:00.500Z", "demo-2", "demo-1", "Switchover", 0, 2}};
  EXPECT_EQ(EncodeStatusJson(status),
            R"({"currentPrimary":"demo-1","targetPrimary":"demo-2","promotionReason":"PostmasterDown",)"
            R"("promotionStarted":"2026-11-28T04:05:07.000Z","primaryLostSince":"2026-11-28T04:05:06.123Z",)"
            R"("readyInstances":0,"instances":[{"name":"demo-1","fenced":true},{"name":"demo-2"}],)"
            R"("failovers":[{"time":"2026-11-27T01:00:00.500Z","from":"demo-2","to":"demo-1",)"
            R"("reason":"Switchover","unavailableSeconds":0,"timeline":2}]})");
  Result<ReplicaSetStatus> decoded = DecodeStatusJson(EncodeStatusJson(status));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, status);
}

TEST(StatusJson, FencedFalseMayBeWrittenOut) {
  Result<ReplicaSetStatus> decoded = DecodeStatusJson(R"({"instances":[{"name":"demo-1","fenced":false}]})");
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  ASSERT_EQ(decoded->instances.size(), 1u);
  EXPECT_FALSE(decoded->instances[0].fenced);
}

TEST(StatusJson, EmptyStatusRoundTrips) {
  EXPECT_EQ(EncodeStatusJson(ReplicaSetStatus{}), R"({"readyInstances":0})");
  Result<ReplicaSetStatus> decoded = DecodeStatusJson(EncodeStatusJson(ReplicaSetStatus{}));
  ASSERT_TRUE(decoded.ok()) << decoded.status().message();
  EXPECT_EQ(*decoded, ReplicaSetStatus{});
}

TEST(StatusJson, RejectsBadInputAsInvalid) {
  struct Row {
    std::string text, message;
  };
  const Row rows[] = {
      {"{\"phase\": 1}", "invalid status: status.phase: must be a string"},
      {"{\"phases\": \"x\"}", "invalid status: status.phases: unknown field"},
      {"[]", "invalid status: status: must be a map"},
      {"{", "invalid status: <document>: is not valid YAML or JSON: line 1, column 1: end of map flow not found"},
      {"", "invalid status: <document>: must hold exactly one object, found 0 YAML documents"},
  };
  for (const Row& row : rows) {
    Result<ReplicaSetStatus> decoded = DecodeStatusJson(row.text);
    ASSERT_FALSE(decoded.ok()) << row.text;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalid);
    EXPECT_EQ(decoded.status().message(), row.message);
  }
}

// ---------------------------------------------------------------------------
// Time

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using std::chrono::system_clock;

// 2026-11-28T04:05:06Z
const system_clock::time_point kSomeSecond{seconds{1795838706}};

TEST(FormatTimeMillis, WritesUtcWithThreeFractionalDigits) {
  EXPECT_EQ(FormatTimeMillis(kSomeSecond), "2026-11-28T04:05:06.000Z");
  EXPECT_EQ(FormatTimeMillis(kSomeSecond + milliseconds{123}), "2026-11-28T04:05:06.123Z");
  EXPECT_EQ(FormatTimeMillis(system_clock::time_point{}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMillis(system_clock::time_point{seconds{951782400}}), "2000-02-29T00:00:00.000Z");
}

TEST(FormatTimeMillis, DropsSubMillisecondsTowardThePast) {
  EXPECT_EQ(FormatTimeMillis(kSomeSecond + milliseconds{999} + std::chrono::microseconds{999}),
            "2026-11-28T04:05:06.999Z");
  // Before the epoch, truncation toward zero would name a later moment.
  EXPECT_EQ(FormatTimeMillis(system_clock::time_point{} - std::chrono::microseconds{1}),
            "1969-12-31T23:59:59.999Z");
}

TEST(ParseTime, ReadsWholeSecondsAndFractions) {
  EXPECT_EQ(ParseTime("2026-11-28T04:05:06Z"), kSomeSecond);
  EXPECT_EQ(ParseTime("2026-11-28T04:05:06.123Z"), kSomeSecond + milliseconds{123});
  EXPECT_EQ(ParseTime("2026-11-28T04:05:06.5Z"), kSomeSecond + milliseconds{500});
  // Kubernetes' MicroTime (Lease renewTime) has six digits.
  EXPECT_EQ(ParseTime("2026-11-28T04:05:06.123456Z"), kSomeSecond + std::chrono::microseconds{123456});
  EXPECT_EQ(ParseTime("1970-01-01T00:00:00Z"), system_clock::time_point{});
  EXPECT_EQ(ParseTime("1969-12-31T23:59:59.999Z"), system_clock::time_point{} - milliseconds{1});
  EXPECT_EQ(ParseTime("2024-02-29T23:59:59Z"), system_clock::time_point{seconds{1709251199}});
  // Nine digits are kept as far as the clock can (nanoseconds here).
  const auto nine = ParseTime("2026-11-28T04:05:06.000000001Z");
  ASSERT_TRUE(nine);
  EXPECT_EQ(*nine - kSomeSecond, std::chrono::duration_cast<system_clock::duration>(nanoseconds{1}));
}

TEST(ParseTime, RoundTripsWithFormatTimeMillis) {
  for (const std::string text : {"2026-11-28T04:05:06.123Z", "1970-01-01T00:00:00.000Z", "1999-12-31T23:59:59.999Z",
                                 "2000-02-29T12:00:00.001Z", "1969-07-20T20:17:40.000Z", "2200-01-01T00:00:00.010Z"}) {
    const auto parsed = ParseTime(text);
    ASSERT_TRUE(parsed) << text;
    EXPECT_EQ(FormatTimeMillis(*parsed), text);
  }
  for (const system_clock::time_point t :
       {kSomeSecond, kSomeSecond + nanoseconds{123456789}, system_clock::time_point{} - nanoseconds{1},
        system_clock::time_point{seconds{4102444799}} + milliseconds{999}}) {
    const auto parsed = ParseTime(FormatTimeMillis(t));
    ASSERT_TRUE(parsed) << FormatTimeMillis(t);
    EXPECT_EQ(*parsed, std::chrono::floor<milliseconds>(t)) << FormatTimeMillis(t);
  }
}

TEST(ParseTime, RefusesAnythingElse) {
  for (const std::string text : {
           "",
           "Z",
           "2026-11-28",
           "2026-11-28T04:05:06",        // no zone
           "2026-11-28T04:05:06+00:00",  // offsets are not written by Kubernetes or pgrs
           "2026-11-28T04:05:06z",
           "2026-11-28t04:05:06Z",
           "2026-11-28 04:05:06Z",
           "2026-11-28T04:05:06.Z",
           "2026-11-28T04:05:06.1234567890Z",
           "2026-11-28T04:05:06,123Z",
           "2026-11-28T04:05:06.12aZ",
           "2026-11-28T04:05:06.-12Z",
           "2026-11-28T04:05:06Z ",
           " 2026-11-28T04:05:06Z",
           "2026-11-28T04:05:6Z",
           "26-11-28T04:05:06Z",
           "+2026-11-28T04:05:06Z",
           "2026-1-28T04:05:06Z",
           "2026-13-01T00:00:00Z",
           "2026-00-01T00:00:00Z",
           "2026-11-00T00:00:00Z",
           "2026-02-29T00:00:00Z",  // not a leap year
           "2026-11-31T00:00:00Z",
           "2026-11-28T24:00:00Z",
           "2026-11-28T04:60:00Z",
           "2026-11-28T23:59:60Z",  // leap seconds: the system clock has none
           "2026-11-28T-4:05:06Z",
           "9999-12-31T23:59:59Z",  // beyond the clock's range
           "0001-01-01T00:00:00Z",
           "2026-11-28T04:05:06ZZ",
       }) {
    EXPECT_EQ(ParseTime(text), std::nullopt) << text;
  }
}

// ---------------------------------------------------------------------------
// Examples

std::filesystem::path SourceDir() {
  if (const char* dir = std::getenv("PGRS_SOURCE_DIR"); dir != nullptr && *dir != '\0') return dir;
  // Run by hand rather than by ctest: this file is operator/api/types_test.cc.
  return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path();
}

TEST(Examples, EveryExampleManifestParses) {
  const std::filesystem::path dir = SourceDir() / "manifests" / "examples";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string ext = entry.path().extension().string();
    if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 2u);
  for (const auto& file : files) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    ParseResult r = ParseManifest(text.str());
    EXPECT_TRUE(r.object) << file << ": " << (r.errors.empty() ? "" : r.errors[0]);
    // The example survives being stored and read back.
    if (r.object) {
      DecodeResult again = DecodeReplicaSet(EncodeYaml(*r.object));
      ASSERT_TRUE(again.object) << file << Describe(again.errors);
      EXPECT_EQ(*again.object, *r.object) << file;
    }
  }
}

TEST(Examples, MinimalIsDemoWithThreeInstances) {
  std::ifstream in(SourceDir() / "manifests" / "examples" / "minimal.yaml");
  std::stringstream text;
  text << in.rdbuf();
  ParseResult r = ParseManifest(text.str());
  ASSERT_TRUE(r.object);
  EXPECT_EQ(r.object->metadata.name, "demo");
  EXPECT_EQ(r.object->spec.instances, 3);
  EXPECT_EQ(r.object->spec.local.basePort, kDefaultBasePort);
}

TEST(Examples, FullSetsEverySpecField) {
  std::ifstream in(SourceDir() / "manifests" / "examples" / "full.yaml");
  std::stringstream text;
  text << in.rdbuf();
  DecodeResult r = DecodeReplicaSet(text.str());
  ASSERT_TRUE(r.object) << Describe(r.errors);
  const ReplicaSetSpec& s = r.object->spec;
  EXPECT_TRUE(s.instances && s.replication.syncReplicas && s.replication.slots && s.failover.enabled &&
              s.failover.delaySeconds && s.failover.maxLagBytes && s.failover.detectionSeconds &&
              s.failover.leaseDurationSeconds && s.failover.renewDeadlineSeconds && s.failover.retryPeriodSeconds &&
              s.local.basePort);
  EXPECT_FALSE(s.replication.dataDurability.empty());
  EXPECT_FALSE(s.replication.maxSlotWalKeepSize.empty());
  EXPECT_TRUE(s.postgres.dataChecksums.has_value());
  EXPECT_NE(s.postgres.version, 0);
  EXPECT_FALSE(s.postgres.parameters.empty());
  EXPECT_FALSE(s.postgres.pgHBA.empty());
  EXPECT_FALSE(s.replication.mode.empty());
  EXPECT_FALSE(s.primary.empty());
  EXPECT_FALSE(s.storage.size.empty());
  EXPECT_FALSE(s.storage.storageClassName.empty());
  // Nothing in it is a default that ApplyDefaults would have to fill in.
  ReplicaSetSpec defaulted = s;
  ApplyDefaults(defaulted);
  EXPECT_EQ(defaulted, s);
}

TEST(FormatTime, WholeSecondsInUtc) {
  using namespace std::chrono;
  const auto t = system_clock::time_point(milliseconds(1795840002831));
  EXPECT_EQ(FormatTime(t), "2026-11-28T04:26:42Z");
  EXPECT_EQ(FormatTimeMillis(t), "2026-11-28T04:26:42.831Z");
  EXPECT_EQ(ParseTime(FormatTime(t)), floor<seconds>(t));
}

}  // namespace
}  // namespace pgrs::api
