#include "operator/kube/events.h"

#include <spdlog/spdlog.h>

#include "operator/util/random.h"

namespace pgrs::kube {

EventRecorder::EventRecorder(Client* client, std::string component, std::string host)
    : client_(client), component_(std::move(component)), host_(std::move(host)) {}

int64_t EventRecorder::recorded() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recorded_;
}

void EventRecorder::Record(const Json& object, const std::string& type, const std::string& reason,
                           const std::string& message) {
  std::string ns = NamespaceOf(object);
  if (ns.empty()) ns = "default";
  std::string aggregate = UidOf(object) + "|" + type + "|" + reason + "|" + message;
  std::string now = FormatRfc3339(std::chrono::system_clock::now());
  std::string existing;
  int64_t count = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = seen_.find(aggregate);
    if (it != seen_.end()) {
      existing = it->second.first;
      count = it->second.second;
    }
  }
  if (!existing.empty()) {
    Json patch = Json::object();
    patch["count"] = Json::number(count + 1);
    patch["lastTimestamp"] = Json::string(now);
    if (client_->MergePatch(EventResource(), ns, existing, patch).ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      seen_[aggregate].second = count + 1;
      ++recorded_;
      return;
    }
  }
  Json event = Json::object();
  std::string name = NameOf(object) + "." + RandomHex(8);
  event["apiVersion"] = Json::string("v1");
  event["kind"] = Json::string("Event");
  event["metadata"]["name"] = Json::string(name);
  event["metadata"]["namespace"] = Json::string(ns);
  auto& involved = event["involvedObject"];
  involved["apiVersion"] = Json::string(GetString(object, {"apiVersion"}));
  involved["kind"] = Json::string(GetString(object, {"kind"}));
  involved["name"] = Json::string(NameOf(object));
  involved["namespace"] = Json::string(NamespaceOf(object));
  involved["uid"] = Json::string(UidOf(object));
  involved["resourceVersion"] = Json::string(ResourceVersionOf(object));
  event["type"] = Json::string(type);
  event["reason"] = Json::string(reason);
  event["message"] = Json::string(message);
  event["source"]["component"] = Json::string(component_);
  event["source"]["host"] = Json::string(host_);
  event["reportingComponent"] = Json::string(component_);
  event["reportingInstance"] = Json::string(host_);
  event["firstTimestamp"] = Json::string(now);
  event["lastTimestamp"] = Json::string(now);
  event["count"] = Json::number(1);
  auto created = client_->Create(EventResource(), ns, event);
  if (!created.ok()) {
    spdlog::warn("could not record event object={} reason={} error=\"{}\"", KeyOf(object), reason,
                 created.status().message());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  seen_[aggregate] = {name, 1};
  ++recorded_;
}

Result<bool> UpdateStatusWithRetry(Client* client, const Resource& resource, const std::string& ns,
                                   const std::string& name, const std::function<void(Json& object)>& mutate,
                                   int maxAttempts) {
  Status last;
  for (int attempt = 0; attempt < maxAttempts; ++attempt) {
    auto fresh = client->Get(resource, ns, name);
    if (!fresh.ok()) return fresh.status();
    Json object = *fresh;
    mutate(object);
    const Json* before = GetField(*fresh, {"status"});
    const Json* after = GetField(object, {"status"});
    bool same = (before == nullptr && after == nullptr) || (before != nullptr && after != nullptr && *before == *after);
    if (same) return false;
    auto written = client->UpdateStatus(resource, ns, object);
    if (written.ok()) return true;
    last = written.status();
    if (last.code() != StatusCode::kConflict) return last;
  }
  return last;
}

}  // namespace pgrs::kube
