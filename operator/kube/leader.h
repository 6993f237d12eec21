// Leader election on a coordination.k8s.io/v1 Lease, as client-go's
// leaderelection package: candidates poll the Lease every retryPeriod; one
// takes it when it is free, released, or has not changed for leaseDuration
// (measured on the candidate's own monotonic clock, so clock skew between
// machines does not matter). The leader renews every retryPeriod and steps
// down when it has not renewed for renewDeadline, before anyone else may
// take the Lease. Requires leaseDuration > renewDeadline > retryPeriod.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "operator/kube/client.h"
#include "operator/kube/clock.h"

namespace pgrs::kube {

struct LeaderElectionConfig {
  std::string ns;
  std::string name;  // the Lease
  std::string identity;
  std::chrono::milliseconds leaseDuration{15000};
  std::chrono::milliseconds renewDeadline{10000};
  std::chrono::milliseconds retryPeriod{2000};
  // On Stop, a leader clears the Lease's holder so that another candidate
  // takes over at once instead of after leaseDuration.
  bool releaseOnStop = true;
};

Status ValidateLeaderElectionConfig(const LeaderElectionConfig& config);

struct LeaderCallbacks {
  std::function<void()> onStartedLeading;
  // Called once when leadership ends: lost (renewal failed) or stopped.
  std::function<void(bool lost)> onStoppedLeading;
  std::function<void(const std::string& holder)> onNewLeader;
};

class LeaderElector {
 public:
  // `client` should fail fast: one attempt, and a request timeout of at
  // most (leaseDuration - renewDeadline) / 2, so that a leader whose
  // renewals hang steps down before anyone else may take the Lease (a
  // renewal is a read and a write).
  LeaderElector(Client* client, LeaderElectionConfig config, LeaderCallbacks callbacks,
                const Clock* clock = RealClock::Get());
  ~LeaderElector();

  void Start();
  // Stops campaigning; a leader stops leading (and releases the Lease).
  void Stop();
  bool IsLeader() const { return leading_.load(); }
  std::string ObservedLeader() const;
  int64_t transitions() const { return transitions_.load(); }

 private:
  void Run();
  bool TryAcquireOrRenew();
  void Release();
  bool Wait(std::chrono::milliseconds d);  // false when stopped

  Client* client_;
  LeaderElectionConfig config_;
  LeaderCallbacks callbacks_;
  const Clock* clock_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> leading_{false};
  std::atomic<int64_t> transitions_{0};
  std::string observedRecord_;  // holder|renewTime|transitions as last seen
  Clock::TimePoint observedAt_;
  std::string observedHolder_;
  std::thread thread_;
};

}  // namespace pgrs::kube
