// manifests/ (rendered by `kubectl kustomize`) and the Dockerfile: what
// `kubectl apply -k manifests/` would create, checked without a cluster.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "e2e/install/openapi_schema.h"
#include "e2e/install/test_util.h"

namespace pgrs::openapi {
namespace {

using install_test::ReadSource;
using install_test::RunShell;
using install_test::SourceDir;
using ::testing::IsEmpty;
using web::json::value;

std::string Str(const value& v, const std::string& key) {
  return v.is_object() && v.has_field(key) && v.at(key).is_string() ? v.at(key).as_string() : "";
}

const std::vector<value>& Rendered() {
  static const std::vector<value>* docs = [] {
    auto* out = new std::vector<value>;
    const CommandResult which = RunShell("command -v kubectl");
    if (!which.ok()) {
      ADD_FAILURE() << "kubectl (v1.21+, with kustomize) is not on PATH: the install tests render manifests/ "
                       "with `kubectl kustomize`; see scripts/install-deps.sh";
      return out;
    }
    const CommandResult render = RunShell("kubectl kustomize manifests/ 2>&1 >\"${TMPDIR:-/tmp}/pgrs-manifests-$$.yaml\" "
                                          "&& cat \"${TMPDIR:-/tmp}/pgrs-manifests-$$.yaml\"; "
                                          "rc=$?; rm -f \"${TMPDIR:-/tmp}/pgrs-manifests-$$.yaml\"; exit $rc");
    if (!render.ok()) {
      ADD_FAILURE() << "kubectl kustomize manifests/ failed: " << render.output;
      return out;
    }
    Result<std::vector<value>> parsed = YamlToJson(render.output);
    if (!parsed.ok()) {
      ADD_FAILURE() << "kubectl kustomize manifests/ printed no YAML: " << parsed.status().ToString();
      return out;
    }
    *out = std::move(parsed).value();
    return out;
  }();
  return *docs;
}

const value* Find(const std::string& kind, const std::string& name) {
  for (const value& doc : Rendered()) {
    if (Str(doc, "kind") == kind && Str(doc.at("metadata"), "name") == name) return &doc;
  }
  return nullptr;
}

TEST(ManifestsTest, RendersObjectsWithApiVersionKindAndName) {
  ASSERT_FALSE(Rendered().empty());
  std::multiset<std::string> kinds;
  for (const value& doc : Rendered()) {
    EXPECT_FALSE(Str(doc, "apiVersion").empty()) << doc.serialize().substr(0, 200);
    EXPECT_FALSE(Str(doc, "kind").empty()) << doc.serialize().substr(0, 200);
    ASSERT_TRUE(doc.has_field("metadata"));
    EXPECT_FALSE(Str(doc.at("metadata"), "name").empty()) << Str(doc, "kind");
    kinds.insert(Str(doc, "kind"));
  }
  EXPECT_EQ(kinds, (std::multiset<std::string>{"Namespace", "CustomResourceDefinition", "CustomResourceDefinition", "ServiceAccount",
                                                "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"}));
  EXPECT_NE(Find("Namespace", "pgrs-system"), nullptr);
  EXPECT_NE(Find("ServiceAccount", "pgrs-operator"), nullptr);
  EXPECT_NE(Find("Deployment", "pgrs-operator"), nullptr);
}

TEST(ManifestsTest, NamespacedObjectsLiveInPgrsSystem) {
  for (const value& doc : Rendered()) {
    const std::string kind = Str(doc, "kind");
    const bool clusterScoped = kind == "Namespace" || kind == "CustomResourceDefinition" || kind == "ClusterRole" ||
                               kind == "ClusterRoleBinding";
    EXPECT_EQ(Str(doc.at("metadata"), "namespace"), clusterScoped ? "" : "pgrs-system") << kind;
  }
}

// One source of truth: the CRDs in the install are the files in crds/.
TEST(ManifestsTest, CrdsAreTheOnesInCrdsDirectory) {
  for (const char* name : {"postgresreplicasets", "postgresbackups"}) {
    const value* rendered = Find("CustomResourceDefinition", std::string(name) + ".pgrs.dev");
    ASSERT_NE(rendered, nullptr) << name;
    Result<std::vector<value>> file = YamlToJson(ReadSource(std::string("crds/pgrs.dev_") + name + ".yaml"));
    ASSERT_TRUE(file.ok()) << name;
    EXPECT_EQ(CanonicalJson(rendered->at("spec")), CanonicalJson(file->front().at("spec"))) << name;
  }
}

// The flags `pgrs operator --help` lists ("  --name ...").
std::set<std::string> OperatorFlags() {
  const char* binary = std::getenv("PGRS_BINARY");
  EXPECT_NE(binary, nullptr) << "PGRS_BINARY is not set (pgrs_test sets it)";
  if (binary == nullptr) return {};
  const CommandResult help = RunShell(std::string("'") + binary + "' operator --help");
  EXPECT_TRUE(help.ok()) << help.output;
  std::set<std::string> flags;
  static const std::regex kFlag(R"(^\s+(--[a-z][a-z0-9-]*))");
  std::istringstream lines(help.output);
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kFlag)) flags.insert(m[1]);
  }
  EXPECT_GT(flags.size(), 5u) << help.output;
  return flags;
}

