#include "operator/kube/backoff.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <random>

namespace pgrs::kube {
namespace {

double DefaultUniform01() {
  static std::mutex mu;
  static std::mt19937_64 engine{std::random_device{}()};
  std::lock_guard<std::mutex> lock(mu);
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

}  // namespace

Backoff::Backoff(BackoffPolicy policy, std::function<double()> uniform01)
    : policy_(policy), uniform01_(uniform01 ? std::move(uniform01) : DefaultUniform01) {}

std::chrono::milliseconds Backoff::DelayFor(int failures) const {
  if (failures < 1) return std::chrono::milliseconds(0);
  double base = static_cast<double>(policy_.initial.count()) * std::pow(policy_.factor, failures - 1);
  base = std::min(base, static_cast<double>(policy_.max.count()));
  double jittered = base * (1.0 - policy_.jitter + 2.0 * policy_.jitter * uniform01_());
  jittered = std::min(jittered, static_cast<double>(policy_.max.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(0.0, jittered)));
}

std::chrono::milliseconds Backoff::Next() {
  ++failures_;
  return DelayFor(failures_);
}

}  // namespace pgrs::kube
