#include "operator/control/pass.h"

#include "operator/lease/lease.h"
#include "operator/util/log.h"

namespace pgrs::control {

PassResult RunPass(const api::PostgresReplicaSet& set, executor::Runtime& runtime, observer::Observer& observer,
                   executor::Executor& executor) {
  const std::string& name = set.metadata.name;
  PassResult result;
  result.status = set.status;

  // Adopt what exists: every instance gets a running agent.
  auto records = runtime.ListInstances(set);
  for (const auto& r : records) {
    Status st = runtime.EnsureAgent(set, r);
    if (!st.ok()) spdlog::warn("agent not started set={} instance={} error=\"{}\"", name, r.name, st.message());
  }
  auto secrets = runtime.Secrets(set);
  if (!secrets.ok()) {
    spdlog::error("cannot read secrets set={} error=\"{}\"", name, secrets.status().message());
    result.executed = secrets.status();
    result.requeueAfter = std::chrono::milliseconds(2000);
    return result;
  }
  std::vector<observer::InstanceTarget> targets;
  for (const auto& r : records) {
    observer::InstanceTarget t{r.name, r.index, r.host, r.port, "", "", r.stopping, std::nullopt};
    if (auto endpoint = runtime.Endpoint(set, r.name); endpoint.ok()) {
      t.agentUrl = endpoint->url;
      t.agentToken = endpoint->token;
      t.agentTls = endpoint->tls;
    }
    targets.push_back(t);
  }
  result.observed = observer.ObserveSet(targets, {secrets->superuserPassword, secrets->tlsCAFile});
  if (auto store = lease::OpenLease(runtime.LeaseLocation(set)); store.ok()) {
    if (auto current = (*store)->Get(); current.ok()) {
      result.observed.lease = {current->exists, current->holder, current->renewTimeMs, current->durationSeconds};
    }
  }
  auto plan = reconcilers::Reconcile(set, result.observed, std::chrono::system_clock::now());
  result.actions = plan.actions.size();
  for (const auto& action : plan.actions) spdlog::info("planned set={} {}", name, action.ToString());
  if (plan.status.targetPrimary != set.status.targetPrimary ||
      plan.status.promotionReason != set.status.promotionReason) {
    spdlog::info("promotion state changed set={} currentPrimary={} targetPrimary={} reason={}", name,
                 plan.status.currentPrimary, plan.status.targetPrimary, plan.status.promotionReason);
  }
  if (plan.status.currentPrimary != set.status.currentPrimary && !set.status.currentPrimary.empty() &&
      !plan.status.failovers.empty()) {
    const auto& f = plan.status.failovers.back();
    spdlog::warn("primary changed set={} from={} to={} reason={} timeline={} unavailableSeconds={:.3f}", name, f.from,
                 f.to, f.reason, f.timeline, f.unavailableSeconds);
  }
  result.executed = executor.Execute(set, plan, result.observed);

  result.status = plan.status;
  result.status.connection = runtime.Connection(set, runtime.ListInstances(set));
  if (!result.executed.ok()) {
    // The next pass sees the world as the failure left it; say what failed.
    for (auto& c : result.status.conditions) {
      if (c.type == "Progressing") {
        c.message += (c.message.empty() ? "" : "; ") + ("last step failed: " + result.executed.message());
      }
    }
  }
  result.requeueAfter = plan.requeueAfter;
  return result;
}

std::string Summary(const api::PostgresReplicaSet& set, const api::ReplicaSetStatus& status) {
  const api::Condition* ready = api::FindCondition(status, "Ready");
  const api::Condition* progressing = api::FindCondition(status, "Progressing");
  return "phase=" + status.phase + " primary=" + status.currentPrimary +
         " ready=" + std::to_string(status.readyInstances) + "/" + std::to_string(set.spec.instances.value_or(1)) +
         " timeline=" + std::to_string(status.timeline) + " readyCondition=" + (ready ? ready->status : "Unknown") +
         " progress=\"" + (progressing != nullptr ? progressing->message : "") + "\"";
}

}  // namespace pgrs::control
