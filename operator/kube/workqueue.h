// A work queue of object keys, with client-go's guarantees:
//   - a key waiting in the queue is there once, however often it is added;
//   - a key is handed to one worker at a time: added again while it is
//     being processed, it waits until Done and is then queued again;
//   - AddAfter delays a key; AddRateLimited delays it by a per-key
//     exponential backoff that Forget resets;
//   - keys added with Add (a watch event: something changed) are handed out
//     before keys whose delay ran out (a periodic look), so that a change
//     is acted on at once even when periodic looks pile up.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>

#include "operator/kube/backoff.h"
#include "operator/kube/clock.h"

namespace pgrs::kube {

class WorkQueue {
 public:
  explicit WorkQueue(const Clock* clock = RealClock::Get(),
                     BackoffPolicy retry = {std::chrono::milliseconds(50), std::chrono::milliseconds(300000), 2.0, 0.0});

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::nanoseconds delay);
  void AddRateLimited(const std::string& key);
  void Forget(const std::string& key);
  int NumRequeues(const std::string& key) const;

  // Blocks until a key is ready (true) or the queue is shut down (false).
  // The caller must call Done(key) when finished with it.
  bool Get(std::string* key);
  // Like Get, but returns false at once when no key is ready now.
  bool TryGet(std::string* key);
  void Done(const std::string& key);

  // Wakes every Get; from now on Get returns false and adds are ignored.
  void ShutDown();
  bool shuttingDown() const;
  size_t Len() const;       // keys ready now
  size_t Delayed() const;   // keys waiting for their time

 private:
  void PromoteDueLocked();
  void AddLocked(const std::string& key, bool urgent);
  bool PopLocked(std::string* key);

  const Clock* clock_;
  BackoffPolicy retry_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> urgent_;     // ready keys added by Add
  std::deque<std::string> queue_;      // ready keys whose delay ran out
  std::set<std::string> urgentKeys_;  // dirty keys that go to urgent_
  std::set<std::string> dirty_;       // queued or to be queued after Done
  std::set<std::string> processing_;  // handed out, not yet Done
  std::multimap<Clock::TimePoint, std::string> delayed_;
  std::map<std::string, std::multimap<Clock::TimePoint, std::string>::iterator> delayedIndex_;
  std::map<std::string, int> failures_;
  bool shutDown_ = false;
};

}  // namespace pgrs::kube
