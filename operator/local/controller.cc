#include "operator/local/controller.h"

#include "operator/lease/lease.h"
#include "operator/observer/observer.h"
#include "operator/util/log.h"
#include "reconcilers/replicaset.h"

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

  // Adopt what exists: every recorded instance gets a running agent.
  auto records = runtime_.ListInstances(set);
  for (const auto& r : records) {
    Status st = runtime_.EnsureAgent(set, r);
    if (!st.ok()) spdlog::warn("agent not started set={} instance={} error=\"{}\"", name, r.name, st.message());
  }
  auto secrets = runtime_.Secrets(set);
  if (!secrets.ok()) {
    spdlog::error("cannot read secrets set={} error=\"{}\"", name, secrets.status().message());
    return 2000ms;
  }
  std::vector<observer::InstanceTarget> targets;
  for (const auto& r : records) {
    observer::InstanceTarget t{r.name, r.index, r.host, r.port, "", ""};
    if (auto endpoint = runtime_.Endpoint(set, r.name); endpoint.ok()) {
      t.agentUrl = endpoint->url;
      t.agentToken = endpoint->token;
    }
    targets.push_back(t);
  }
  auto observed = observer_.ObserveSet(targets, secrets->superuserPassword);
  if (auto store = lease::OpenLease(runtime_.LeaseLocation(set)); store.ok()) {
    if (auto current = (*store)->Get(); current.ok()) {
      observed.lease = {current->exists, current->holder, current->renewTimeMs, current->durationSeconds};
    }
  }
  auto plan = reconcilers::Reconcile(set, observed, std::chrono::system_clock::now());
  for (const auto& action : plan.actions) {
    spdlog::info("planned set={} {}", name, action.ToString());
  }
  if (plan.status.targetPrimary != set.status.targetPrimary || plan.status.promotionReason != set.status.promotionReason) {
    spdlog::info("promotion state changed set={} currentPrimary={} targetPrimary={} reason={}", name,
                 plan.status.currentPrimary, plan.status.targetPrimary, plan.status.promotionReason);
  }
  if (plan.status.currentPrimary != set.status.currentPrimary && !set.status.currentPrimary.empty() &&
      !plan.status.failovers.empty()) {
    const auto& f = plan.status.failovers.back();
    spdlog::warn("primary changed set={} from={} to={} reason={} timeline={} unavailableSeconds={:.3f}", name, f.from,
                 f.to, f.reason, f.timeline, f.unavailableSeconds);
  }
  Status executed = executor_.Execute(set, plan, observed);

  api::ReplicaSetStatus status = plan.status;
  status.connection = runtime_.Connection(set, runtime_.ListInstances(set));
  if (!executed.ok()) {
    // The next pass sees the world as the failure left it; say what failed.
    for (auto& c : status.conditions) {
      if (c.type == "Progressing") c.message += (c.message.empty() ? "" : "; ") + ("last step failed: " + executed.message());
    }
  }
  Status written = store_.WriteStatus(name, status);
  if (!written.ok()) spdlog::warn("cannot write status set={} error=\"{}\"", name, written.message());

  const api::Condition* ready = api::FindCondition(status, "Ready");
  const api::Condition* progressing = api::FindCondition(status, "Progressing");
  std::string summary = "phase=" + status.phase + " primary=" + status.currentPrimary +
                        " ready=" + std::to_string(status.readyInstances) + "/" +
                        std::to_string(set.spec.instances.value_or(1)) + " timeline=" + std::to_string(status.timeline);
  std::string detail = progressing != nullptr ? progressing->message : "";
  if (lastSummary_[name] != summary + detail) {
    lastSummary_[name] = summary + detail;
    spdlog::info("replica set status set={} {} readyCondition={} progress=\"{}\"", name, summary,
                 ready ? ready->status : "Unknown", detail);
  }
  return plan.requeueAfter;
}

}  // namespace pgrs::local
