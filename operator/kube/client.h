// A Kubernetes API client on cpprestsdk: the verbs for any
// group/version/resource, watches, and errors as values whose code says
// what the caller may do:
//   kNotFound     the object does not exist
//   kConflict     stale resourceVersion or AlreadyExists: re-read, retry
//   kInvalid      rejected input (400, 403, 422 ...): do not retry
//   kUnavailable  5xx, 429, network, timeouts: retried here with backoff
//                 (honouring Retry-After) before they are returned; an
//                 eviction refused by a disruption budget (429) is returned
//                 at once (IsTooManyRequests)
// Calls block the calling thread and must not be made from a cpprestsdk
// continuation. A Client is safe to use from many threads.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "operator/kube/backoff.h"
#include "operator/kube/config.h"
#include "operator/kube/meta.h"
#include "operator/util/status.h"

namespace pgrs::kube {

// One API resource, e.g. {"coordination.k8s.io", "v1", "leases", "Lease"}.
struct Resource {
  std::string group;  // "" = the core group
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "/api/v1/namespaces/ns/pods/name/status" and friends; empty ns on a
  // namespaced resource means all namespaces (lists and watches only).
  std::string Path(const std::string& ns, const std::string& name = "", const std::string& subresource = "") const;
};

Resource LeaseResource();
Resource EventResource();
Resource ConfigMapResource();
Resource ReplicaSetResource();  // pgrs.dev/v1alpha1 postgresreplicasets

struct ListOptions {
  std::string labelSelector;
  std::string fieldSelector;
  std::string resourceVersion;  // "" = most recent (a quorum read)
  int64_t limit = 0;            // 0 = everything in one response
  std::string continueToken;
};

struct ObjectList {
  std::vector<Json> items;
  std::string resourceVersion;
};

struct DeleteOptions {
  std::string propagationPolicy;  // "", "Background", "Foreground", "Orphan"
  std::string preconditionResourceVersion;
  std::string preconditionUid;  // never a namesake made after the object we mean
  int gracePeriodSeconds = -1;  // -1 = the object's default; 0 = at once
};

struct WatchOptions {
  std::string resourceVersion;  // start after this version ("" or "0": current state first)
  std::string labelSelector;
  int timeoutSeconds = 300;  // the server ends the watch after this
  bool allowBookmarks = true;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  Json object;
};

// How a watch ended.
struct WatchEnd {
  Status status;          // Ok when the server closed the stream cleanly
  bool expired = false;   // 410 Gone: the version is too old, relist
  bool cancelled = false;
  int64_t events = 0;     // events delivered (bookmarks included)
};

// Splits a watch response body (one JSON object per line, arriving in
// arbitrary chunks) into events.
class WatchStreamParser {
 public:
  // Calls `onEvent` for every complete line in the bytes seen so far.
  // Returns Invalid on a line that is not a watch event.
  Status Feed(std::string_view bytes, const std::function<void(WatchEvent&&)>& onEvent);
  size_t buffered() const { return partial_.size(); }

 private:
  std::string partial_;
};

// Cancels a running Watch from another thread.
class WatchCanceller {
 public:
  WatchCanceller();
  ~WatchCanceller();
  void Cancel();
  bool cancelled() const;
  struct Impl;
  Impl* impl() { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
};

struct ClientOptions {
  std::chrono::milliseconds requestTimeout{30000};
  int maxAttempts = 5;  // attempts for retryable failures, the first included
  BackoffPolicy retryBackoff{std::chrono::milliseconds(200), std::chrono::milliseconds(5000), 2.0, 0.2};
  std::chrono::milliseconds maxRetryAfter{10000};
  // A watch is abandoned when silent for timeoutSeconds + this.
  std::chrono::milliseconds watchIdleSlack{30000};
  std::string userAgent = "pgrs";
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Create(const ClientConfig& config, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result<Json> Get(const Resource& r, const std::string& ns, const std::string& name);
  Result<ObjectList> List(const Resource& r, const std::string& ns, const ListOptions& options = {});
  Result<Json> Create(const Resource& r, const std::string& ns, const Json& object);
  // PUT; the object's metadata.resourceVersion makes it conditional.
  Result<Json> Update(const Resource& r, const std::string& ns, const Json& object);
  Result<Json> UpdateStatus(const Resource& r, const std::string& ns, const Json& object);
  // RFC 7386 JSON merge patch, of the object or of its /status.
  Result<Json> MergePatch(const Resource& r, const std::string& ns, const std::string& name, const Json& patch,
                          bool status = false);
  Status Delete(const Resource& r, const std::string& ns, const std::string& name, const DeleteOptions& options = {});
  // GET or PUT of another subresource ("scale").
  Result<Json> GetSubresource(const Resource& r, const std::string& ns, const std::string& name,
                              const std::string& subresource);
  Result<Json> UpdateSubresource(const Resource& r, const std::string& ns, const std::string& name,
                                 const std::string& subresource, const Json& object);
  // POST to a subresource (serviceaccounts/NAME/token, pods/NAME/binding).
  Result<Json> CreateSubresource(const Resource& r, const std::string& ns, const std::string& name,
                                 const std::string& subresource, const Json& object);
  // POST pods/NAME/eviction (policy/v1 Eviction): the Pod is deleted as
  // `options` say, if its PodDisruptionBudget allows. A refusal by the
  // budget is kUnavailable at once, not retried: IsTooManyRequests tells it
  // apart; try again later. NotFound when there is no such Pod.
  Status Evict(const std::string& ns, const std::string& name, const DeleteOptions& options = {});

  // Streams events to `onEvent` (on this thread) until the server ends the
  // watch, it fails, it goes silent for too long, or `canceller` fires.
  // An in-band 410 ERROR event ends it with `expired`.
  WatchEnd Watch(const Resource& r, const std::string& ns, const WatchOptions& options,
                 const std::function<void(const WatchEvent&)>& onEvent, WatchCanceller* canceller = nullptr);

  const ClientConfig& config() const;
  // The bearer token in use (re-read from the token file when due).
  std::string CurrentToken(bool forceReload = false);
  int64_t requestCount() const { return requests_.load(); }
  // From now on calls fail at once with Unavailable and retry waits end
  // early: for a prompt process exit. Cancel watches separately.
  void Shutdown();

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  Result<Json> Call(const std::string& what, const std::string& method, const std::string& path,
                    const std::string& body, const std::string& contentType, bool retryTooManyRequests = true);
  std::unique_ptr<Impl> impl_;
  std::atomic<int64_t> requests_{0};
};

// True for a Conflict that is an AlreadyExists (create of an existing name).
bool IsAlreadyExists(const Status& status);
// True for an Unavailable that is a 429 TooManyRequests (an eviction the
// disruption budget does not allow now).
bool IsTooManyRequests(const Status& status);

// Maps an HTTP status and the API's Status body to an error.
Status StatusFromResponse(int httpStatus, const std::string& body, const std::string& what);

}  // namespace pgrs::kube