const value* OperatorContainer() {
  const value* deployment = Find("Deployment", "pgrs-operator");
  if (deployment == nullptr) return nullptr;
  for (const value& c : deployment->at("spec").at("template").at("spec").at("containers").as_array()) {
    if (Str(c, "name") == "operator") return &c;
  }
  return nullptr;
}

TEST(ManifestsTest, DeploymentPassesOnlyFlagsThatPgrsOperatorHas) {
  const value* container = OperatorContainer();
  ASSERT_NE(container, nullptr);
  const std::set<std::string> known = OperatorFlags();
  const auto& args = container->at("args").as_array();
  ASSERT_GT(args.size(), 0u);
  EXPECT_EQ(args.at(0).as_string(), "operator");
  std::set<std::string> passed;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string arg = args.at(i).as_string();
    ASSERT_EQ(arg.rfind("--", 0), 0u) << arg;
    const std::string flag = arg.substr(0, arg.find('='));
    passed.insert(flag);
    EXPECT_TRUE(known.count(flag)) << "the Deployment passes " << flag << ", which `pgrs operator --help` does not list";
  }
  for (const char* wanted : {"--leader-elect", "--leader-election-namespace", "--metrics-bind-address",
                             "--health-probe-bind-address", "--log-format", "--instance-image"}) {
    EXPECT_TRUE(passed.count(wanted)) << wanted;
  }
}

// The chart's Deployment template (not rendered: no helm here) passes
// flags the same way, one "- --flag=..." per line.
TEST(ManifestsTest, ChartDeploymentPassesOnlyFlagsThatPgrsOperatorHas) {
  const std::set<std::string> known = OperatorFlags();
  const std::string chart = ReadSource("charts/pgrs-operator/templates/deployment.yaml");
  static const std::regex kFlag(R"(- (--[a-z][a-z0-9-]*))");
  int flags = 0;
  for (auto it = std::sregex_iterator(chart.begin(), chart.end(), kFlag); it != std::sregex_iterator(); ++it) {
    ++flags;
    const std::string flag = (*it)[1];
    EXPECT_TRUE(known.count(flag)) << "the chart passes " << flag << ", which `pgrs operator --help` does not list";
  }
  EXPECT_GT(flags, 8);
}

TEST(ManifestsTest, DeploymentRunsTwoHardenedReplicasWithProbes) {
  const value* deployment = Find("Deployment", "pgrs-operator");
  ASSERT_NE(deployment, nullptr);
  EXPECT_EQ(deployment->at("spec").at("replicas").as_integer(), 2);
  const value& pod = deployment->at("spec").at("template").at("spec");
  EXPECT_EQ(Str(pod, "serviceAccountName"), "pgrs-operator");
  EXPECT_TRUE(pod.at("securityContext").at("runAsNonRoot").as_bool());
  EXPECT_EQ(Str(pod.at("securityContext").at("seccompProfile"), "type"), "RuntimeDefault");
  EXPECT_TRUE(pod.at("affinity").has_field("podAntiAffinity"));
  const value* c = OperatorContainer();
  ASSERT_NE(c, nullptr);
  const value& sc = c->at("securityContext");
  EXPECT_TRUE(sc.at("readOnlyRootFilesystem").as_bool());
  EXPECT_FALSE(sc.at("allowPrivilegeEscalation").as_bool());
  EXPECT_EQ(sc.at("capabilities").at("drop").serialize(), R"(["ALL"])");
  EXPECT_EQ(Str(c->at("livenessProbe").at("httpGet"), "path"), "/healthz");
  EXPECT_EQ(Str(c->at("readinessProbe").at("httpGet"), "path"), "/readyz");
  std::map<std::string, int64_t> ports;
  for (const value& p : c->at("ports").as_array()) ports[Str(p, "name")] = p.at("containerPort").as_integer();
  EXPECT_EQ(ports["metrics"], 8080);
  EXPECT_EQ(ports["health"], 8081);
  EXPECT_EQ(Str(c->at("livenessProbe").at("httpGet"), "port"), "health");
  EXPECT_TRUE(c->at("resources").has_field("requests"));
  bool podNamespace = false;
  std::string instanceImage;
  for (const value& e : c->at("env").as_array()) {
    if (Str(e, "name") == "POD_NAMESPACE") {
      podNamespace = Str(e.at("valueFrom").at("fieldRef"), "fieldPath") == "metadata.namespace";
    }
    if (Str(e, "name") == "PGRS_INSTANCE_IMAGE") instanceImage = Str(e, "value");
  }
  EXPECT_TRUE(podNamespace);
  // The kustomize replacement keeps the instances on the operator's image.
  EXPECT_EQ(instanceImage, Str(*c, "image"));
}

