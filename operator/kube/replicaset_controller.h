// The PostgresReplicaSet controller of `pgrs operator`. Until the
// Kubernetes runtime exists, it validates each replica set and records the
// outcome in its status: observedGeneration and an Accepted condition
// (True, or False with every validation error), plus an Event when the
// verdict changes. Later issues add the reconcilers behind Reconcile.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "operator/kube/events.h"
#include "operator/kube/informer.h"
#include "operator/kube/workqueue.h"

namespace pgrs::kube {

// What the controller thinks of a spec: a pure function of the object.
struct Acceptance {
  bool accepted = false;
  std::string reason;   // SpecValid | InvalidSpec
  std::string message;
};
Acceptance EvaluateReplicaSet(const Json& object);

// Sets (or replaces) the condition of `type` in status.conditions, keeping
// lastTransitionTime when the condition's status did not change. Returns
// true when the condition's status changed (a transition).
bool SetCondition(Json& status, const std::string& type, const std::string& conditionStatus,
                  const std::string& reason, const std::string& message, int64_t observedGeneration,
                  const std::string& now);

struct ControllerOptions {
  std::vector<std::string> namespaces;  // empty = all namespaces
  int workers = 2;
  int watchTimeoutSeconds = 300;
};

struct ControllerStats {
  int64_t reconciles = 0;
  int64_t reconcileErrors = 0;
  int64_t statusWrites = 0;
  size_t objects = 0;
  int64_t relists = 0;
  size_t queueDepth = 0;
};

class ReplicaSetController {
 public:
  ReplicaSetController(Client* client, EventRecorder* events, ControllerOptions options);
  ~ReplicaSetController();

  // Informers run on every replica, leader or not, so that a new leader
  // starts from a warm cache.
  void StartInformers();
  bool Synced() const;
  // Workers reconcile queued keys while `mayAct` holds.
  void StartWorkers(std::function<bool()> mayAct);
  // Stops the informers first (cancelling their watches), then the workers.
  void Stop();
  Status Reconcile(const std::string& key);
  ControllerStats stats() const;

 private:
  void Enqueue(const Json& object);
  void Work();

  Client* client_;
  EventRecorder* events_;
  ControllerOptions options_;
  WorkQueue queue_;
  std::vector<std::unique_ptr<Informer>> informers_;
  std::vector<std::thread> workers_;
  std::function<bool()> mayAct_;
  std::atomic<int64_t> reconciles_{0};
  std::atomic<int64_t> errors_{0};
  std::atomic<int64_t> statusWrites_{0};
};

}  // namespace pgrs::kube
