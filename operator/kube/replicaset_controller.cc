#include "operator/kube/replicaset_controller.h"

#include <spdlog/spdlog.h>

#include "operator/api/types.h"
#include "operator/control/pass.h"

namespace pgrs::kube {

namespace {

std::optional<double> UnixSeconds(const std::string& rfc3339) {
  auto t = api::ParseTime(rfc3339);
  if (!t) return std::nullopt;
  return std::chrono::duration<double>(t->time_since_epoch()).count();
}

// status.backup as the metrics' sample; nullopt without spec.backup.
std::optional<OperatorMetrics::BackupSample> BackupSampleOf(const api::ReplicaSetStatus& status) {
  if (!status.backup) return std::nullopt;
  OperatorMetrics::BackupSample sample;
  if (!status.backup->backups.empty()) sample.lastBackupTime = UnixSeconds(status.backup->backups.back().stopTime);
  sample.lastArchivedTime = UnixSeconds(status.backup->lastArchivedTime);
  sample.archiveFailedTotal = status.backup->archiveFailedCount;
  sample.archivingFailing = status.backup->archivingFailing;
  return sample;
}

}  // namespace

Acceptance EvaluateReplicaSet(const Json& object) {
  // Status is ours to write, not the user's to get right.
  Json spec = object;
  if (spec.has_field("status")) spec.erase("status");
  api::ParseResult parsed = api::ParseManifest(spec.serialize());
  Acceptance a;
  if (parsed.errors.empty() && parsed.object) {
    // Local mode's repository paths and secret files mean nothing in a Pod.
    if (auto errors = api::ValidateForMode(*parsed.object, api::Mode::kKubernetes); !errors.empty()) {
      a.reason = "Unsupported";
      for (const auto& e : errors) {
        a.message += (a.message.empty() ? "postgresreplicaset " + parsed.object->metadata.name + ": " : "; ") +
                     e.ToString();
      }
      return a;
    }
  }
  if (parsed.errors.empty() && parsed.object && parsed.object->spec.bootstrap) {
    a.reason = "Unsupported";
    a.message = "postgresreplicaset " + parsed.object->metadata.name +
                ": spec.bootstrap: restoring from a repository is not supported in Kubernetes mode yet (pgrs local "
                "only); remove it";
    return a;
  }
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

ReplicaSetController::ReplicaSetController(Client* client, EventRecorder* events, ControllerOptions options,
                                           ReplicaSetControllerOptions setOptions)
    : client_(client),
      events_(events),
      setOptions_(std::move(setOptions)),
      controller_("postgresreplicaset", client, ReplicaSetResource(), std::move(options)),
      runtime_(client, &controller_, setOptions_.pods),
      executor_(runtime_),
      observer_(setOptions_.observer ? setOptions_.observer : std::make_shared<observer::Observer>()) {
  if (setOptions_.configPusher) executor_.SetConfigPusher(setOptions_.configPusher);
  // Children carry the managed-by label: the caches hold pgrs' objects
  // only, not every Pod and Secret of the namespaces watched.
  for (const Resource& r : {PodResource(), PvcResource(), ServiceResource(), SecretResource(), PdbResource(),
                            ServiceAccountResource(), RoleResource(), RoleBindingResource()}) {
    controller_.Owns(r, kManagedBySelector);
  }
  controller_.SetReconciler([this](const std::string& key) { return Reconcile(key); });
}

ReconcileResult ReplicaSetController::WriteStatus(const std::string& key, const Json& cached,
                                                  const Acceptance& verdict,
                                                  const std::optional<api::ReplicaSetStatus>& computed) {
  std::string ns, name;
  SplitKey(key, &ns, &name);
  const int64_t generation = GetInt(cached, {"metadata", "generation"}).value_or(0);
  const Json previous = cached.has_object_field("status") ? cached.at("status") : Json::object();
  Json status = previous;
  if (computed) {
    auto encoded = ParseJson(api::EncodeStatusJson(*computed));
    if (encoded) status = *encoded;
    // The reconcilers own every condition but Accepted: keep it.
    if (previous.has_array_field("conditions")) {
      for (const auto& c : previous.at("conditions").as_array()) {
        if (GetString(c, {"type"}) == "Accepted") {
          SetCondition(status, "Accepted", GetString(c, {"status"}), GetString(c, {"reason"}),
                       GetString(c, {"message"}), GetInt(c, {"observedGeneration"}).value_or(0),
                       GetString(c, {"lastTransitionTime"}));
        }
      }
    }
  }
  status["observedGeneration"] = Json::number(generation);
  const bool transition = SetCondition(status, "Accepted", verdict.accepted ? "True" : "False", verdict.reason,
                                       verdict.message, generation,
                                       FormatRfc3339(std::chrono::system_clock::now()));
  // Most passes change nothing.
  if (cached.has_field("status") && status == previous) return ReconcileResult::Done();

  // Conditional on the version this pass read: decisions made on an object
  // that changed since (a spec edit, another writer) are not recorded; the
  // next pass reads it afresh and decides again.
  Json object = cached;
  object["status"] = status;
  auto written = client_->UpdateStatus(ReplicaSetResource(), ns, object);
  if (!written.ok()) {
    if (written.status().code() == StatusCode::kNotFound) return ReconcileResult::Done();
    std::lock_guard<std::mutex> lock(mu_);
    written_[key] = "";  // read it from the API next time
    if (written.status().code() == StatusCode::kConflict) {
      spdlog::info("status not written: the object changed since it was read postgresreplicaset={}", key);
      return ReconcileResult::After(std::chrono::milliseconds(1));
    }
    return ReconcileResult::Failed(written.status());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    written_[key] = ResourceVersionOf(*written);
  }
  controller_.CountStatusWrite();
  if (transition) {
    spdlog::info("recorded status postgresreplicaset={} accepted={} reason={}", key, verdict.accepted, verdict.reason);
    if (events_ != nullptr) {
      if (verdict.accepted) events_->Record(cached, "Normal", "Accepted", verdict.message);
      else events_->Record(cached, "Warning", "InvalidSpec", verdict.message);
    }
  }
  return ReconcileResult::Done();
}

std::optional<Json> ReplicaSetController::Read(const std::string& key) {
  std::optional<Json> cached = controller_.Get(key);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = written_.find(key);
    if (it == written_.end()) return cached;
    if (cached && ResourceVersionOf(*cached) == it->second) {
      written_.erase(it);  // the cache has caught up with our write
      return cached;
    }
  }
  // Status is where the truth about roles lives (a promotion is recorded
  // before it is carried out): never decide on a copy older than our own
  // last write. The cache lags it by a watch event; the API does not.
  std::string ns, name;
  SplitKey(key, &ns, &name);
  auto fresh = client_->Get(ReplicaSetResource(), ns, name);
  if (fresh.ok()) return *fresh;
  if (fresh.status().code() == StatusCode::kNotFound) return std::nullopt;
  return cached;  // the API is away; a conditional write will tell
}

ReconcileResult ReplicaSetController::Reconcile(const std::string& key) {
  const auto started = std::chrono::steady_clock::now();
  std::string ns, name;
  SplitKey(key, &ns, &name);
  std::optional<Json> cached = Read(key);
  if (!cached || !GetString(*cached, {"metadata", "deletionTimestamp"}).empty()) {
    // Deleted: its children go by garbage collection (owner references).
    metrics_.RemoveReplicaSet(ns, name);
    runtime_.Forget(ns, name);
    std::lock_guard<std::mutex> lock(mu_);
    lastSummary_.erase(key);
    failovers_.erase(key);
    written_.erase(key);
    return ReconcileResult::Done();
  }
  auto finish = [&](ReconcileResult result) {
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    metrics_.ObserveReconcile(seconds, !result.status.ok());
    metrics_.SetQueueDepth(controller_.stats().queueDepth);
    return result;
  };

  Acceptance verdict = EvaluateReplicaSet(*cached);
  if (!verdict.accepted) return finish(WriteStatus(key, *cached, verdict, std::nullopt));

  api::DecodeResult decoded = api::DecodeReplicaSet(cached->serialize());
  if (!decoded.object) {
    // A status we cannot read (written by someone else) is started afresh.
    Json withoutStatus = *cached;
    withoutStatus.erase("status");
    decoded = api::DecodeReplicaSet(withoutStatus.serialize());
  }
  if (!decoded.object) return finish(ReconcileResult::Failed(Status::Invalid("cannot decode " + key)));
  api::PostgresReplicaSet set = std::move(*decoded.object);
  api::ApplyDefaults(set.spec);

  // What the spec names but the user makes: missing, the set is not
  // accepted (its instances keep running as they are) until it is there.
  if (Status st = runtime_.CheckReferences(set); !st.ok()) {
    if (st.code() != StatusCode::kInvalid) return finish(ReconcileResult::Failed(st));
    Acceptance missing;
    missing.reason = "MissingReference";
    missing.message = st.message();
    ReconcileResult written = WriteStatus(key, *cached, missing, std::nullopt);
    // Nothing tells us when the user makes it: look again.
    if (written.status.ok() && written.requeueAfter.count() == 0) {
      written = ReconcileResult::After(std::chrono::seconds(5));
    }
    return finish(written);
  }
  if (Status st = runtime_.EnsureSetObjects(set); !st.ok()) return finish(ReconcileResult::Failed(st));
  control::PassResult pass = control::RunPass(set, runtime_, *observer_, executor_);
  pass.status.selector = PodSelector(name);
  Status labels = runtime_.SyncRoleLabels(set, pass.status);

  if (pass.status.currentPrimary != set.status.currentPrimary && !set.status.currentPrimary.empty() &&
      !pass.status.failovers.empty()) {
    const auto& f = pass.status.failovers.back();
    {
      std::lock_guard<std::mutex> lock(mu_);
      failovers_[key]++;
    }
    bool switchover = api::IsPlannedPromotion(f.reason);
    char unavailable[32];
    std::snprintf(unavailable, sizeof(unavailable), "%.3f", f.unavailableSeconds);
    if (events_ != nullptr) {
      events_->Record(*cached, switchover ? "Normal" : "Warning", switchover ? "Switchover" : "Failover",
                      "primary moved from " + f.from + " to " + f.to + " (" + f.reason + ", timeline " +
                          std::to_string(f.timeline) + ", writes unavailable " + unavailable + " s)");
    }
  }
  ReconcileResult result = WriteStatus(key, *cached, verdict, pass.status);

  std::vector<OperatorMetrics::InstanceSample> samples;
  bool primaryReady = false;
  for (const auto& i : pass.status.instances) {
    bool ready = i.state == "Running" || i.state == "Streaming";
    if (i.name == pass.status.currentPrimary && i.role == "primary" && ready) primaryReady = true;
    samples.push_back({i.name, i.role, ready, i.lagBytes, i.lagSeconds, i.timeline});
  }
  int64_t failovers = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failovers = failovers_[key];
  }
  metrics_.SetReplicaSet(ns, name, set.spec.instances.value_or(1), pass.status.readyInstances, primaryReady,
                         failovers, samples, BackupSampleOf(pass.status));

