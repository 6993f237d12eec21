// The readiness probe: on a thread of its own, it asks PostgreSQL for a new
// connection four times a second, which is how a hang is noticed (a crash is
// noticed at once through waitpid). A hung server blocks this thread, never
// the supervisor's, which must stay free to fence.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "operator/pq/pq.h"

namespace pgrs::agent {

class ReadinessProbe {
 public:
  // `onChange` is called (on the probe's thread) whenever the answer changes.
  explicit ReadinessProbe(std::function<void()> onChange) : onChange_(std::move(onChange)) {}
  ~ReadinessProbe() { Stop(); }

  void Start();
  // Ends the thread; waits for a probe under way.
  void Stop();
  // Where to probe from the next look on; nothing is probed while inactive.
  void Aim(const pq::ConnectionParams& params, bool active);
  // Whether the last probe found PostgreSQL accepting connections.
  bool ok() const { return lastPingOk_.load(); }

 private:
  void Loop();

  std::function<void()> onChange_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                // guarded by mu_
  bool active_ = false;              // guarded by mu_
  pq::ConnectionParams params_;      // guarded by mu_
  std::atomic<bool> lastPingOk_{false};
};

}  // namespace pgrs::agent
