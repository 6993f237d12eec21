// The PostgresReplicaSet controller of `pgrs operator`. Until the
// Kubernetes runtime exists, it validates each replica set and records the
// outcome in its status: observedGeneration and an Accepted condition
// (True, or False with every validation error), plus an Event when the
// verdict changes. Later issues add the reconcilers behind Reconcile.
#pragma once

#include <functional>
#include <string>

#include "operator/kube/controller.h"
#include "operator/kube/events.h"

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

// The controller: Controller's machinery with the Accepted reconciler.
class ReplicaSetController {
 public:
  ReplicaSetController(Client* client, EventRecorder* events, ControllerOptions options);

  void StartInformers() { controller_.StartInformers(); }
  bool Synced() const { return controller_.Synced(); }
  void StartWorkers(std::function<bool()> mayAct) { controller_.StartWorkers(std::move(mayAct)); }
  void Stop() { controller_.Stop(); }
  ReconcileResult Reconcile(const std::string& key);
  ControllerStats stats() const { return controller_.stats(); }

 private:
  Client* client_;
  EventRecorder* events_;
  Controller controller_;
};

}  // namespace pgrs::kube
