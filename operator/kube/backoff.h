// Exponential backoff with jitter, as client-go's wait.Backoff: each failure
// doubles the delay up to a cap; a random jitter spreads retrying clients
// apart so that a restarted API server is not hit by all of them at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace pgrs::kube {

struct BackoffPolicy {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{30000};
  double factor = 2.0;
  // Each delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter].
  double jitter = 0.2;
};

class Backoff {
 public:
  // `uniform01` returns a number in [0, 1); defaults to a thread-safe PRNG.
  explicit Backoff(BackoffPolicy policy, std::function<double()> uniform01 = {});

  // The delay before the next attempt; each call counts one more failure.
  std::chrono::milliseconds Next();
  // The delay for the `failures`-th consecutive failure (1-based), without
  // changing state.
  std::chrono::milliseconds DelayFor(int failures) const;
  void Reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  BackoffPolicy policy_;
  std::function<double()> uniform01_;
  int failures_ = 0;
};

}  // namespace pgrs::kube
