#include "operator/kube/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>
#include <thread>

namespace pgrs::kube {
namespace {

// One sample line read back: name, labels, value.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string value;
};

// A tiny parser of the text format: enough to check what Render writes.
struct Parsed {
  std::map<std::string, std::string> types;  // # TYPE
  std::map<std::string, std::string> helps;  // # HELP
  std::vector<Sample> samples;
  std::string error;

  // The value of the one sample with `name` and exactly `labels`; "" if none.
  std::string Value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return "";
  }
  int Count(const std::string& name) const {
    int n = 0;
    for (const auto& s : samples) n += s.name == name;
    return n;
  }
};

Parsed Parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0 || line.rfind("# HELP ", 0) == 0) {
      std::string rest = line.substr(7);
      size_t space = rest.find(' ');
      (line[2] == 'T' ? p.types : p.helps)[rest.substr(0, space)] = rest.substr(space + 1);
      continue;
    }
    if (line.empty() || line[0] == '#') {
      p.error = "unexpected line: " + line;
      return p;
    }
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        std::string key, value;
        while (line[i] != '=') key += line[i++];
        i += 2;  // ="
        while (line[i] != '"') {
          if (line[i] == '\\') {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        ++i;  // closing quote
        if (line[i] == ',') ++i;
        s.labels[key] = value;
      }
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') {
      p.error = "no value: " + line;
      return p;
    }
    s.value = line.substr(i + 1);
    p.samples.push_back(s);
  }
  return p;
}

using L = std::map<std::string, std::string>;

TEST(OperatorMetrics, ReplicaSetSamplesReadBack) {
  OperatorMetrics m;
  m.SetReplicaSet("db", "demo", 3, 2, true, 4,
                  {{"demo-1", "primary", true, std::nullopt, std::nullopt, 2},
                   {"demo-2", "standby", true, 1024, 0.25, 2},
                   {"demo-3", "standby", false, std::nullopt, std::nullopt, 1}});
  Parsed p = Parse(m.Render());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.Value("pgrs_instance_info", {{"namespace", "db"}, {"replicaset", "demo"}, {"instance", "demo-1"},
                                           {"role", "primary"}}),
            "1");
  L two{{"namespace", "db"}, {"replicaset", "demo"}, {"instance", "demo-2"}};
  L three{{"namespace", "db"}, {"replicaset", "demo"}, {"instance", "demo-3"}};
  EXPECT_EQ(p.Value("pgrs_instance_ready", two), "1");
  EXPECT_EQ(p.Value("pgrs_instance_ready", three), "0");
  EXPECT_EQ(p.Value("pgrs_instance_lag_bytes", two), "1024");
  EXPECT_EQ(p.Value("pgrs_instance_lag_seconds", two), "0.25");
  EXPECT_EQ(p.Count("pgrs_instance_lag_bytes"), 1) << "unknown lag has no sample";
  EXPECT_EQ(p.Count("pgrs_instance_lag_seconds"), 1);
  EXPECT_EQ(p.Value("pgrs_instance_timeline", three), "1");
  L set{{"namespace", "db"}, {"replicaset", "demo"}};
  EXPECT_EQ(p.Value("pgrs_replicaset_primary_ready", set), "1");
  EXPECT_EQ(p.Value("pgrs_replicaset_instances", set), "3");
  EXPECT_EQ(p.Value("pgrs_replicaset_ready_instances", set), "2");
  EXPECT_EQ(p.Value("pgrs_replicaset_failovers_total", set), "4");
  EXPECT_EQ(p.types["pgrs_replicaset_failovers_total"], "counter");
  EXPECT_EQ(p.types["pgrs_instance_info"], "gauge");
  EXPECT_EQ(p.types["pgrs_reconcile_duration_seconds"], "histogram");
  for (const auto& [name, type] : p.types) EXPECT_FALSE(p.helps[name].empty()) << name;
}

TEST(OperatorMetrics, BackupSamplesOnlyForASetWithBackups) {
  OperatorMetrics m;
  OperatorMetrics::BackupSample backup;
  backup.lastBackupTime = 1796292004;
  backup.lastArchivedTime = 1796292060.5;
  backup.archiveFailedTotal = 3;
  backup.archivingFailing = true;
  m.SetReplicaSet("db", "demo", 1, 1, true, 0, {}, backup);
  m.SetReplicaSet("db", "plain", 1, 1, true, 0, {});
  Parsed p = Parse(m.Render());
  ASSERT_EQ(p.error, "");
  L set{{"namespace", "db"}, {"replicaset", "demo"}};
  EXPECT_EQ(p.Value("pgrs_backup_last_success_timestamp_seconds", set), "1796292004");
  EXPECT_EQ(p.Value("pgrs_archive_last_archived_timestamp_seconds", set), "1796292060.5");
  EXPECT_EQ(p.Value("pgrs_archive_failed_total", set), "3");
  EXPECT_EQ(p.types["pgrs_archive_failed_total"], "counter");
  EXPECT_EQ(p.Value("pgrs_archive_failing", set), "1");
  EXPECT_EQ(p.Count("pgrs_archive_failing"), 1) << "a set without spec.backup has no backup samples";
  // No backup yet: no timestamp sample (an alert on its age cannot fire on 0).
  m.SetReplicaSet("db", "demo", 1, 1, true, 0, {}, OperatorMetrics::BackupSample{});
  p = Parse(m.Render());
  EXPECT_EQ(p.Count("pgrs_backup_last_success_timestamp_seconds"), 0);
  EXPECT_EQ(p.Value("pgrs_archive_failing", set), "0");
}

