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
    : client_(client), events_(events), options_(std::move(options)) {
  std::vector<std::string> namespaces = options_.namespaces;
  if (namespaces.empty()) namespaces.push_back("");
  InformerOptions informerOptions;
  informerOptions.watchTimeoutSeconds = options_.watchTimeoutSeconds;
  for (const auto& ns : namespaces) {
    InformerHandlers handlers;
    handlers.onAdd = [this](const Json& o) { Enqueue(o); };
    handlers.onUpdate = [this](const Json&, const Json& o) { Enqueue(o); };
    handlers.onDelete = [this](const Json& o) { Enqueue(o); };
    informers_.push_back(
        std::make_unique<Informer>(client_, ReplicaSetResource(), ns, informerOptions, std::move(handlers)));
  }
}

ReplicaSetController::~ReplicaSetController() { Stop(); }

void ReplicaSetController::Enqueue(const Json& object) { queue_.Add(KeyOf(object)); }

void ReplicaSetController::StartInformers() {
  for (auto& informer : informers_) informer->Start();
}

bool ReplicaSetController::Synced() const {
  for (const auto& informer : informers_) {
    if (!informer->HasSynced()) return false;
  }
  return true;
}

void ReplicaSetController::StartWorkers(std::function<bool()> mayAct) {
  mayAct_ = std::move(mayAct);
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Work(); });
}

void ReplicaSetController::Stop() {
  for (auto& informer : informers_) informer->Stop();
  queue_.ShutDown();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

void ReplicaSetController::Work() {
  std::string key;
  while (queue_.Get(&key)) {
    if (mayAct_ && !mayAct_()) {
      queue_.Done(key);
      queue_.AddAfter(key, std::chrono::seconds(1));
      continue;
    }
    Status status = Reconcile(key);
    reconciles_.fetch_add(1);
    if (status.ok()) {
      queue_.Forget(key);
    } else {
      errors_.fetch_add(1);
      spdlog::warn("reconcile failed postgresreplicaset={} retries={} error=\"{}\"", key, queue_.NumRequeues(key),
                   status.message());
      queue_.AddRateLimited(key);
    }
    queue_.Done(key);
  }
}

Status ReplicaSetController::Reconcile(const std::string& key) {
  std::string ns, name;
  SplitKey(key, &ns, &name);
  std::optional<Json> cached;
  for (const auto& informer : informers_) {
    if (informer->ns().empty() || informer->ns() == ns) cached = informer->Get(key);
    if (cached) break;
  }
  if (!cached) return Status::Ok();  // deleted: owned objects go by cascade
  if (!GetString(*cached, {"metadata", "deletionTimestamp"}).empty()) return Status::Ok();

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
    if (written.status().code() == StatusCode::kNotFound) return Status::Ok();
    return written.status();
  }
  if (*written) {
    statusWrites_.fetch_add(1);
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
  return Status::Ok();
}

ControllerStats ReplicaSetController::stats() const {
  ControllerStats s;
  s.reconciles = reconciles_.load();
  s.reconcileErrors = errors_.load();
  s.statusWrites = statusWrites_.load();
  s.queueDepth = queue_.Len();
  for (const auto& informer : informers_) {
    s.objects += informer->Size();
    s.relists += informer->stats().expiredRelists;
  }
  return s;
}

}  // namespace pgrs::kube
