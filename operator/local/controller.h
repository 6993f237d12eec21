// The local control plane: for every replica set in the store, observe its
// instances, reconcile (pure), execute the plan through the local runtime,
// and write status back. `pgrs local run` calls ReconcileAll in a loop.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "operator/executor/executor.h"
#include "operator/local/runtime.h"
#include "operator/local/store.h"
#include "operator/observer/observer.h"

namespace pgrs::local {

class LocalController {
 public:
  LocalController(LocalStore& store, LocalRuntime& runtime) : store_(store), runtime_(runtime), executor_(runtime) {}

  // One pass over every set; returns how long to wait before the next.
  std::chrono::milliseconds ReconcileAll();
  // After every instance was stopped with the control plane: status says
  // so, rather than keeping a Ready that no longer holds.
  void MarkAllStopped();

 private:
  std::chrono::milliseconds ReconcileOne(const std::string& name);
  void TearDown(const api::PostgresReplicaSet& set);

  LocalStore& store_;
  LocalRuntime& runtime_;
  executor::Executor executor_;
  observer::Observer observer_;
  std::map<std::string, std::string> lastSummary_;  // per set, to log changes only
};

}  // namespace pgrs::local
