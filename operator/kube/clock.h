// Time for the controller machinery, behind an interface so that tests of
// backoff, work-queue delays and lease expiry advance time instead of
// sleeping (the Envoy TimeSource habit).
#pragma once

#include <chrono>
#include <mutex>

namespace pgrs::kube {

class Clock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  // Monotonic time: only differences mean anything.
  virtual TimePoint Now() const = 0;
};

class RealClock final : public Clock {
 public:
  TimePoint Now() const override { return std::chrono::steady_clock::now(); }
  static RealClock* Get() {
    static RealClock clock;
    return &clock;
  }
};

// A clock that moves only when told to.
class FakeClock final : public Clock {
 public:
  TimePoint Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(std::chrono::nanoseconds d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }

 private:
  mutable std::mutex mu_;
  TimePoint now_ = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
};

}  // namespace pgrs::kube