  std::string summary = control::Summary(set, pass.status);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (lastSummary_[key] != summary) {
      lastSummary_[key] = summary;
      spdlog::info("replica set status postgresreplicaset={} {}", key, summary);
    }
  }
  if (!result.status.ok()) return finish(result);
  if (!labels.ok()) return finish(ReconcileResult::Failed(labels));
  // A settled set whose Pods predate its repository: one Pod at a time.
  bool rolled = false;
  if (pass.actions == 0 && pass.status.phase == "Healthy" && pass.status.promotionReason.empty()) {
    auto deleted = runtime_.RollOutdatedPod(set, pass.status);
    if (!deleted.ok()) return finish(ReconcileResult::Failed(deleted.status()));
    rolled = !deleted->empty();
  }
  auto requeue = pass.requeueAfter;
  if (pass.actions == 0 && (pass.status.phase == "Healthy" || pass.status.phase == "Degraded")) {
    requeue = std::max(requeue, setOptions_.observeInterval);
  }
  if (rolled) requeue = std::min(requeue, std::chrono::milliseconds(500));
  // A status write refused as stale asks for a fresh look at once.
  if (result.requeueAfter.count() > 0) requeue = std::min(requeue, result.requeueAfter);
  // 0 from the reconcilers means "at once" (a decision was recorded; now act).
  requeue = std::max(requeue, std::chrono::milliseconds(1));
  return finish(ReconcileResult::After(requeue));
}

}  // namespace pgrs::kube