TEST(ManifestsTest, MetricsServiceSelectsTheOperatorOn8080) {
  const value* service = Find("Service", "pgrs-operator-metrics");
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->at("spec").at("ports").at(0).at("port").as_integer(), 8080);
  const value* deployment = Find("Deployment", "pgrs-operator");
  ASSERT_NE(deployment, nullptr);
  const value& labels = deployment->at("spec").at("template").at("metadata").at("labels");
  for (const auto& [key, v] : service->at("spec").at("selector").as_object()) {
    EXPECT_EQ(Str(labels, key), v.as_string()) << key;
  }
}

// "group/resource verb" for every permission a ClusterRole grants.
std::set<std::string> Grants(const value& role) {
  std::set<std::string> out;
  for (const value& rule : role.at("rules").as_array()) {
    for (const value& group : rule.at("apiGroups").as_array()) {
      for (const value& resource : rule.at("resources").as_array()) {
        for (const value& verb : rule.at("verbs").as_array()) {
          out.insert(group.as_string() + "/" + resource.as_string() + " " + verb.as_string());
        }
      }
    }
  }
  return out;
}

// What the operator does (operator/kube/OBJECTS.md, README.md): exactly
// these permissions, no more (least privilege), no fewer.
std::set<std::string> OperatorPermissions() {
  const std::vector<std::pair<std::string, std::vector<std::string>>> table = {
      {"pgrs.dev/postgresreplicasets", {"get", "list", "watch"}},
      {"pgrs.dev/postgresreplicasets/status", {"get", "update", "patch"}},
      {"pgrs.dev/postgresbackups", {"get", "list", "watch", "create"}},
      {"pgrs.dev/postgresbackups/status", {"get", "update", "patch"}},
      {"/pods", {"get", "list", "watch", "create", "delete", "patch"}},
      {"/persistentvolumeclaims", {"get", "list", "watch", "create", "delete"}},
      {"/services", {"get", "list", "watch", "create", "update", "patch", "delete"}},
      {"/secrets", {"get", "list", "watch", "create", "update"}},
      {"/serviceaccounts", {"get", "list", "watch", "create"}},
      {"policy/poddisruptionbudgets", {"get", "list", "watch", "create", "update", "patch"}},
      {"rbac.authorization.k8s.io/roles", {"get", "list", "watch", "create"}},
      {"rbac.authorization.k8s.io/rolebindings", {"get", "list", "watch", "create"}},
      {"coordination.k8s.io/leases", {"get", "list", "watch", "create", "update", "delete"}},
      {"/events", {"create", "patch"}},
  };
  std::set<std::string> out;
  for (const auto& [resource, verbs] : table) {
    for (const std::string& verb : verbs) out.insert(resource + " " + verb);
  }
  return out;
}

TEST(ManifestsTest, ClusterRoleGrantsExactlyWhatTheOperatorDoes) {
  const value* role = Find("ClusterRole", "pgrs-operator");
  ASSERT_NE(role, nullptr);
  const std::set<std::string> granted = Grants(*role);
  const std::set<std::string> wanted = OperatorPermissions();
  for (const std::string& p : wanted) EXPECT_TRUE(granted.count(p)) << "missing: " << p;
  for (const std::string& p : granted) EXPECT_TRUE(wanted.count(p)) << "more than needed: " << p;
  // The instances' Role grants leases get/update: Kubernetes lets the
  // operator create it only when it holds those itself.
  EXPECT_TRUE(granted.count("coordination.k8s.io/leases get") && granted.count("coordination.k8s.io/leases update"));

  const value* binding = Find("ClusterRoleBinding", "pgrs-operator");
  ASSERT_NE(binding, nullptr);
  EXPECT_EQ(Str(binding->at("roleRef"), "name"), "pgrs-operator");
  const value& subject = binding->at("subjects").at(0);
  EXPECT_EQ(Str(subject, "kind"), "ServiceAccount");
  EXPECT_EQ(Str(subject, "name"), "pgrs-operator");
  EXPECT_EQ(Str(subject, "namespace"), "pgrs-system");
}

