// The test API server's Pod lifecycle, as the real registry and the
// disruption controller keep it: binding (pods/binding), graceful deletion
// (the pod strategy of registry/core/pod), eviction (pods/eviction, checked
// against PodDisruptionBudgets) and the budgets' status.
#include <algorithm>
#include <cmath>

#include "e2e/kube/apiserver.h"
#include "e2e/kube/apiserver_internal.h"

namespace pgrs::e2e {

using namespace apiserver_internal;
using kube::GetInt;
using kube::GetString;
using SystemClock = std::chrono::system_clock;

namespace {

constexpr char kMultipleBudgets[] =
    "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.";
constexpr char kBudgetViolated[] = "Cannot evict pod as it would violate the pod's disruption budget.";

bool IsTerminalPhase(const std::string& phase) { return phase == "Succeeded" || phase == "Failed"; }

bool IsTerminating(const Json& object) { return kube::GetField(object, {"metadata", "deletionTimestamp"}) != nullptr; }

bool IsPodReady(const Json& pod) {
  const Json* conditions = kube::GetField(pod, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const auto& c : conditions->as_array()) {
    if (GetString(c, {"type"}) == "Ready") return GetString(c, {"status"}) == "True";
  }
  return false;
}

const Json* ControllerOf(const Json& object) {
  const Json* owners = kube::GetField(object, {"metadata", "ownerReferences"});
  if (owners == nullptr || !owners->is_array()) return nullptr;
  for (const auto& ref : owners->as_array()) {
    const Json* controller = kube::GetField(ref, {"controller"});
    if (controller != nullptr && controller->is_boolean() && controller->as_bool()) return &ref;
  }
  return nullptr;
}

// intstr.GetScaledValueFromIntOrPercent(value, total, roundUp=true).
std::optional<int64_t> ScaledValue(const Json& value, int64_t total) {
  if (value.is_number()) return value.as_number().to_int64();
  if (!value.is_string()) return std::nullopt;
  std::string text = value.as_string();
  if (text.empty() || text.back() != '%') return std::nullopt;
  text.pop_back();
  if (text.empty() || !std::all_of(text.begin(), text.end(), ::isdigit)) return std::nullopt;
  return static_cast<int64_t>(std::ceil(static_cast<double>(std::stoll(text)) * static_cast<double>(total) / 100.0));
}

// The objects of one namespace in a store map keyed "ns/name".
template <typename Map, typename F>
void ForEachInNamespace(Map& objects, const std::string& ns, F f) {
  std::string prefix = ns + "/";
  for (auto it = objects.lower_bound(prefix); it != objects.end() && it->first.rfind(prefix, 0) == 0; ++it) {
    f(it->first, it->second);
  }
}

// metav1.Condition semantics: lastTransitionTime moves only with the status.
void SetCondition(Json& status, const Json* oldConditions, const std::string& type, const std::string& value,
                  const std::string& reason, const std::string& message, int64_t observedGeneration) {
  std::string since = NowRfc3339();
  if (oldConditions != nullptr && oldConditions->is_array()) {
    for (const auto& c : oldConditions->as_array()) {
      if (GetString(c, {"type"}) == type && GetString(c, {"status"}) == value) {
        since = GetString(c, {"lastTransitionTime"});
      }
    }
  }
  Json c = Json::object();
  c["type"] = Json::string(type);
  c["status"] = Json::string(value);
  c["reason"] = Json::string(reason);
  c["message"] = Json::string(message);
  c["observedGeneration"] = Json::number(observedGeneration);
  c["lastTransitionTime"] = Json::string(since);
  status["conditions"] = Json::array();
  status["conditions"][0] = c;
}

void SetDisruptionAllowed(Json& status, const Json* oldConditions, int64_t generation) {
  bool allowed = GetInt(status, {"disruptionsAllowed"}).value_or(0) > 0;
  SetCondition(status, oldConditions, "DisruptionAllowed", allowed ? "True" : "False",
               allowed ? "SufficientPods" : "InsufficientPods", "", generation);
}

}  // namespace

ApiResponse ApiServer::BindLocked(const Parsed& req, const Json& body) {
  if (!body.is_object()) return Error(400, "BadRequest", "body must be a JSON object");
  std::string bindingName = kube::NameOf(body);
  if (!bindingName.empty() && bindingName != req.name) {
    return Error(400, "BadRequest", "name in URL does not match name in Binding object");
  }
  auto& pods = store_[kPodsBase];
  auto it = pods.find(req.Key());
  if (it == pods.end()) return NotFound("pods", req.name);
  std::string kind = GetString(body, {"target", "kind"});
  std::string node = GetString(body, {"target", "name"});
  if (!kind.empty() && kind != "Node") {
    return Error(422, "Invalid", "Binding \"" + req.name + "\" is invalid: target.kind: Unsupported value: \"" + kind +
                                     "\": supported values: \"Node\", \"<empty>\"");
  }
  if (node.empty()) {
    return Error(422, "Invalid", "Binding \"" + req.name + "\" is invalid: target.name: Required value");
  }
  Json& pod = it->second;
  std::string uid = GetString(body, {"metadata", "uid"});
  if (!uid.empty() && uid != kube::UidOf(pod)) {
    return Conflict("pods/binding", req.name,
                    "Precondition failed: UID in precondition: " + uid + ", UID in object meta: " + kube::UidOf(pod));
  }
  if (IsTerminating(pod)) {
    return Conflict("pods/binding", req.name, "pod " + req.name + " is being deleted, cannot be assigned to a host");
  }
  if (std::string bound = GetString(pod, {"spec", "nodeName"}); !bound.empty()) {
    return Conflict("pods/binding", req.name, "pod " + req.name + " is already assigned to node \"" + bound + "\"");
  }
  Json before = pod;
  pod["spec"]["nodeName"] = Json::string(node);
  // The scheduler's condition, set by the registry with the binding.
  Json conditions = Json::array();
  size_t n = 0;
  if (const Json* old = kube::GetField(pod, {"status", "conditions"}); old != nullptr && old->is_array()) {
    for (const auto& c : old->as_array()) {
      if (GetString(c, {"type"}) != "PodScheduled") conditions[n++] = c;
    }
  }
  Json scheduled = Json::object();
  scheduled["type"] = Json::string("PodScheduled");
  scheduled["status"] = Json::string("True");
  scheduled["lastTransitionTime"] = Json::string(NowRfc3339());
  conditions[n++] = scheduled;
  pod["status"]["conditions"] = conditions;
  pod["metadata"]["generation"] = Json::number(GetInt(pod, {"metadata", "generation"}).value_or(0) + 1);
  pod["metadata"]["resourceVersion"] = Json::string(std::to_string(++rv_));
  RecordLocked(kPodsBase, req.ns, "MODIFIED", pod, before);
  return Success(201);
}

// rest.BeforeDelete with the pod strategy's CheckGracefulDelete, then the
// store's rule: a grace period above 0, or finalizers, keep the object.
ApiResponse ApiServer::DeletePodLocked(const std::string& key, const DeleteRequest& options) {
  Json& pod = store_[kPodsBase][key];
  std::optional<int64_t> requested = options.gracePeriodSeconds;
  if (requested && *requested < 0) requested = 1;  // negative values count as 1 s
  const Json* finalizers = kube::GetField(pod, {"metadata", "finalizers"});
  bool held = finalizers != nullptr && finalizers->is_array() && finalizers->as_array().size() > 0;
  const std::string ns = kube::NamespaceOf(pod);
  const Json before = pod;
  int64_t period;
  if (IsTerminating(pod)) {
    int64_t current = GetInt(pod, {"metadata", "deletionGracePeriodSeconds"}).value_or(0);
    if (current > 0) {
      // A deletion is pending: only a shorter grace period changes it.
      if (!requested || *requested >= current) return Ok(pod);
      period = *requested;
      auto timestamp = kube::ParseTime(GetString(pod, {"metadata", "deletionTimestamp"})).value_or(SystemClock::now());
      timestamp += std::chrono::seconds(period - current);
      pod["metadata"]["deletionTimestamp"] = Json::string(kube::FormatRfc3339(timestamp));
      pod["metadata"]["deletionGracePeriodSeconds"] = Json::number(period);
    } else {
      if (held) return Ok(pod);  // the grace is over: the finalizers hold it
      period = 0;
    }
  } else {
    period = requested ? *requested : GetInt(pod, {"spec", "terminationGracePeriodSeconds"}).value_or(30);
    // Nothing runs an unscheduled Pod or a finished one: it goes at once.
    if (GetString(pod, {"spec", "nodeName"}).empty()) period = 0;
    if (IsTerminalPhase(GetString(pod, {"status", "phase"}))) period = 0;
    if (period < 0) period = 1;
    pod["metadata"]["deletionTimestamp"] =
        Json::string(kube::FormatRfc3339(SystemClock::now() + std::chrono::seconds(period)));
    pod["metadata"]["deletionGracePeriodSeconds"] = Json::number(period);
    pod["metadata"]["generation"] = Json::number(GetInt(pod, {"metadata", "generation"}).value_or(0) + 1);
  }
  if (period > 0 || held) {
    pod["metadata"]["resourceVersion"] = Json::string(std::to_string(++rv_));
    RecordLocked(kPodsBase, ns, "MODIFIED", pod, before);
    return Ok(pod);
  }
  Json deleted = pod;
  RemoveLocked(kPodsBase, key, options.propagationPolicy == "Orphan");
  return Ok(deleted);
}

// The eviction REST handler (registry/core/pod/storage/eviction.go).
ApiResponse ApiServer::EvictLocked(const Parsed& req, const Json& body) {
  if (!body.is_object()) return Error(400, "BadRequest", "body must be a JSON object");
  std::string evictionName = kube::NameOf(body);
  if (!evictionName.empty() && evictionName != req.name) {
    return Error(400, "BadRequest", "name in URL does not match name in Eviction object");
  }
  auto& pods = store_[kPodsBase];
  auto it = pods.find(req.Key());
  if (it == pods.end()) return NotFound("pods", req.name);
  DeleteRequest options;
  if (const Json* d = kube::GetField(body, {"deleteOptions"}); d != nullptr && d->is_object()) {
    options.gracePeriodSeconds = GetInt(*d, {"gracePeriodSeconds"});
    options.uid = GetString(*d, {"preconditions", "uid"});
    options.resourceVersion = GetString(*d, {"preconditions", "resourceVersion"});
    options.propagationPolicy = GetString(*d, {"propagationPolicy"});
  }
  const std::string key = req.Key();
  auto deletePod = [&]() -> ApiResponse {
    ApiResponse deleted = DeleteObjectLocked(kPodsBase, key, options);
    return deleted.status >= 300 ? deleted : Success(201);
  };
  const Json pod = it->second;
  std::string phase = GetString(pod, {"status", "phase"});
  // A Pod that is finished, not started or already going disrupts nothing
  // more: no budget is asked.
  if (IsTerminating(pod) || IsTerminalPhase(phase) || phase.empty() || phase == "Pending") return deletePod();

  std::vector<std::string> matching;
  ForEachInNamespace(store_[kBudgetsBase], req.ns, [&](const std::string& budgetKey, const Json& budget) {
    const Json* selector = kube::GetField(budget, {"spec", "selector"});
    if (selector != nullptr && MatchesLabelSelector(pod, *selector)) matching.push_back(budgetKey);
  });
  if (matching.empty()) return deletePod();
  if (matching.size() > 1) {
    Json details = Json::object();
    details["causes"][0]["message"] = Json::string(kMultipleBudgets);
    return Error(500, "InternalError", std::string("Internal error occurred: ") + kMultipleBudgets, details);
  }
  SyncBudgetLocked(matching[0]);  // the controller folded in is never behind
  Json& budget = store_[kBudgetsBase][matching[0]];
  const std::string budgetName = kube::NameOf(budget);
  int64_t currentHealthy = GetInt(budget, {"status", "currentHealthy"}).value_or(0);
  int64_t desiredHealthy = GetInt(budget, {"status", "desiredHealthy"}).value_or(0);
  if (!IsPodReady(pod)) {
    // unhealthyPodEvictionPolicy: IfHealthyBudget (the default) lets an
    // unready Pod go while the budget holds; AlwaysAllow always.
    if (GetString(budget, {"spec", "unhealthyPodEvictionPolicy"}) == "AlwaysAllow") return deletePod();
    if (currentHealthy >= desiredHealthy && desiredHealthy > 0) return deletePod();
  }
  auto tooManyRequests = [&](const std::string& cause, int retryAfter) {
    Json details = Json::object();
    details["causes"][0]["reason"] = Json::string("DisruptionBudget");
    details["causes"][0]["message"] = Json::string(cause);
    if (retryAfter > 0) details["retryAfterSeconds"] = Json::number(retryAfter);
    ApiResponse refused = Error(429, "TooManyRequests", kBudgetViolated, details);
    refused.retryAfterSeconds = retryAfter;
    return refused;
  };
  if (GetInt(budget, {"status", "observedGeneration"}).value_or(0) <
      GetInt(budget, {"metadata", "generation"}).value_or(0)) {
    return tooManyRequests("The disruption budget " + budgetName + " is still being processed by the server.", 10);
  }
  int64_t allowed = GetInt(budget, {"status", "disruptionsAllowed"}).value_or(0);
  if (allowed <= 0) {
    return tooManyRequests("The disruption budget " + budgetName + " needs " + std::to_string(desiredHealthy) +
                               " healthy pods and has " + std::to_string(currentHealthy) + " currently",
                           0);
  }
  // checkAndDecrement: the budget learns of the disruption before the Pod
  // goes, so that a second eviction cannot count it as healthy.
  Json before = budget;
  Json& status = budget["status"];
  status["disruptionsAllowed"] = Json::number(allowed - 1);
  if (allowed - 1 == 0) {
    SetDisruptionAllowed(status, kube::GetField(before, {"status", "conditions"}),
                         GetInt(budget, {"status", "observedGeneration"}).value_or(0));
  }
  status["disruptedPods"][req.name] = Json::string(NowRfc3339());
  budget["metadata"]["resourceVersion"] = Json::string(std::to_string(++rv_));
  RecordLocked(kBudgetsBase, req.ns, "MODIFIED", budget, before);  // the controller looks again after the request
  return deletePod();
}

void ApiServer::NoteChangeForBudgetsLocked(const std::string& base, const Json& object, const Json& previous) {
  if (syncingBudgets_) return;  // the controller's own writes
  if (base == kBudgetsBase) {
    dirtyBudgets_.insert(kube::KeyOf(object));
    return;
  }
  auto budgets = store_.find(kBudgetsBase);
  if (budgets == store_.end() || budgets->second.empty()) return;
  const std::string ns = kube::NamespaceOf(object);
  auto markBudgetsOf = [&](const Json& pod) {
    ForEachInNamespace(budgets->second, ns, [&](const std::string& key, const Json& budget) {
      const Json* selector = kube::GetField(budget, {"spec", "selector"});
      if (selector != nullptr && MatchesLabelSelector(pod, *selector)) dirtyBudgets_.insert(key);
    });
  };
  if (base == kPodsBase) {
    markBudgetsOf(object);
    if (!previous.is_null()) markBudgetsOf(previous);
    return;
  }
  // A controller whose scale may have changed: the budgets over its Pods.
  if (previous.is_null() || kube::GetField(object, {"spec"}) == nullptr) return;
  if (kube::GetField(object, {"spec", "instances"}) == nullptr && kube::GetField(object, {"spec", "replicas"}) == nullptr) {
    return;
  }
  if (GetInt(object, {"metadata", "generation"}) == GetInt(previous, {"metadata", "generation"})) return;
  const std::string uid = kube::UidOf(object);
  auto pods = store_.find(kPodsBase);
  if (pods == store_.end()) return;
  ForEachInNamespace(pods->second, ns, [&](const std::string&, const Json& pod) {
    const Json* controller = ControllerOf(pod);
    if (controller != nullptr && GetString(*controller, {"uid"}) == uid) markBudgetsOf(pod);
  });
}

void ApiServer::SyncBudgetsLocked() {
  while (!dirtyBudgets_.empty()) {
    std::set<std::string> keys;
    keys.swap(dirtyBudgets_);
    for (const auto& key : keys) SyncBudgetLocked(key);
  }
}

std::optional<int64_t> ApiServer::OwnerScaleLocked(const std::string& ns, const Json& ownerRef) const {
  const std::string kind = GetString(ownerRef, {"kind"});
  const std::string key = kube::MakeKey(ns, GetString(ownerRef, {"name"}));
  for (const auto& [base, objects] : store_) {
    auto k = kinds_.find(base);
    if (k == kinds_.end() || k->second != kind) continue;
    auto it = objects.find(key);
    if (it == objects.end() || kube::UidOf(it->second) != GetString(ownerRef, {"uid"})) continue;
    // What GET .../scale answers: spec.instances (PostgresReplicaSet) or spec.replicas.
    if (auto instances = GetInt(it->second, {"spec", "instances"})) return instances;
    if (auto replicas = GetInt(it->second, {"spec", "replicas"})) return replicas;
  }
  return std::nullopt;
}

// The disruption controller's sync of one budget (pkg/controller/disruption).
void ApiServer::SyncBudgetLocked(const std::string& key) {
  auto& budgets = store_[kBudgetsBase];
  auto it = budgets.find(key);
  if (it == budgets.end()) return;
  Json& budget = it->second;
  const std::string ns = kube::NamespaceOf(budget);
  const Json* selector = kube::GetField(budget, {"spec", "selector"});
  std::vector<const Json*> pods;
  ForEachInNamespace(store_[kPodsBase], ns, [&](const std::string&, const Json& pod) {
    if (selector != nullptr && MatchesLabelSelector(pod, *selector)) pods.push_back(&pod);
  });
  const auto now = SystemClock::now();

  // Evicted Pods not yet deleted count as disrupted until their time is up.
  Json disrupted = Json::object();
  const Json* wasDisrupted = kube::GetField(budget, {"status", "disruptedPods"});
  for (const Json* pod : pods) {
    const std::string name = kube::NameOf(*pod);
    if (IsTerminating(*pod) || wasDisrupted == nullptr || !wasDisrupted->is_object() ||
        !wasDisrupted->has_string_field(name)) {
      continue;
    }
    auto since = kube::ParseTime(wasDisrupted->at(name).as_string());
    if (since && *since + options_.disruptedPodTimeout > now) disrupted[name] = wasDisrupted->at(name);
  }

  // expectedPods: the controllers' scale, or the Pods themselves.
  auto expectedScale = [&]() -> int64_t {
    std::map<std::string, int64_t> scales;
    bool unknown = false;
    for (const Json* pod : pods) {
      const Json* controller = ControllerOf(*pod);
      if (controller == nullptr) continue;  // unmanaged: not counted
      std::string uid = GetString(*controller, {"uid"});
      if (scales.count(uid)) continue;
      auto scale = OwnerScaleLocked(ns, *controller);
      if (!scale) unknown = true;
      else scales[uid] = *scale;
    }
    if (unknown || scales.empty()) return static_cast<int64_t>(pods.size());
    int64_t sum = 0;
    for (const auto& [uid, scale] : scales) sum += scale;
    return sum;
  };
  int64_t expected = 0, desired = 0;
  std::string failure;
  const Json* minAvailable = kube::GetField(budget, {"spec", "minAvailable"});
  const Json* maxUnavailable = kube::GetField(budget, {"spec", "maxUnavailable"});
  if (maxUnavailable != nullptr && !maxUnavailable->is_null()) {
    expected = expectedScale();
    auto value = ScaledValue(*maxUnavailable, expected);
    if (!value) failure = "invalid value for IntOrString: invalid type: string is not a percentage";
    desired = std::max<int64_t>(0, expected - value.value_or(0));
  } else if (minAvailable != nullptr && !minAvailable->is_null()) {
    if (minAvailable->is_number()) {
      desired = minAvailable->as_number().to_int64();
      expected = static_cast<int64_t>(pods.size());
    } else {
      expected = expectedScale();
      auto value = ScaledValue(*minAvailable, expected);
      if (!value) failure = "invalid value for IntOrString: invalid type: string is not a percentage";
      desired = value.value_or(0);
    }
  }
  int64_t healthy = 0;
  for (const Json* pod : pods) {
    if (!IsTerminating(*pod) && !disrupted.has_field(kube::NameOf(*pod)) && IsPodReady(*pod)) ++healthy;
  }
  int64_t allowed = healthy - desired;
  if (expected <= 0 || allowed <= 0) allowed = 0;

  const Json before = budget;
  const Json* oldConditions = kube::GetField(before, {"status", "conditions"});
  int64_t generation = GetInt(budget, {"metadata", "generation"}).value_or(0);
  Json status = Json::object();
  status["observedGeneration"] = Json::number(generation);
  status["disruptionsAllowed"] = Json::number(failure.empty() ? allowed : 0);
  status["currentHealthy"] = Json::number(healthy);
  status["desiredHealthy"] = Json::number(desired);
  status["expectedPods"] = Json::number(expected);
  if (disrupted.size() > 0) status["disruptedPods"] = disrupted;
  if (failure.empty()) {
    SetDisruptionAllowed(status, oldConditions, generation);
  } else {
    SetCondition(status, oldConditions, "DisruptionAllowed", "False", "SyncFailed", failure, generation);
  }
  const Json* oldStatus = kube::GetField(before, {"status"});
  if (oldStatus != nullptr && *oldStatus == status) return;
  budget["status"] = status;
  budget["metadata"]["resourceVersion"] = Json::string(std::to_string(++rv_));
  bool syncing = syncingBudgets_;
  syncingBudgets_ = true;
  RecordLocked(kBudgetsBase, ns, "MODIFIED", budget, before);
  syncingBudgets_ = syncing;
}

void ApiServer::Janitor() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!janitorStop_) {
    janitorCv_.wait_for(lock, std::chrono::milliseconds(500));
    if (janitorStop_) break;
    auto budgets = store_.find(kBudgetsBase);
    if (budgets == store_.end()) continue;
    for (const auto& [key, budget] : budgets->second) {
      const Json* disrupted = kube::GetField(budget, {"status", "disruptedPods"});
      if (disrupted != nullptr && disrupted->is_object() && disrupted->size() > 0) dirtyBudgets_.insert(key);
    }
    SyncBudgetsLocked();
  }
}

}  // namespace pgrs::e2e
