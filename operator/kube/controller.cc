#include "operator/kube/controller.h"

#include <spdlog/spdlog.h>

namespace pgrs::kube {

Controller::Controller(std::string name, Client* client, Resource primary, ControllerOptions options)
    : name_(std::move(name)),
      client_(client),
      primary_(std::move(primary)),
      options_(std::move(options)),
      queue_(RealClock::Get(), options_.retry) {
  auto watched = std::make_unique<Watched>();
  watched->resource = primary_;
  watched->primary = true;
  AddInformers(*watched, "");
  watched_.push_back(std::move(watched));
}

Controller::~Controller() { Stop(); }

void Controller::SetReconciler(Reconciler reconciler) { reconciler_ = std::move(reconciler); }

void Controller::AddInformers(Watched& watched, const std::string& labelSelector) {
  std::vector<std::string> namespaces = options_.namespaces;
  if (namespaces.empty()) namespaces.push_back("");
  InformerOptions informerOptions;
  informerOptions.watchTimeoutSeconds = options_.watchTimeoutSeconds;
  informerOptions.labelSelector = labelSelector;
  for (const auto& ns : namespaces) {
    InformerHandlers handlers;
    if (watched.primary) {
      handlers.onAdd = [this](const Json& o) { Enqueue(KeyOf(o)); };
      handlers.onUpdate = [this](const Json&, const Json& o) { Enqueue(KeyOf(o)); };
      handlers.onDelete = [this](const Json& o) { Enqueue(KeyOf(o)); };
    } else {
      Watched* w = &watched;
      handlers.onAdd = [this, w](const Json& o) {
        w->Index(o, true);
        EnqueueOwners(o);
      };
      handlers.onUpdate = [this, w](const Json& before, const Json& after) {
        w->Index(before, false);
        w->Index(after, true);
        EnqueueOwners(before);
        EnqueueOwners(after);
      };
      handlers.onDelete = [this, w](const Json& o) {
        w->Index(o, false);
        EnqueueOwners(o);
      };
    }
    watched.informers.push_back(
        std::make_unique<Informer>(client_, watched.resource, ns, informerOptions, std::move(handlers)));
  }
}

void Controller::Watched::Index(const Json& object, bool add) {
  const Json* refs = GetField(object, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return;
  const std::string key = KeyOf(object);
  std::lock_guard<std::mutex> lock(indexMu);
  for (const auto& ref : refs->as_array()) {
    std::string uid = GetString(ref, {"uid"});
    if (uid.empty()) continue;
    if (add) {
      byOwner[uid].insert(key);
    } else if (auto it = byOwner.find(uid); it != byOwner.end()) {
      it->second.erase(key);
      if (it->second.empty()) byOwner.erase(it);
    }
  }
}

void Controller::Owns(const Resource& owned, const std::string& labelSelector) {
  auto watched = std::make_unique<Watched>();
  watched->resource = owned;
  watched->primary = false;
  AddInformers(*watched, labelSelector);
  watched_.push_back(std::move(watched));
}

void Controller::EnqueueOwners(const Json& owned) {
  const Json* refs = GetField(owned, {"metadata", "ownerReferences"});
  if (refs == nullptr || !refs->is_array()) return;
  for (const auto& ref : refs->as_array()) {
    if (GetString(ref, {"kind"}) != primary_.kind) continue;
    if (GetString(ref, {"apiVersion"}) != primary_.ApiVersion()) continue;
    // Owner references name an owner in the same namespace.
    Enqueue(MakeKey(NamespaceOf(owned), GetString(ref, {"name"})));
  }
}

void Controller::StartInformers() {
  for (auto& watched : watched_) {
    for (auto& informer : watched->informers) informer->Start();
  }
}

bool Controller::Synced() const {
  for (const auto& watched : watched_) {
    for (const auto& informer : watched->informers) {
      if (!informer->HasSynced()) return false;
    }
  }
  return true;
}

void Controller::StartWorkers(std::function<bool()> mayAct) {
  mayAct_ = std::move(mayAct);
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Work(); });
}

void Controller::Stop() {
  for (auto& watched : watched_) {
    for (auto& informer : watched->informers) informer->Stop();
  }
  queue_.ShutDown();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

void Controller::Enqueue(const std::string& key) { queue_.Add(key); }

void Controller::EnqueueAfter(const std::string& key, std::chrono::milliseconds delay) {
  queue_.AddAfter(key, delay);
}

void Controller::Work() {
  std::string key;
  while (queue_.Get(&key)) {
    if ((mayAct_ && !mayAct_()) || !reconciler_) {
      queue_.Done(key);
      queue_.AddAfter(key, options_.standbyRecheck);
      continue;
    }
    // Decisions need every cache: an owned object missing only because its
    // informer has not listed yet would look like one to create.
    if (!Synced()) {
      queue_.Done(key);
      queue_.AddAfter(key, std::chrono::milliseconds(100));
      continue;
    }
    ReconcileResult result;
    try {
      result = reconciler_(key);
    } catch (const std::exception& e) {
      result = ReconcileResult::Failed(Status::Internal(std::string("reconciler threw: ") + e.what()));
    }
    reconciles_.fetch_add(1);
    if (result.status.ok()) {
      queue_.Forget(key);
      if (result.requeueAfter > std::chrono::milliseconds(0)) queue_.AddAfter(key, result.requeueAfter);
    } else {
      errors_.fetch_add(1);
      spdlog::warn("reconcile failed controller={} key={} retries={} error=\"{}\"", name_, key,
                   queue_.NumRequeues(key), result.status.message());
      queue_.AddRateLimited(key);
    }
    queue_.Done(key);
  }
}

std::optional<Json> Controller::Get(const std::string& key) const {
  std::string ns, name;
  SplitKey(key, &ns, &name);
  for (const auto& informer : watched_[0]->informers) {
    if (!informer->ns().empty() && informer->ns() != ns) continue;
    if (auto object = informer->Get(key)) return object;
  }
  return std::nullopt;
}

std::vector<Json> Controller::List() const {
  std::vector<Json> out;
  for (const auto& informer : watched_[0]->informers) {
    auto part = informer->List();
    out.insert(out.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return out;
}

std::vector<Json> Controller::ListOwned(const Resource& owned, const std::string& ownerUid) const {
  std::vector<Json> out;
  for (const auto& watched : watched_) {
    if (watched->primary || watched->resource.Path("") != owned.Path("")) continue;
    std::vector<std::string> keys;
    {
      std::lock_guard<std::mutex> lock(watched->indexMu);
      auto it = watched->byOwner.find(ownerUid);
      if (it != watched->byOwner.end()) keys.assign(it->second.begin(), it->second.end());
    }
    for (const auto& key : keys) {
      std::string ns, name;
      SplitKey(key, &ns, &name);
      for (const auto& informer : watched->informers) {
        if (!informer->ns().empty() && informer->ns() != ns) continue;
        if (auto object = informer->Get(key)) {
          out.push_back(std::move(*object));
          break;
        }
      }
    }
  }
  return out;
}

ControllerStats Controller::stats() const {
  ControllerStats s;
  s.reconciles = reconciles_.load();
  s.reconcileErrors = errors_.load();
  s.statusWrites = statusWrites_.load();
  s.queueDepth = queue_.Len();
  for (const auto& watched : watched_) {
    for (const auto& informer : watched->informers) {
      if (watched->primary) s.objects += informer->Size();
      s.relists += informer->stats().expiredRelists;
    }
  }
  return s;
}

}  // namespace pgrs::kube
