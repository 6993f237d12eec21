// An informer keeps a local cache of one kind of object in sync with the
// API server and tells handlers what changed (client-go's shared informer,
// for one consumer). It lists, then watches from the list's
// resourceVersion with bookmarks; a watch that ends, fails or goes silent
// is resumed from the last version seen, and a 410 Gone (the version left
// the server's history) leads to a fresh list whose differences with the
// cache are delivered as adds, updates and deletes.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "operator/kube/client.h"

namespace pgrs::kube {

struct InformerHandlers {
  std::function<void(const Json& object)> onAdd;
  std::function<void(const Json& before, const Json& after)> onUpdate;
  std::function<void(const Json& lastKnown)> onDelete;
};

struct InformerOptions {
  std::string labelSelector;
  int watchTimeoutSeconds = 300;
  BackoffPolicy retry{std::chrono::milliseconds(200), std::chrono::milliseconds(30000), 2.0, 0.2};
};

struct InformerStats {
  int64_t lists = 0;          // full lists (the first one included)
  int64_t expiredRelists = 0; // lists caused by 410 Gone
  int64_t watches = 0;        // watch requests started
  int64_t watchErrors = 0;
  int64_t events = 0;         // events applied to the cache (bookmarks excluded)
  std::string resourceVersion;  // the last version seen
};

class Informer {
 public:
  // `ns` empty = all namespaces. Handlers run on the informer's thread,
  // after the cache has changed; they must not block for long.
  Informer(Client* client, Resource resource, std::string ns, InformerOptions options, InformerHandlers handlers);
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  // Cancels the watch and joins the thread.
  void Stop();

  // True once the first list has been applied and handed to the handlers.
  bool HasSynced() const;
  bool WaitForSync(std::chrono::milliseconds timeout) const;

  std::optional<Json> Get(const std::string& key) const;
  std::vector<Json> List() const;
  size_t Size() const;
  InformerStats stats() const;
  const Resource& resource() const { return resource_; }
  const std::string& ns() const { return ns_; }

 private:
  void Run();
  bool ListAndReplace();
  void Apply(const WatchEvent& event);
  // Sleeps unless stopped first; returns false when stopped.
  bool Pause(std::chrono::milliseconds d);

  Client* client_;
  Resource resource_;
  std::string ns_;
  InformerOptions options_;
  InformerHandlers handlers_;

  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::map<std::string, Json> cache_;
  InformerStats stats_;
  bool synced_ = false;
  bool stopping_ = false;

  WatchCanceller canceller_;
  std::thread thread_;
};

}  // namespace pgrs::kube
