// The Helm chart (charts/pgrs-operator), checked statically: helm is not
// available here, so templates are not rendered. What is checked: the CRD
// copy, values referenced by templates exist, every value is documented,
// template actions are balanced and includes name defined templates, the
// RBAC rules match manifests/, and the alerts use metrics the operator
// exposes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdlib.h>

#include <regex>
#include <set>
#include <sstream>

#include "e2e/install/openapi_schema.h"
#include "e2e/install/test_util.h"

namespace pgrs::openapi {
namespace {

using install_test::ReadSource;
using install_test::SourceDir;
using web::json::value;

constexpr char kChart[] = "charts/pgrs-operator";

std::vector<std::string> Templates() {
  std::vector<std::string> out;
  for (const std::string& name : ListDirectory(SourceDir() + "/" + kChart + "/templates")) {
    out.push_back(std::string(kChart) + "/templates/" + name);
  }
  EXPECT_GE(out.size(), 8u);
  return out;
}

value Values() {
  Result<std::vector<value>> docs = YamlToJson(ReadSource(std::string(kChart) + "/values.yaml"));
  EXPECT_TRUE(docs.ok() && docs->size() == 1);
  return docs.ok() && !docs->empty() ? docs->front() : value::object();
}

// Dotted paths of every leaf of values.yaml; empty maps and lists are leaves.
void Leaves(const value& v, const std::string& path, std::vector<std::string>& out) {
  if (v.is_object() && v.size() > 0) {
    for (const auto& [key, child] : v.as_object()) Leaves(child, path.empty() ? key : path + "." + key, out);
  } else {
    out.push_back(path);
  }
}

TEST(ChartTest, CrdsAreByteIdenticalCopiesOfTheTopLevelOnes) {
  const std::vector<std::string> crds = {"pgrs.dev_postgresbackups.yaml", "pgrs.dev_postgresreplicasets.yaml"};
  for (const std::string& name : crds) {
    const std::string top = ReadSource("crds/" + name);
    ASSERT_FALSE(top.empty()) << name;
    EXPECT_TRUE(top == ReadSource(std::string(kChart) + "/crds/" + name))
        << "run: cp crds/" << name << " " << kChart << "/crds/";
  }
  EXPECT_EQ(ListDirectory(SourceDir() + "/" + kChart + "/crds"), crds);
}

TEST(ChartTest, ChartYamlIsApiVersionV2) {
  Result<std::vector<value>> chart = YamlToJson(ReadSource(std::string(kChart) + "/Chart.yaml"));
  ASSERT_TRUE(chart.ok());
  const value& c = chart->front();
  EXPECT_EQ(c.at("apiVersion").as_string(), "v2");
  EXPECT_EQ(c.at("name").as_string(), "pgrs-operator");
  EXPECT_TRUE(c.at("version").is_string());
  EXPECT_TRUE(c.at("appVersion").is_string());
}

TEST(ChartTest, EveryValueTheTemplatesUseExistsInValuesYaml) {
  const value values = Values();
  static const std::regex kRef(R"(\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+))");
  int refs = 0;
  for (const std::string& file : Templates()) {
    const std::string text = ReadSource(file);
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kRef); it != std::sregex_iterator(); ++it) {
      ++refs;
      const std::string path = (*it)[1].str().substr(1);
      const value* node = &values;
      size_t start = 0;
      while (node != nullptr && start <= path.size()) {
        const size_t dot = path.find('.', start);
        const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        node = node->is_object() && node->has_field(key) ? &node->at(key) : nullptr;
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
      EXPECT_NE(node, nullptr) << file << " uses .Values." << path << ", which values.yaml lacks";
    }
  }
  EXPECT_GT(refs, 30);
}

TEST(ChartTest, ReadmeDocumentsEveryValue) {
  const std::string readme = ReadSource(std::string(kChart) + "/README.md");
  std::vector<std::string> leaves;
  Leaves(Values(), "", leaves);
  EXPECT_GT(leaves.size(), 30u);
  for (const std::string& leaf : leaves) {
    EXPECT_NE(readme.find("| `" + leaf + "` |"), std::string::npos) << leaf << " is not in the README's table";
  }
}

TEST(ChartTest, TemplateActionsAreBalancedAndIncludesAreDefined) {
  std::set<std::string> defined;
  std::set<std::string> used;
  static const std::regex kDefine(R"(\{\{-?\s*define\s+"([^"]+)\")");
  static const std::regex kInclude(R"((?:include|template)\s+"([^"]+)\")");
  // Actions that open a block closed by {{ end }}.
  static const std::regex kOpen(R"(\{\{-?\s*(if|range|with|define)\b)");
  static const std::regex kEnd(R"(\{\{-?\s*end\s*-?\}\})");
  for (const std::string& file : Templates()) {
    const std::string text = ReadSource(file);
    size_t open = 0, close = 0;
    for (size_t i = 0; (i = text.find("{{", i)) != std::string::npos; i += 2) ++open;
    for (size_t i = 0; (i = text.find("}}", i)) != std::string::npos; i += 2) ++close;
    EXPECT_EQ(open, close) << file << ": {{ and }} do not pair up";
    const auto count = [&](const std::regex& re) {
      return std::distance(std::sregex_iterator(text.begin(), text.end(), re), std::sregex_iterator());
    };
    EXPECT_EQ(count(kOpen), count(kEnd)) << file << ": if/range/with/define and end do not pair up";
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kDefine); it != std::sregex_iterator(); ++it) {
      defined.insert((*it)[1]);
    }
    for (auto it = std::sregex_iterator(text.begin(), text.end(), kInclude); it != std::sregex_iterator(); ++it) {
      used.insert((*it)[1]);
    }
  }
  EXPECT_FALSE(used.empty());
  for (const std::string& name : used) EXPECT_TRUE(defined.count(name)) << name << " is included but not defined";
}

TEST(ChartTest, RbacRulesAreThoseOfTheManifests) {
  Result<std::vector<value>> manifests = YamlToJson(ReadSource("manifests/base/rbac.yaml"));
  ASSERT_TRUE(manifests.ok());
  const value* role = nullptr;
  for (const value& doc : *manifests) {
    if (doc.at("kind").as_string() == "ClusterRole") role = &doc;
  }
  ASSERT_NE(role, nullptr);
  Result<std::vector<value>> chartRules = YamlToJson(ReadSource(std::string(kChart) + "/files/rules.yaml"));
  ASSERT_TRUE(chartRules.ok());
  ASSERT_EQ(chartRules->size(), 1u);
  EXPECT_EQ(chartRules->front().serialize(), role->at("rules").serialize());
  EXPECT_THAT(ReadSource(std::string(kChart) + "/templates/clusterrole.yaml"),
              ::testing::HasSubstr(".Files.Get \"files/rules.yaml\""));
}

// The metrics `pgrs operator` exposes on /metrics.
const std::set<std::string> kOperatorMetrics = {
    "pgrs_instance_info",           "pgrs_instance_ready",          "pgrs_instance_lag_bytes",
    "pgrs_instance_lag_seconds",    "pgrs_instance_timeline",       "pgrs_replicaset_primary_ready",
    "pgrs_replicaset_instances",    "pgrs_replicaset_ready_instances", "pgrs_replicaset_failovers_total",
    "pgrs_reconcile_duration_seconds", "pgrs_reconcile_errors_total", "pgrs_workqueue_depth",
    "pgrs_backup_last_success_timestamp_seconds", "pgrs_archive_last_archived_timestamp_seconds",
    "pgrs_archive_failed_total", "pgrs_archive_failing"};

TEST(ChartTest, AlertsUseMetricsTheOperatorExposes) {
  const std::string rules = ReadSource(std::string(kChart) + "/templates/prometheusrule.yaml");
  static const std::regex kMetric(R"(\bpgrs_[a-z_]+)");
  std::set<std::string> used;
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), kMetric); it != std::sregex_iterator(); ++it) {
    used.insert(it->str());
  }
  for (const std::string& m : used) EXPECT_TRUE(kOperatorMetrics.count(m)) << m << " is not a pgrs metric";
  for (const char* wanted : {"pgrs_instance_lag_bytes", "pgrs_replicaset_primary_ready", "pgrs_instance_ready"}) {
    EXPECT_TRUE(used.count(wanted)) << wanted;
  }
  const std::string readme = ReadSource(std::string(kChart) + "/README.md");
  for (const std::string& m : kOperatorMetrics) EXPECT_THAT(readme, ::testing::HasSubstr("`" + m));
}

