#include "operator/kube/replicaset_controller.h"

#include <spdlog/spdlog.h>

#include "operator/api/types.h"

namespace pgrs::kube {

Acceptance EvaluateReplicaSet(const Json& object) {
  // Status is ours to write, not the user's to get right.
  Json spec = object;
  if (spec.has_field("status")) spec.erase("status");
  api::ParseResult parsed = api::ParseManifest(spec.serialize());
  Acceptance a;
  if (parsed.errors.empty()) {
    a.accepted = true;
    a.reason = "SpecValid";
    a.message = "the spec is valid";
    return a;
  }
  a.reason = "InvalidSpec";
  for (const auto& e : parsed.errors) a.message += (a.message.empty() ? "" : "; ") + e;
  return a;
}

bool SetCondition(Json& status, const std::string& type, const std::string& conditionStatus,
                  const std::string& reason, const std::string& message, int64_t observedGeneration,
                  const std::string& now) {
  Json conditions = status.has_array_field("conditions") ? status.at("conditions") : Json::array();
  Json updated = Json::array();
  size_t n = 0;
  bool transition = true;
  std::string transitionTime = now;
  for (const auto& c : conditions.as_array()) {
    if (GetString(c, {"type"}) == type) {
      if (GetString(c, {"status"}) == conditionStatus) {
        transition = false;
        std::string previous = GetString(c, {"lastTransitionTime"});
        if (!previous.empty()) transitionTime = previous;
      }
      continue;
    }
    updated[n++] = c;
  }
  Json condition = Json::object();
  condition["type"] = Json::string(type);
  condition["status"] = Json::string(conditionStatus);
  condition["reason"] = Json::string(reason);
  condition["message"] = Json::string(message);
  condition["lastTransitionTime"] = Json::string(transitionTime);
  condition["observedGeneration"] = Json::number(observedGeneration);
  updated[n++] = condition;
  status["conditions"] = updated;
  return transition;
}

ReplicaSetController::ReplicaSetController(Client* client, EventRecorder* events, ControllerOptions options)
    : client_(client), events_(events),
      controller_("postgresreplicaset", client, ReplicaSetResource(), std::move(options)) {
  controller_.SetReconciler([this](const std::string& key) { return Reconcile(key); });
}

ReconcileResult ReplicaSetController::Reconcile(const std::string& key) {
  std::string ns, name;
  SplitKey(key, &ns, &name);
  std::optional<Json> cached = controller_.Get(key);
  if (!cached) return ReconcileResult::Done();  // deleted: owned objects go by cascade
  if (!GetString(*cached, {"metadata", "deletionTimestamp"}).empty()) return ReconcileResult::Done();

  Acceptance verdict;
  bool transition = false;
  auto written = UpdateStatusWithRetry(client_, ReplicaSetResource(), ns, name, [&](Json& object) {
    // Judge the fresh object, not the cached one: it may be newer.
    verdict = EvaluateReplicaSet(object);
    int64_t generation = GetInt(object, {"metadata", "generation"}).value_or(0);
    Json& status = object["status"];
    if (!status.is_object()) status = Json::object();
    status["observedGeneration"] = Json::number(generation);
    transition = SetCondition(status, "Accepted", verdict.accepted ? "True" : "False", verdict.reason,
                              verdict.message, generation, FormatRfc3339(std::chrono::system_clock::now()));
  });
  if (!written.ok()) {
    if (written.status().code() == StatusCode::kNotFound) return ReconcileResult::Done();
    return ReconcileResult::Failed(written.status());
  }
  if (*written) {
    controller_.CountStatusWrite();
    spdlog::info("recorded status postgresreplicaset={} accepted={} reason={}", key, verdict.accepted,
                 verdict.reason);
    if (transition && events_ != nullptr) {
      if (verdict.accepted) {
        events_->Record(*cached, "Normal", "Accepted", verdict.message);
      } else {
        events_->Record(*cached, "Warning", "InvalidSpec", verdict.message);
      }
    }
  }
  return ReconcileResult::Done();
}

}  // namespace pgrs::kube
