// Workloads for failover tests: a writer that commits a numbered row every
// ~20 ms through a connection string and records what was acknowledged, and
// a watcher that polls pg_is_in_recovery() on every instance and records
// any moment at which two instances accepted writes at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace pgrs::e2e {

class Writer {
 public:
  // `conninfo` is status.connection.readWrite; `table` must exist with an
  // integer primary key column `id`.
  Writer(std::string conninfo, std::string table);
  // A connection string asked for again at every reconnect (in Kubernetes
  // mode, Pods made again get new addresses).
  Writer(std::function<std::string()> conninfo, std::string table);
  ~Writer();
  void Start();
  void Stop();

  struct Ack {
    int64_t id;
    std::chrono::steady_clock::time_point at;
  };
  std::vector<Ack> Acknowledged() const;
  size_t AcknowledgedCount() const;
  // The longest gap between two consecutive acknowledgements that spans
  // `after` (seconds of write unavailability around an event).
  double LongestGapAround(std::chrono::steady_clock::time_point after) const;
  // Waits until at least `n` more rows are acknowledged than now.
  bool WaitForMoreAcks(size_t n, std::chrono::milliseconds timeout) const;

 private:
  void Loop();
  std::function<std::string()> conninfo_;
  std::string table_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Ack> acks_;
};

class PrimaryWatcher {
 public:
  // `ports`: every instance's port on 127.0.0.1; `password`: superuser's.
  PrimaryWatcher(std::vector<int> ports, std::string password);
  // Instances at "HOST:PORT" each.
  PrimaryWatcher(std::vector<std::string> endpoints, std::string password);
  ~PrimaryWatcher();
  void Start();
  void Stop();
  // Sweeps in which more than one instance answered "not in recovery".
  int TwoPrimarySweeps() const { return twoPrimaries_.load(); }
  int Sweeps() const { return sweeps_.load(); }

 private:
  void Loop();
  std::vector<std::pair<std::string, int>> endpoints_;
  std::string password_;
  std::atomic<bool> stop_{false};
  std::atomic<int> twoPrimaries_{0};
  std::atomic<int> sweeps_{0};
  std::thread thread_;
};

}  // namespace pgrs::e2e