// The PrometheusRule's groups as a plain rules file, rendered the way Helm
// would with the chart's default values: {{ .Values.prometheusRule.X }}
// becomes X's value, {{`text`}} becomes text, and the {{- if }} / {{- end }}
// and {{- with }} lines go.
std::string RenderAlertRules() {
  std::string text = ReadSource(std::string(kChart) + "/templates/prometheusrule.yaml");
  const value values = Values();
  static const std::regex kValue(R"(\{\{ \.Values\.prometheusRule\.([A-Za-z]+) \}\})");
  std::string rendered;
  auto last = text.cbegin();
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kValue); it != std::sregex_iterator(); ++it) {
    rendered.append(last, text.cbegin() + it->position());
    const std::string key = (*it)[1];
    const value& rule = values.at("prometheusRule");
    EXPECT_TRUE(rule.has_field(key)) << key;
    rendered += rule.has_field(key) ? rule.at(key).serialize() : "";
    last = text.cbegin() + it->position() + it->length();
  }
  rendered.append(last, text.cend());
  rendered = std::regex_replace(rendered, std::regex(R"(\{\{`([^`]*)`\}\})"), "$1");
  std::string out;
  bool inSpec = false;
  std::istringstream lines(rendered);
  for (std::string line; std::getline(lines, line);) {
    const size_t text = line.find_first_not_of(' ');
    if (text != std::string::npos && line.compare(text, 2, "{{") == 0) continue;  // {{- if/with/end }}, labels
    if (line == "spec:") {
      inSpec = true;
      continue;
    }
    if (inSpec) out += (line.rfind("  ", 0) == 0 ? line.substr(2) : line) + "\n";
  }
  return out;
}

