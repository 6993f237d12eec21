#include "operator/agent/probe.h"

#include <chrono>
#include <optional>

namespace pgrs::agent {

using namespace std::chrono_literals;

void ReadinessProbe::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void ReadinessProbe::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReadinessProbe::Aim(const pq::ConnectionParams& params, bool active) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    params_ = params;
    active_ = active;
  }
  wake_.notify_all();
}

void ReadinessProbe::Loop() {
  // Pinging forks a backend: four times a second is enough to notice a
  // hang; a crash is noticed at once through waitpid.
  while (true) {
    std::optional<pq::ConnectionParams> params;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, 250ms, [this] { return stop_; });
      if (stop_) return;
      if (active_) params = params_;
    }
    bool ok = params && pq::Ping(*params);
    if (ok != lastPingOk_.load()) {
      lastPingOk_ = ok;
      onChange_();
    }
  }
}

}  // namespace pgrs::agent