TEST(ManifestsTest, EveryRbacRuleSaysWhy) {
  const std::string text = ReadSource("manifests/base/rbac.yaml");
  std::istringstream lines(text);
  std::string previous;
  int rules = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("- apiGroups:", 0) == 0) {
      ++rules;
      EXPECT_EQ(previous.rfind("#", 0), 0u) << "no comment above: " << line;
    }
    previous = line;
  }
  EXPECT_EQ(rules, 13);  // roles and rolebindings share one
}

// ---------------------------------------------------------------------------
// Dockerfile: cannot be built here (no container engine); what can be read
// is checked.

struct Stage {
  std::string from;
  std::string text;  // the stage's instructions, continuation lines joined
};

std::vector<Stage> DockerStages() {
  std::string text = ReadSource("Dockerfile");
  text = std::regex_replace(text, std::regex("\\\\\n"), " ");
  std::vector<Stage> stages;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("#", 0) == 0) continue;
    if (line.rfind("FROM ", 0) == 0) {
      stages.push_back(Stage{line.substr(5), ""});
    } else if (!stages.empty()) {
      stages.back().text += line + "\n";
    }
  }
  return stages;
}

std::vector<std::string> AptPackages(const std::string& stageText) {
  std::vector<std::string> out;
  static const std::regex kInstall(R"(apt-get install([^&\n]*))");
  for (auto it = std::sregex_iterator(stageText.begin(), stageText.end(), kInstall); it != std::sregex_iterator();
       ++it) {
    std::istringstream words((*it)[1].str());
    for (std::string w; words >> w;) {
      if (w[0] != '-') out.push_back(w);
    }
  }
  return out;
}

TEST(DockerfileTest, BuildsPgrsOnDebian12AndRunsItAsUid999) {
  const std::vector<Stage> stages = DockerStages();
  ASSERT_EQ(stages.size(), 2u);
  EXPECT_EQ(stages[0].from, "debian:12 AS build");
  EXPECT_EQ(stages[1].from, "debian:12-slim");
  EXPECT_THAT(stages[0].text, ::testing::HasSubstr("--target pgrs "));
  const std::string& runtime = stages[1].text;
  EXPECT_THAT(runtime, ::testing::HasSubstr("COPY --from=build /build/operator/pgrs /usr/local/bin/pgrs"));
  EXPECT_THAT(runtime, ::testing::HasSubstr("USER 999\n"));
  EXPECT_THAT(runtime, ::testing::HasSubstr("ENTRYPOINT [\"/usr/local/bin/pgrs\"]"));
  // The user first, so that the postgresql package reuses uid/gid 999.
  const size_t user = runtime.find("useradd --system --uid 999 --gid 999");
  const size_t postgres = runtime.find("postgresql-15");
  ASSERT_NE(user, std::string::npos);
  ASSERT_NE(postgres, std::string::npos);
  EXPECT_LT(user, postgres);
  EXPECT_THAT(runtime, ::testing::HasSubstr("groupadd --system --gid 999 postgres"));
}

TEST(DockerfileTest, EveryPackageItInstallsExistsInDebian) {
  for (const Stage& stage : DockerStages()) {
    const std::vector<std::string> packages = AptPackages(stage.text);
    ASSERT_FALSE(packages.empty()) << stage.from;
    // One apt-cache call per stage (each takes seconds). With several
    // names it exits 0 when any is found, so count the records instead.
    std::string all;
    for (const std::string& p : packages) all += " '" + p + "'";
    const CommandResult shown =
        RunShell("apt-cache show --no-all-versions" + all + " 2>/dev/null | sed -n 's/^Package: //p'");
    std::set<std::string> found;
    std::istringstream names(shown.output);
    for (std::string name; names >> name;) found.insert(name);
    for (const std::string& p : packages) EXPECT_TRUE(found.count(p)) << stage.from << ": no Debian package " << p;
  }
}