// promtool (Debian's prometheus package, scripts/install-deps.sh) checks the
// alerts' syntax and PromQL, and runs e2e/install/testdata/alerts_test.yaml:
// the backup alerts fire when they should and not before.
TEST(ChartTest, AlertRulesPassPromtoolAndTheBackupAlertsFireOnTime) {
  ASSERT_EQ(install_test::RunShell("command -v promtool").exitCode, 0)
      << "promtool is missing: run scripts/install-deps.sh (Debian package prometheus)";
  char pattern[] = "/tmp/pgrs-alerts-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  const std::string rules = RenderAlertRules();
  ASSERT_NE(rules.find("alert: PgrsArchivingFailing"), std::string::npos) << rules;
  ASSERT_TRUE(WriteFileAtomic(dir + "/rules.yaml", rules).ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/alerts_test.yaml", ReadSource("e2e/install/testdata/alerts_test.yaml")).ok());
  CommandResult check = install_test::RunShell("promtool check rules " + dir + "/rules.yaml");
  EXPECT_EQ(check.exitCode, 0) << check.output << "\n" << rules;
  CommandResult test = install_test::RunShell("cd " + dir + " && promtool test rules alerts_test.yaml");
  EXPECT_EQ(test.exitCode, 0) << test.output;
  EXPECT_TRUE(RemoveTree(dir).ok());
}

TEST(ChartTest, DeploymentPassesTheSameFlagsAsTheManifests) {
  const std::string chart = ReadSource(std::string(kChart) + "/templates/deployment.yaml");
  const std::string manifest = ReadSource("manifests/base/deployment.yaml");
  static const std::regex kFlag(R"(- (--[a-z-]+))");
  std::set<std::string> chartFlags;
  for (auto it = std::sregex_iterator(chart.begin(), chart.end(), kFlag); it != std::sregex_iterator(); ++it) {
    chartFlags.insert((*it)[1]);
  }
  for (auto it = std::sregex_iterator(manifest.begin(), manifest.end(), kFlag); it != std::sregex_iterator(); ++it) {
    EXPECT_TRUE(chartFlags.count((*it)[1])) << (*it)[1];
  }
}

}  // namespace
}  // namespace pgrs::openapi
