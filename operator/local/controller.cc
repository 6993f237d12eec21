#include "operator/local/controller.h"

#include "operator/control/pass.h"
#include "operator/util/log.h"

namespace pgrs::local {

using namespace std::chrono_literals;

std::chrono::milliseconds LocalController::ReconcileAll() {
  std::chrono::milliseconds next = 1000ms;
  for (const auto& name : store_.ListNames()) next = std::min(next, ReconcileOne(name));
  return next;
}

void LocalController::MarkAllStopped() {
  std::string now = api::FormatTime(std::chrono::system_clock::now());
  for (const auto& name : store_.ListNames()) {
    auto set = store_.Get(name);
    if (!set.ok()) continue;
    api::ReplicaSetStatus status = set->status;
    status.phase = "Stopped";
    status.readyInstances = 0;
    for (auto& instance : status.instances) {
      instance.state = "Stopped";
      instance.lagBytes.reset();
      instance.lagSeconds.reset();
      instance.message.clear();
    }
    for (auto& c : status.conditions) {
      std::string wanted = c.type == "Ready" ? "False" : "Unknown";
      if (c.status != wanted) c.lastTransitionTime = now;
      c.status = wanted;
      c.reason = "ControlPlaneStopped";
      c.message = "pgrs local run is not running; its instances were stopped with it";
    }
    Status st = store_.WriteStatus(name, status);
    if (!st.ok()) spdlog::warn("cannot write status set={} error=\"{}\"", name, st.message());
  }
}

void LocalController::TearDown(const api::PostgresReplicaSet& set) {
  spdlog::info("deleting replica set set={}", set.metadata.name);
  for (const auto& instance : runtime_.ListInstances(set)) {
    Status st = runtime_.DeleteInstance(set, instance.name);
    if (!st.ok()) {
      spdlog::error("could not delete instance set={} instance={} error=\"{}\"", set.metadata.name, instance.name,
                    st.message());
      return;
    }
    spdlog::info("deleted instance set={} instance={}", set.metadata.name, instance.name);
  }
  Status st = store_.Remove(set.metadata.name);
  if (!st.ok()) spdlog::error("could not remove set={} error=\"{}\"", set.metadata.name, st.message());
  else spdlog::info("deleted replica set set={}", set.metadata.name);
  lastSummary_.erase(set.metadata.name);
}

std::chrono::milliseconds LocalController::ReconcileOne(const std::string& name) {
  auto object = store_.Get(name);
  if (!object.ok()) {
    spdlog::error("cannot read replica set set={} error=\"{}\"", name, object.status().message());
    return 2000ms;
  }
  api::PostgresReplicaSet& set = *object;
  if (!set.metadata.deletionTimestamp.empty()) {
    TearDown(set);
    return 200ms;
  }

  control::PassResult pass = control::RunPass(set, runtime_, observer_, executor_);
  Status written = store_.WriteStatus(name, pass.status);
  if (!written.ok()) spdlog::warn("cannot write status set={} error=\"{}\"", name, written.message());
  std::string summary = control::Summary(set, pass.status);
  if (lastSummary_[name] != summary) {
    lastSummary_[name] = summary;
    spdlog::info("replica set status set={} {}", name, summary);
  }
  return pass.requeueAfter;
}

}  // namespace pgrs::local
