// Metrics of the operator in the Prometheus text exposition format 0.0.4,
// without a client library: a small thread-safe registry of gauges,
// counters and histograms with labels, and OperatorMetrics, the names the
// operator exports (the Helm chart's alerts use exactly these).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pgrs::kube {

// Label names and values, in the order they are rendered.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// Backslash, double quote and newline escaped, as label values need.
std::string EscapeLabelValue(const std::string& value);
// The shortest text that reads back as `value`; "+Inf", "-Inf", "NaN".
std::string FormatMetricValue(double value);

class MetricsRegistry {
 public:
  enum class Type { kGauge, kCounter, kHistogram };

  // Declares a family; a family is rendered (its HELP and TYPE) even with
  // no samples. `buckets` (histograms only): ascending upper bounds; +Inf is
  // implied. Declaring a name again changes nothing.
  void Declare(const std::string& name, Type type, const std::string& help, std::vector<double> buckets = {});
  // Gauges and counters: the sample's value. Ignored for undeclared names.
  void Set(const std::string& name, const MetricLabels& labels, double value);
  // Counters (and gauges): adds `delta` to the sample, created at 0.
  void Add(const std::string& name, const MetricLabels& labels, double delta);
  // Creates the sample at zero (a histogram without observations), so that
  // it is rendered before anything happened.
  void Zero(const std::string& name, const MetricLabels& labels);
  // Histograms: one observation.
  void Observe(const std::string& name, const MetricLabels& labels, double value);
  // Drops the one sample of `name` with exactly these labels.
  void Erase(const std::string& name, const MetricLabels& labels);
  // Drops the samples of `name` (every family when empty) whose labels
  // include each of `match`. Scans every sample: for rare clean-ups.
  void Remove(const MetricLabels& match, const std::string& name = "");
  // Families in declaration order, samples ordered by their labels.
  std::string Render() const;

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> buckets;
    std::map<MetricLabels, double> values;
    std::map<MetricLabels, Histogram> histograms;
  };
  mutable std::mutex mu_;
  std::vector<std::string> order_;
  std::map<std::string, Family> families_;
};

class OperatorMetrics {
 public:
  struct InstanceSample {
    std::string name, role;
    bool ready = false;
    std::optional<int64_t> lagBytes;
    std::optional<double> lagSeconds;
    int timeline = 0;
  };

  // A set with spec.backup, from status.backup.
  struct BackupSample {
    std::optional<double> lastBackupTime;    // Unix seconds: the newest backup's end; unset = none
    std::optional<double> lastArchivedTime;  // Unix seconds: the newest archived WAL
    int64_t archiveFailedTotal = 0;          // pg_stat_archiver.failed_count on the primary
    bool archivingFailing = false;
  };

  OperatorMetrics();

  // Replaces everything known about one replica set: its instances'
  // samples (an instance no longer listed disappears) and its own.
  void SetReplicaSet(const std::string& ns, const std::string& set, int desiredInstances, int readyInstances,
                     bool primaryReady, int64_t failoversTotal, const std::vector<InstanceSample>& instances,
                     const std::optional<BackupSample>& backup = std::nullopt);
  // Forgets a deleted replica set.
  void RemoveReplicaSet(const std::string& ns, const std::string& set);
  // One reconcile pass: its duration, and whether it ended in an error.
  void ObserveReconcile(double seconds, bool error);
  void SetQueueDepth(size_t depth);
  // The text format (Content-Type: text/plain; version=0.0.4).
  std::string Render() const;

  // For process-wide values the operator adds beside these (leader, API
  // requests, ...): declare and set them here, they are rendered along.
  MetricsRegistry& registry() { return registry_; }

 private:
  // Erases exactly the series `set` wrote before (a scan of every series
  // per reconcile costs O(sets^2)). Called with mu_ held.
  void EraseSeriesLocked(const std::pair<std::string, std::string>& set);

  mutable std::mutex mu_;  // SetReplicaSet is seen whole or not at all
  MetricsRegistry registry_;
  // (namespace, replica set) -> the (family, labels) it has samples under.
  std::map<std::pair<std::string, std::string>, std::vector<std::pair<std::string, MetricLabels>>> series_;
};

}  // namespace pgrs::kube
