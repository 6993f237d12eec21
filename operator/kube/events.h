// Writes that controllers make besides their own objects: Kubernetes Events
// about an object, and status updates done the safe way.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "operator/kube/client.h"

namespace pgrs::kube {

// Records core/v1 Events. A repeat of the same (object, type, reason,
// message) bumps the existing Event's count instead of creating another,
// as client-go's recorder does. Failures are logged, never returned: an
// Event is a courtesy to people, not part of a reconcile.
class EventRecorder {
 public:
  EventRecorder(Client* client, std::string component, std::string host);
  // `type` is "Normal" or "Warning"; `reason` CamelCase.
  void Record(const Json& object, const std::string& type, const std::string& reason, const std::string& message);
  int64_t recorded() const;

 private:
  Client* client_;
  std::string component_;
  std::string host_;
  mutable std::mutex mu_;
  std::map<std::string, std::pair<std::string, int64_t>> seen_;  // aggregation key -> (event name, count)
  int64_t recorded_ = 0;
};

// Reads `name` afresh, lets `mutate` change its status, and writes the
// /status subresource when the status changed, re-reading and retrying on
// conflict. Returns true if it wrote, false if nothing changed.
Result<bool> UpdateStatusWithRetry(Client* client, const Resource& resource, const std::string& ns,
                                   const std::string& name, const std::function<void(Json& object)>& mutate,
                                   int maxAttempts = 5);

}  // namespace pgrs::kube
