// The PostgresReplicaSet controller of `pgrs operator`: validates each
// replica set (observedGeneration and an Accepted condition, True or False
// with every validation error, and an Event when the verdict changes), then
// runs it through the same reconcilers as local mode with the Kubernetes
// runtime.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "operator/executor/executor.h"
#include "operator/kube/controller.h"
#include "operator/kube/events.h"
#include "operator/kube/metrics.h"
#include "operator/kube/runtime.h"
#include "operator/observer/observer.h"

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

struct ReplicaSetControllerOptions {
  InstancePodOptions pods;
  // How often a steady set is observed. Failures the agents see are
  // noticed at this pace (or sooner, through Pod readiness); while a set
  // changes (bootstrap, failover) it is looked at as fast as the
  // reconcilers ask (20-250 ms).
  std::chrono::milliseconds observeInterval{1000};
  // Benchmarks only: a simulated data plane (null / empty = the real one).
  std::shared_ptr<observer::Observer> observer;
  executor::Executor::ConfigPusher configPusher;
};

// The controller: informers for PostgresReplicaSets and the children they
// own, and a reconcile that validates the spec (Accepted), makes the set's
// objects, runs the shared pass (observe, plan, execute) through the
// Kubernetes runtime, moves role labels and writes status.
class ReplicaSetController {
 public:
  ReplicaSetController(Client* client, EventRecorder* events, ControllerOptions options,
                       ReplicaSetControllerOptions setOptions = {});

  void StartInformers() { controller_.StartInformers(); }
  bool Synced() const { return controller_.Synced(); }
  void StartWorkers(std::function<bool()> mayAct) { controller_.StartWorkers(std::move(mayAct)); }
  void Stop() { controller_.Stop(); }
  ReconcileResult Reconcile(const std::string& key);
  ControllerStats stats() const { return controller_.stats(); }
  OperatorMetrics& metrics() { return metrics_; }

 private:
  // The set from the cache, or from the API when the cache is older than
  // this controller's last status write.
  std::optional<Json> Read(const std::string& key);
  // Writes observedGeneration and the Accepted condition (and, when the
  // spec was accepted, the status the pass computed).
  ReconcileResult WriteStatus(const std::string& key, const Json& cached, const Acceptance& verdict,
                              const std::optional<api::ReplicaSetStatus>& status);

  Client* client_;
  EventRecorder* events_;
  ReplicaSetControllerOptions setOptions_;
  Controller controller_;
  KubeRuntime runtime_;
  executor::Executor executor_;
  std::shared_ptr<observer::Observer> observer_;
  OperatorMetrics metrics_;
  std::mutex mu_;
  std::map<std::string, std::string> lastSummary_;  // per key, to log changes only
  std::map<std::string, int64_t> failovers_;        // per key, seen by this process
  std::map<std::string, std::string> written_;      // per key: resourceVersion of our last status write
};

}  // namespace pgrs::kube