// The builder has every -dev package scripts/install-deps.sh installs for a
// build here, but clang's sanitizer and libFuzzer runtime: only
// scripts/fuzz.sh and scripts/sanitize.sh use it, the image is built by g++.
TEST(DockerfileTest, BuilderHasTheDevelopmentPackagesOfInstallDeps) {
  const std::vector<Stage> stages = DockerStages();
  ASSERT_FALSE(stages.empty());
  const std::vector<std::string> builder = AptPackages(stages[0].text);
  const std::string deps = ReadSource("scripts/install-deps.sh");
  static const std::regex kDev(R"(\b(lib[a-z0-9+.-]*-dev)\b)");
  int found = 0;
  for (auto it = std::sregex_iterator(deps.begin(), deps.end(), kDev); it != std::sregex_iterator(); ++it) {
    if ((*it)[1].str() == "libclang-rt-14-dev") continue;
    ++found;
    EXPECT_THAT(builder, ::testing::Contains((*it)[1].str()));
  }
  EXPECT_GT(found, 5);
}

// Every shared library the pgrs binary needs directly comes from a package
// the runtime stage installs (or from debian:12-slim itself).
TEST(DockerfileTest, RuntimeStageHasThePackagesOfEveryLibraryPgrsLinks) {
  const char* binary = std::getenv("PGRS_BINARY");
  ASSERT_NE(binary, nullptr);
  const std::vector<Stage> stages = DockerStages();
  ASSERT_EQ(stages.size(), 2u);
  std::set<std::string> runtime;
  for (const std::string& p : AptPackages(stages[1].text)) runtime.insert(p);
  for (const char* base : {"libc6", "libgcc-s1", "libstdc++6", "zlib1g"}) runtime.insert(base);
  const CommandResult libs = RunShell(std::string("ldd '") + binary + "' | awk '/=> \\//{print $3}'");
  ASSERT_TRUE(libs.ok()) << libs.output;
  const CommandResult needed = RunShell(std::string("objdump -p '") + binary + "' | awk '/NEEDED/{print $2}'");
  ASSERT_TRUE(needed.ok()) << needed.output;
  std::set<std::string> direct;
  std::istringstream names(needed.output);
  for (std::string n; names >> n;) direct.insert(n);
  EXPECT_FALSE(direct.empty());
  // dpkg knows a library by the path its package ships it at: /lib/... or
  // /usr/lib/... (merged /usr makes both work for ld.so). One dpkg call.
  std::map<std::string, std::string> fileOf;  // candidate path -> library file name
  std::istringstream paths(libs.output);
  for (std::string path; paths >> path;) {
    const std::string file = path.substr(path.rfind('/') + 1);
    if (!direct.count(file)) continue;
    const std::string usr = path.rfind("/usr/", 0) == 0 ? path.substr(4) : "/usr" + path;
    fileOf[path] = file;
    fileOf[usr] = file;
  }
  std::string query;
  for (const auto& [path, file] : fileOf) query += " '" + path + "'";
  const CommandResult owners = RunShell("dpkg -S" + query + " 2>/dev/null");
  std::map<std::string, std::string> packageOf;  // library file name -> package
  std::istringstream lines(owners.output);
  for (std::string line; std::getline(lines, line);) {
    const size_t sep = line.find(": ");
    if (sep == std::string::npos) continue;
    const std::string package = line.substr(0, line.find(':'));
    const auto it = fileOf.find(line.substr(sep + 2));
    if (it != fileOf.end()) packageOf[it->second] = package;
  }
  std::set<std::string> resolved;  // ldd found them (the dynamic loader itself it lists apart)
  for (const auto& [path, file] : fileOf) resolved.insert(file);
  EXPECT_GT(resolved.size(), 4u);
  for (const std::string& file : resolved) {
    ASSERT_TRUE(packageOf.count(file)) << "no package owns " << file << ": " << owners.output;
    EXPECT_TRUE(runtime.count(packageOf[file]))
        << file << " comes from " << packageOf[file] << ", which the runtime stage lacks";
  }
}

TEST(DockerfileTest, DockerignoreKeepsBuildTreesAndGitOut) {
  const std::string ignore = ReadSource(".dockerignore");
  for (const char* pattern : {"\nbuild\n", "\nbuild-*\n", "\n.git\n"}) {
    EXPECT_THAT("\n" + ignore, ::testing::HasSubstr(pattern));
  }
}

}  // namespace
}  // namespace pgrs::openapi
