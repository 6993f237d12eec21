#include "operator/kube/workqueue.h"

#include <algorithm>

namespace pgrs::kube {

WorkQueue::WorkQueue(const Clock* clock, BackoffPolicy retry) : clock_(clock), retry_(retry) {}

void WorkQueue::AddLocked(const std::string& key, bool urgent) {
  if (shutDown_) return;
  if (dirty_.count(key)) {
    // Already waiting: an urgent add moves it to the front line.
    if (urgent && !urgentKeys_.count(key)) {
      urgentKeys_.insert(key);
      if (!processing_.count(key)) {
        if (auto it = std::find(queue_.begin(), queue_.end(), key); it != queue_.end()) queue_.erase(it);
        urgent_.push_back(key);
      }
    }
    return;
  }
  dirty_.insert(key);
  if (urgent) urgentKeys_.insert(key);
  if (processing_.count(key)) return;  // re-queued by Done
  (urgent ? urgent_ : queue_).push_back(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  AddLocked(key, true);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutDown_) return;
  if (delay <= std::chrono::nanoseconds(0)) {
    AddLocked(key, false);
    return;
  }
  auto at = clock_->Now() + delay;
  // Keep only the earliest pending time of a key.
  if (auto it = delayedIndex_.find(key); it != delayedIndex_.end()) {
    if (it->second->first <= at) return;
    delayed_.erase(it->second);
    delayedIndex_.erase(it);
  }
  delayedIndex_[key] = delayed_.emplace(at, key);
  cv_.notify_all();
}

void WorkQueue::AddRateLimited(const std::string& key) {
  int failures;
  {
    std::lock_guard<std::mutex> lock(mu_);
    failures = ++failures_[key];
  }
  AddAfter(key, Backoff(retry_).DelayFor(failures));
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  failures_.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked() {
  auto now = clock_->Now();
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    std::string key = delayed_.begin()->second;
    delayedIndex_.erase(key);
    delayed_.erase(delayed_.begin());
    AddLocked(key, false);
  }
}

bool WorkQueue::PopLocked(std::string* key) {
  std::deque<std::string>& from = !urgent_.empty() ? urgent_ : queue_;
  if (from.empty()) return false;
  *key = from.front();
  from.pop_front();
  dirty_.erase(*key);
  urgentKeys_.erase(*key);
  processing_.insert(*key);
  return true;
}

bool WorkQueue::Get(std::string* key) {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (shutDown_) return false;
    PromoteDueLocked();
    if (PopLocked(key)) return true;
    if (delayed_.empty()) {
      cv_.wait(lock);
    } else {
      // Real time and the clock's time may differ (a fake clock): never
      // wait long before looking at the clock again.
      auto wait = std::min<std::chrono::nanoseconds>(delayed_.begin()->first - clock_->Now(),
                                                     std::chrono::milliseconds(100));
      cv_.wait_for(lock, std::max(wait, std::chrono::nanoseconds(0)));
    }
  }
}

bool WorkQueue::TryGet(std::string* key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutDown_) return false;
  PromoteDueLocked();
  return PopLocked(key);
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key) && !shutDown_) {
    (urgentKeys_.count(key) ? urgent_ : queue_).push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutDown_ = true;
  cv_.notify_all();
}

bool WorkQueue::shuttingDown() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutDown_;
}

size_t WorkQueue::Len() const {
  std::lock_guard<std::mutex> lock(mu_);
  return urgent_.size() + queue_.size();
}

size_t WorkQueue::Delayed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return delayed_.size();
}

}  // namespace pgrs::kube
