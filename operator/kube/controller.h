// A controller for one primary kind, in controller-runtime's shape:
// informers for the primary kind and for the kinds it owns, a work queue
// of primary keys, and workers that call a reconciler. A change to an
// owned object (a Pod, a Service) enqueues the key of its owner, found
// through metadata.ownerReferences. Reconcilers are level-triggered: they
// get a key, read the caches, act, and say whether and when to look again.
#pragma once

#include <atomic>
#include <map>
#include <set>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "operator/kube/informer.h"
#include "operator/kube/workqueue.h"

namespace pgrs::kube {

struct ReconcileResult {
  Status status;                            // not ok: requeued with the key's backoff
  std::chrono::milliseconds requeueAfter{0};  // ok and > 0: look again then

  static ReconcileResult Done() { return {}; }
  static ReconcileResult After(std::chrono::milliseconds d) { return {Status::Ok(), d}; }
  static ReconcileResult Failed(Status s) { return {std::move(s), std::chrono::milliseconds(0)}; }
};

struct ControllerOptions {
  std::vector<std::string> namespaces;  // empty = all namespaces
  int workers = 2;
  int watchTimeoutSeconds = 300;
  BackoffPolicy retry{std::chrono::milliseconds(50), std::chrono::milliseconds(300000), 2.0, 0.0};
  // While standing by (mayAct false), queued keys are looked at again this often.
  std::chrono::milliseconds standbyRecheck{1000};
};

struct ControllerStats {
  int64_t reconciles = 0;
  int64_t reconcileErrors = 0;
  int64_t statusWrites = 0;
  size_t objects = 0;    // primary objects cached
  int64_t relists = 0;   // 410 relists, all informers
  size_t queueDepth = 0;
};

class Controller {
 public:
  using Reconciler = std::function<ReconcileResult(const std::string& key)>;

  Controller(std::string name, Client* client, Resource primary, ControllerOptions options);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Before StartInformers.
  void SetReconciler(Reconciler reconciler);
  void Owns(const Resource& owned, const std::string& labelSelector = "");

  // Informers run on every replica, leader or not, so that a new leader
  // starts from a warm cache.
  void StartInformers();
  bool Synced() const;
  // Workers reconcile queued keys while `mayAct` holds (the leader), and
  // only once every informer has synced.
  void StartWorkers(std::function<bool()> mayAct);
  // Stops the informers first (cancelling their watches), then the workers.
  void Stop();
  void Enqueue(const std::string& key);
  void EnqueueAfter(const std::string& key, std::chrono::milliseconds delay);

  // Cache reads.
  std::optional<Json> Get(const std::string& key) const;
  std::vector<Json> List() const;
  // Cached objects of an owned kind whose ownerReferences name `ownerUid`.
  std::vector<Json> ListOwned(const Resource& owned, const std::string& ownerUid) const;

  ControllerStats stats() const;
  void CountStatusWrite() { statusWrites_.fetch_add(1); }
  const std::string& name() const { return name_; }

 private:
  struct Watched {
    Resource resource;
    bool primary;
    std::vector<std::unique_ptr<Informer>> informers;  // one per namespace
    // Owned kinds: owner uid -> keys of the objects it owns, kept by the
    // informers' handlers, so that ListOwned does not scan every object.
    mutable std::mutex indexMu;
    std::map<std::string, std::set<std::string>> byOwner;
    void Index(const Json& object, bool add);
  };
  void AddInformers(Watched& watched, const std::string& labelSelector);
  void EnqueueOwners(const Json& owned);
  void Work();

  std::string name_;
  Client* client_;
  Resource primary_;
  ControllerOptions options_;
  Reconciler reconciler_;
  WorkQueue queue_;
  std::vector<std::unique_ptr<Watched>> watched_;  // [0] is the primary kind
  std::vector<std::thread> workers_;
  std::function<bool()> mayAct_;
  std::atomic<int64_t> reconciles_{0};
  std::atomic<int64_t> errors_{0};
  std::atomic<int64_t> statusWrites_{0};
};

}  // namespace pgrs::kube
