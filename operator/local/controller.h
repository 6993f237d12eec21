// The local control plane: for every replica set in the store, observe its
// instances, reconcile (pure), execute the plan through the local runtime,
// and write status back. `pgrs local run` calls ReconcileAll in a loop.
#pragma once

#include <chrono>
#include <future>
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
  // spec.backup.schedule, before the pass: folds a finished scheduled
  // backup into set.status.backup and starts the one that is due on a
  // thread of its own, so the reconcile loop never waits for a backup.
  void RunSchedule(api::PostgresReplicaSet& set, std::chrono::system_clock::time_point now);

  LocalStore& store_;
  LocalRuntime& runtime_;
  executor::Executor executor_;
  observer::Observer observer_;
  std::map<std::string, std::string> lastSummary_;  // per set, to log changes only
  // Per set, the scheduled backup running now (its label or failure).
  // Destroying one waits for it: a set's backup ends once its instances stop.
  std::map<std::string, std::future<Result<std::string>>> scheduled_;
};

}  // namespace pgrs::local