TEST(OperatorMetrics, SetReplicaSetReplacesAndRemoveForgets) {
  OperatorMetrics m;
  m.SetReplicaSet("db", "demo", 2, 2, true, 0,
                  {{"demo-1", "primary", true, {}, {}, 1}, {"demo-2", "standby", true, 0, 0.0, 1}});
  m.SetReplicaSet("db", "other", 1, 1, true, 0, {{"other-1", "primary", true, {}, {}, 1}});
  // demo-2 was scaled away and demo-1 failed over to... itself, as standby.
  m.SetReplicaSet("db", "demo", 1, 0, false, 1, {{"demo-1", "standby", false, {}, {}, 2}});
  Parsed p = Parse(m.Render());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.Count("pgrs_instance_info"), 2);  // demo-1 (new role only) and other-1
  EXPECT_EQ(p.Value("pgrs_instance_info", {{"namespace", "db"}, {"replicaset", "demo"}, {"instance", "demo-1"},
                                           {"role", "standby"}}),
            "1");
  EXPECT_EQ(p.Count("pgrs_instance_lag_bytes"), 0);
  EXPECT_EQ(p.Value("pgrs_replicaset_failovers_total", {{"namespace", "db"}, {"replicaset", "demo"}}), "1");

  m.RemoveReplicaSet("db", "demo");
  p = Parse(m.Render());
  for (const auto& s : p.samples) {
    auto it = s.labels.find("replicaset");
    EXPECT_TRUE(it == s.labels.end() || it->second != "demo") << s.name;
  }
  EXPECT_EQ(p.Value("pgrs_replicaset_instances", {{"namespace", "db"}, {"replicaset", "other"}}), "1");
}

TEST(OperatorMetrics, LabelValuesAreEscaped) {
  OperatorMetrics m;
  std::string odd = "a\\b\"c\nd";
  m.SetReplicaSet("ns", odd, 1, 1, true, 0, {});
  std::string text = m.Render();
  EXPECT_NE(text.find("replicaset=\"a\\\\b\\\"c\\nd\""), std::string::npos) << text;
  Parsed p = Parse(text);
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.Value("pgrs_replicaset_instances", {{"namespace", "ns"}, {"replicaset", odd}}), "1");
}

TEST(OperatorMetrics, ReconcileHistogramIsCumulativeWithCountAndSum) {
  OperatorMetrics m;
  Parsed empty = Parse(m.Render());
  EXPECT_EQ(empty.Value("pgrs_reconcile_duration_seconds_count"), "0") << "rendered before any reconcile";
  EXPECT_EQ(empty.Value("pgrs_reconcile_total"), "0");
  for (double s : {0.001, 0.005, 0.02, 0.3, 0.3, 7.0, 60.0}) m.ObserveReconcile(s, s > 5);
  m.SetQueueDepth(3);
  Parsed p = Parse(m.Render());
  ASSERT_EQ(p.error, "");
  std::vector<std::pair<double, uint64_t>> buckets;
  for (const auto& s : p.samples) {
    if (s.name != "pgrs_reconcile_duration_seconds_bucket") continue;
    const std::string& le = s.labels.at("le");
    buckets.emplace_back(le == "+Inf" ? INFINITY : std::stod(le), std::stoull(s.value));
  }
  ASSERT_EQ(buckets.size(), 12u);  // 0.005 .. 10 and +Inf
  EXPECT_EQ(buckets.front().first, 0.005);
  EXPECT_EQ(buckets[buckets.size() - 2].first, 10);
  for (size_t i = 1; i < buckets.size(); ++i) {
    EXPECT_LT(buckets[i - 1].first, buckets[i].first);
    EXPECT_LE(buckets[i - 1].second, buckets[i].second) << "cumulative";
  }
  EXPECT_EQ(buckets[0].second, 2u) << "0.001 and 0.005 (le is inclusive)";
  EXPECT_EQ(buckets.back().second, 7u);
  EXPECT_EQ(p.Value("pgrs_reconcile_duration_seconds_count"), "7");
  EXPECT_NEAR(std::stod(p.Value("pgrs_reconcile_duration_seconds_sum")), 67.626, 1e-9);
  EXPECT_EQ(p.Value("pgrs_reconcile_total"), "7");
  EXPECT_EQ(p.Value("pgrs_reconcile_errors_total"), "2");
  EXPECT_EQ(p.Value("pgrs_workqueue_depth"), "3");
}

TEST(OperatorMetrics, ConcurrentUpdatesAndRendersAgree) {
  OperatorMetrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m, t] {
      for (int i = 0; i < 500; ++i) {
        m.ObserveReconcile(0.01, false);
        m.SetReplicaSet("ns", "set-" + std::to_string(t), 2, i % 3, true, i,
                        {{"i-1", "primary", true, {}, {}, 1}, {"i-2", "standby", true, 5, 0.5, 1}});
        if (i % 50 == 0) {
          EXPECT_EQ(Parse(m.Render()).error, "");
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  Parsed p = Parse(m.Render());
  EXPECT_EQ(p.Value("pgrs_reconcile_total"), "2000");
  EXPECT_EQ(p.Count("pgrs_instance_info"), 8);
}

TEST(MetricsFormat, ValuesReadBackExactly) {
  EXPECT_EQ(FormatMetricValue(1), "1");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(1e21), "1e+21");
  EXPECT_EQ(FormatMetricValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatMetricValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatMetricValue(NAN), "NaN");
  EXPECT_EQ(FormatMetricValue(9007199254740993.0), "9007199254740992");
}

}  // namespace
}  // namespace pgrs::kube
