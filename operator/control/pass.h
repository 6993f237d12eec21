// One reconcile pass over one replica set, the same in every mode: make
// sure each instance's agent runs, observe (agents + PostgreSQL + the
// primary lease), plan (the pure reconciler), execute through the runtime,
// and return the status to write. The local controller and the Kubernetes
// controller differ only in where the set comes from and status goes to.
#pragma once

#include <chrono>
#include <string>

#include "operator/executor/executor.h"
#include "operator/observer/observer.h"
#include "reconcilers/replicaset.h"

namespace pgrs::control {

struct PassResult {
  api::ReplicaSetStatus status;  // to write back (the plan's, with connection and failures)
  std::chrono::milliseconds requeueAfter{1000};
  Status executed;             // the first failed step, if any
  reconcilers::ObservedSet observed;
  size_t actions = 0;          // planned actions (0 in a steady state)
};

PassResult RunPass(const api::PostgresReplicaSet& set, executor::Runtime& runtime, observer::Observer& observer,
                   executor::Executor& executor);

// "phase=Healthy primary=x ready=3/3 timeline=2": one line that changes
// only when something a person cares about changes.
std::string Summary(const api::PostgresReplicaSet& set, const api::ReplicaSetStatus& status);

}  // namespace pgrs::control
