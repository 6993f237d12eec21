#include "operator/kube/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace pgrs::kube {

std::string EscapeLabelValue(const std::string& value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

namespace {

// HELP text escapes backslash and newline only.
std::string EscapeHelp(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string RenderLabels(const MetricLabels& labels, const std::pair<std::string, std::string>* extra = nullptr) {
  if (labels.empty() && extra == nullptr) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::pair<std::string, std::string>& l) {
    if (!first) out += ",";
    first = false;
    out += l.first + "=\"" + EscapeLabelValue(l.second) + "\"";
  };
  for (const auto& l : labels) add(l);
  if (extra != nullptr) add(*extra);
  return out + "}";
}

bool Includes(const MetricLabels& labels, const MetricLabels& match) {
  for (const auto& m : match) {
    if (std::find(labels.begin(), labels.end(), m) == labels.end()) return false;
  }
  return true;
}

const char* TypeName(MetricsRegistry::Type type) {
  switch (type) {
    case MetricsRegistry::Type::kGauge: return "gauge";
    case MetricsRegistry::Type::kCounter: return "counter";
    case MetricsRegistry::Type::kHistogram: return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  if (ec != std::errc()) return "NaN";
  return std::string(buf, end);
}

void MetricsRegistry::Declare(const std::string& name, Type type, const std::string& help,
                              std::vector<double> buckets) {
  std::lock_guard<std::mutex> lock(mu_);
  if (families_.count(name) != 0) return;
  std::sort(buckets.begin(), buckets.end());
  Family family{type, help, std::move(buckets), {}, {}};
  families_.emplace(name, std::move(family));
  order_.push_back(name);
}

void MetricsRegistry::Set(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type == Type::kHistogram) return;
  it->second.values[labels] = value;
}

void MetricsRegistry::Add(const std::string& name, const MetricLabels& labels, double delta) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type == Type::kHistogram) return;
  it->second.values[labels] += delta;
}

void MetricsRegistry::Zero(const std::string& name, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  Family& f = it->second;
  if (f.type == Type::kHistogram) {
    f.histograms[labels] = Histogram{std::vector<uint64_t>(f.buckets.size() + 1, 0), 0, 0};
  } else {
    f.values[labels] = 0;
  }
}

void MetricsRegistry::Observe(const std::string& name, const MetricLabels& labels, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end() || it->second.type != Type::kHistogram) return;
  Family& f = it->second;
  Histogram& h = f.histograms[labels];
  if (h.counts.empty()) h.counts.assign(f.buckets.size() + 1, 0);
  size_t bucket = std::lower_bound(f.buckets.begin(), f.buckets.end(), value) - f.buckets.begin();
  h.counts[bucket]++;  // le is inclusive: value == bound falls in that bucket
  h.sum += value;
  h.count++;
}

void MetricsRegistry::Erase(const std::string& name, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return;
  it->second.values.erase(labels);
  it->second.histograms.erase(labels);
}

void MetricsRegistry::Remove(const MetricLabels& match, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [familyName, f] : families_) {
    if (!name.empty() && familyName != name) continue;
    std::erase_if(f.values, [&](const auto& sample) { return Includes(sample.first, match); });
    std::erase_if(f.histograms, [&](const auto& sample) { return Includes(sample.first, match); });
  }
}

std::string MetricsRegistry::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& name : order_) {
    const Family& f = families_.at(name);
    out += "# HELP " + name + " " + EscapeHelp(f.help) + "\n";
    out += "# TYPE " + name + " " + TypeName(f.type) + "\n";
    for (const auto& [labels, value] : f.values) {
      out += name + RenderLabels(labels) + " " + FormatMetricValue(value) + "\n";
    }
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        std::pair<std::string, std::string> le{"le", i < f.buckets.size() ? FormatMetricValue(f.buckets[i]) : "+Inf"};
        out += name + "_bucket" + RenderLabels(labels, &le) + " " + std::to_string(cumulative) + "\n";
      }
      out += name + "_sum" + RenderLabels(labels) + " " + FormatMetricValue(h.sum) + "\n";
      out += name + "_count" + RenderLabels(labels) + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

// ---------------------------------------------------------------------------

namespace {

using Type = MetricsRegistry::Type;

constexpr char kInstanceInfo[] = "pgrs_instance_info";
constexpr char kInstanceReady[] = "pgrs_instance_ready";
constexpr char kInstanceLagBytes[] = "pgrs_instance_lag_bytes";
constexpr char kInstanceLagSeconds[] = "pgrs_instance_lag_seconds";
constexpr char kInstanceTimeline[] = "pgrs_instance_timeline";
constexpr char kPrimaryReady[] = "pgrs_replicaset_primary_ready";
constexpr char kInstances[] = "pgrs_replicaset_instances";
constexpr char kReadyInstances[] = "pgrs_replicaset_ready_instances";
constexpr char kFailovers[] = "pgrs_replicaset_failovers_total";
constexpr char kBackupLastSuccess[] = "pgrs_backup_last_success_timestamp_seconds";
constexpr char kArchiveLastArchived[] = "pgrs_archive_last_archived_timestamp_seconds";
constexpr char kArchiveFailed[] = "pgrs_archive_failed_total";
constexpr char kArchiveFailing[] = "pgrs_archive_failing";
constexpr char kReconcileDuration[] = "pgrs_reconcile_duration_seconds";
constexpr char kReconcileErrors[] = "pgrs_reconcile_errors_total";
constexpr char kReconciles[] = "pgrs_reconcile_total";
constexpr char kQueueDepth[] = "pgrs_workqueue_depth";

}  // namespace

