#include "operator/kube/informer.h"

#include <spdlog/spdlog.h>

namespace pgrs::kube {

Informer::Informer(Client* client, Resource resource, std::string ns, InformerOptions options,
                   InformerHandlers handlers)
    : client_(client),
      resource_(std::move(resource)),
      ns_(std::move(ns)),
      options_(std::move(options)),
      handlers_(std::move(handlers)) {}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  canceller_.Cancel();
  if (thread_.joinable()) thread_.join();
}

bool Informer::HasSynced() const {
  std::lock_guard<std::mutex> lock(mu_);
  return synced_;
}

bool Informer::WaitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return synced_ || stopping_; }) && synced_;
}

std::optional<Json> Informer::Get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> Informer::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Json> out;
  out.reserve(cache_.size());
  for (const auto& [key, object] : cache_) out.push_back(object);
  return out;
}

size_t Informer::Size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

InformerStats Informer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

bool Informer::Pause(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

bool Informer::ListAndReplace() {
  ListOptions listOptions;
  listOptions.labelSelector = options_.labelSelector;
  auto list = client_->List(resource_, ns_, listOptions);
  if (!list.ok()) {
    spdlog::warn("list failed kind={} namespace={} error=\"{}\"", resource_.kind, ns_.empty() ? "*" : ns_,
                 list.status().message());
    return false;
  }
  std::map<std::string, Json> fresh;
  for (auto& item : list->items) {
    std::string key = KeyOf(item);
    fresh.emplace(std::move(key), std::move(item));
  }
  std::vector<Json> added, deleted;
  std::vector<std::pair<Json, Json>> updated;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Copies only for handlers that exist: a list can be large.
    for (const auto& [key, object] : fresh) {
      auto old = cache_.find(key);
      if (old == cache_.end()) {
        if (handlers_.onAdd) added.push_back(object);
      } else if (ResourceVersionOf(old->second) != ResourceVersionOf(object)) {
        if (handlers_.onUpdate) updated.emplace_back(old->second, object);
      }
    }
    if (handlers_.onDelete) {
      for (const auto& [key, object] : cache_) {
        if (!fresh.count(key)) deleted.push_back(object);
      }
    }
    cache_.swap(fresh);
    ++stats_.lists;
    stats_.resourceVersion = list->resourceVersion;
  }
  spdlog::debug("listed kind={} namespace={} objects={} resourceVersion={}", resource_.kind, ns_.empty() ? "*" : ns_,
                Size(), list->resourceVersion);
  if (handlers_.onAdd) for (const auto& o : added) handlers_.onAdd(o);
  if (handlers_.onUpdate) for (const auto& [before, after] : updated) handlers_.onUpdate(before, after);
  if (handlers_.onDelete) for (const auto& o : deleted) handlers_.onDelete(o);
  // Synced once the handlers have seen the first list, as in client-go.
  std::lock_guard<std::mutex> lock(mu_);
  synced_ = true;
  cv_.notify_all();
  return true;
}

void Informer::Apply(const WatchEvent& event) {
  std::string rv = ResourceVersionOf(event.object);
  if (event.type == "BOOKMARK") {
    std::lock_guard<std::mutex> lock(mu_);
    if (!rv.empty()) stats_.resourceVersion = rv;
    return;
  }
  std::string key = KeyOf(event.object);
  std::optional<Json> before;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) before = std::move(it->second);
    if (event.type == "DELETED") {
      if (it != cache_.end()) cache_.erase(it);
    } else if (it != cache_.end()) {
      it->second = event.object;
    } else {
      cache_.emplace(key, event.object);
    }
    if (!rv.empty()) stats_.resourceVersion = rv;
    ++stats_.events;
  }
  if (event.type == "DELETED") {
    if (handlers_.onDelete) handlers_.onDelete(event.object);
  } else if (before) {
    if (handlers_.onUpdate) handlers_.onUpdate(*before, event.object);
  } else if (handlers_.onAdd) {
    handlers_.onAdd(event.object);
  }
}

void Informer::Run() {
  Backoff backoff(options_.retry);
  bool needList = true;
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
    }
    if (needList) {
      if (!ListAndReplace()) {
        if (!Pause(backoff.Next())) return;
        continue;
      }
      needList = false;
      backoff.Reset();
    }
    WatchOptions watch;
    watch.resourceVersion = stats().resourceVersion;
    watch.labelSelector = options_.labelSelector;
    watch.timeoutSeconds = options_.watchTimeoutSeconds;
    watch.allowBookmarks = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.watches;
    }
    auto started = std::chrono::steady_clock::now();
    WatchEnd end = client_->Watch(resource_, ns_, watch, [this](const WatchEvent& e) { Apply(e); }, &canceller_);
    if (end.cancelled) return;
    if (end.expired) {
      spdlog::info("watch expired, relisting kind={} namespace={} resourceVersion={}", resource_.kind,
                   ns_.empty() ? "*" : ns_, watch.resourceVersion);
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.expiredRelists;
      needList = true;
      continue;
    }
    if (!end.status.ok()) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.watchErrors;
      }
      auto delay = backoff.Next();
      spdlog::warn("watch failed, resuming kind={} namespace={} resourceVersion={} retry_in_ms={} error=\"{}\"",
                   resource_.kind, ns_.empty() ? "*" : ns_, stats().resourceVersion, delay.count(),
                   end.status.message());
      if (!Pause(delay)) return;
      continue;
    }
    // A clean end (the server's timeout): resume at once, unless the
    // server keeps ending watches immediately.
    if (end.events == 0 && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
      if (!Pause(backoff.Next())) return;
    } else {
      backoff.Reset();
    }
  }
}

}  // namespace pgrs::kube