OperatorMetrics::OperatorMetrics() {
  auto& r = registry_;
  r.Declare(kInstanceInfo, Type::kGauge, "An instance of a replica set and its role (always 1).");
  r.Declare(kInstanceReady, Type::kGauge, "1 when the instance's PostgreSQL accepts connections.");
  r.Declare(kInstanceLagBytes, Type::kGauge, "Bytes of WAL a standby has yet to replay (absent when unknown).");
  r.Declare(kInstanceLagSeconds, Type::kGauge, "Seconds a standby's replay lags (absent when unknown).");
  r.Declare(kInstanceTimeline, Type::kGauge, "The instance's PostgreSQL timeline.");
  r.Declare(kPrimaryReady, Type::kGauge, "1 when the replica set's primary accepts connections.");
  r.Declare(kInstances, Type::kGauge, "Instances the replica set should have (spec.instances).");
  r.Declare(kReadyInstances, Type::kGauge, "Instances of the replica set that are ready.");
  r.Declare(kFailovers, Type::kCounter, "Failovers of the replica set since it was created.");
  r.Declare(kBackupLastSuccess, Type::kGauge,
            "When the newest backup in the set's repository finished, Unix seconds (absent while there is none).");
  r.Declare(kArchiveLastArchived, Type::kGauge,
            "When the primary last archived a WAL segment, Unix seconds (absent while it has archived none).");
  r.Declare(kArchiveFailed, Type::kCounter,
            "Failed WAL archive attempts of the primary (pg_stat_archiver.failed_count; resets on failover).");
  r.Declare(kArchiveFailing, Type::kGauge, "1 while the primary's last WAL archive attempt failed.");
  r.Declare(kReconcileDuration, Type::kHistogram, "How long a reconcile of a replica set took.",
            {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
  r.Declare(kReconcileErrors, Type::kCounter, "Reconciles that ended in an error.");
  r.Declare(kReconciles, Type::kCounter, "Reconciles.");
  r.Declare(kQueueDepth, Type::kGauge, "Keys waiting in the work queue.");
  for (const char* name : {kReconcileDuration, kReconcileErrors, kReconciles, kQueueDepth}) r.Zero(name, {});
}

void OperatorMetrics::EraseSeriesLocked(const std::pair<std::string, std::string>& set) {
  auto it = series_.find(set);
  if (it == series_.end()) return;
  for (const auto& [family, labels] : it->second) registry_.Erase(family, labels);
  series_.erase(it);
}

void OperatorMetrics::SetReplicaSet(const std::string& ns, const std::string& set, int desiredInstances,
                                    int readyInstances, bool primaryReady, int64_t failoversTotal,
                                    const std::vector<InstanceSample>& instances,
                                    const std::optional<BackupSample>& backup) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto key = std::make_pair(ns, set);
  EraseSeriesLocked(key);
  auto& written = series_[key];
  auto put = [&](const char* family, const MetricLabels& labels, double value) {
    registry_.Set(family, labels, value);
    written.emplace_back(family, labels);
  };
  MetricLabels setLabels{{"namespace", ns}, {"replicaset", set}};
  put(kPrimaryReady, setLabels, primaryReady ? 1 : 0);
  put(kInstances, setLabels, desiredInstances);
  put(kReadyInstances, setLabels, readyInstances);
  put(kFailovers, setLabels, static_cast<double>(failoversTotal));
  if (backup) {
    if (backup->lastBackupTime) put(kBackupLastSuccess, setLabels, *backup->lastBackupTime);
    if (backup->lastArchivedTime) put(kArchiveLastArchived, setLabels, *backup->lastArchivedTime);
    put(kArchiveFailed, setLabels, static_cast<double>(backup->archiveFailedTotal));
    put(kArchiveFailing, setLabels, backup->archivingFailing ? 1 : 0);
  }
  for (const auto& i : instances) {
    MetricLabels labels = setLabels;
    labels.emplace_back("instance", i.name);
    MetricLabels info = labels;
    info.emplace_back("role", i.role);
    put(kInstanceInfo, info, 1);
    put(kInstanceReady, labels, i.ready ? 1 : 0);
    if (i.lagBytes) put(kInstanceLagBytes, labels, static_cast<double>(*i.lagBytes));
    if (i.lagSeconds) put(kInstanceLagSeconds, labels, *i.lagSeconds);
    put(kInstanceTimeline, labels, i.timeline);
  }
}

void OperatorMetrics::RemoveReplicaSet(const std::string& ns, const std::string& set) {
  std::lock_guard<std::mutex> lock(mu_);
  EraseSeriesLocked(std::make_pair(ns, set));
}

void OperatorMetrics::ObserveReconcile(double seconds, bool error) {
  registry_.Observe(kReconcileDuration, {}, seconds);
  registry_.Add(kReconciles, {}, 1);
  if (error) registry_.Add(kReconcileErrors, {}, 1);
}

void OperatorMetrics::SetQueueDepth(size_t depth) { registry_.Set(kQueueDepth, {}, static_cast<double>(depth)); }

std::string OperatorMetrics::Render() const {
  std::lock_guard<std::mutex> lock(mu_);
  return registry_.Render();
}

}  // namespace pgrs::kube
