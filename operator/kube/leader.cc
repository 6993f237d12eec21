#include "operator/kube/leader.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "operator/kube/primary_lease.h"

namespace pgrs::kube {

Status ValidateLeaderElectionConfig(const LeaderElectionConfig& c) {
  if (c.name.empty()) return Status::Invalid("leader election: the Lease name (--leader-election-id) is empty");
  if (c.ns.empty()) return Status::Invalid("leader election: the Lease namespace is empty");
  if (c.identity.empty()) return Status::Invalid("leader election: the identity is empty");
  if (c.retryPeriod <= std::chrono::milliseconds(0)) return Status::Invalid("leader election: retry period must be positive");
  if (!(c.leaseDuration > c.renewDeadline)) {
    return Status::Invalid("leader election: lease duration must be greater than the renew deadline");
  }
  if (!(c.renewDeadline > c.retryPeriod)) {
    return Status::Invalid("leader election: renew deadline must be greater than the retry period");
  }
  return Status::Ok();
}

LeaderElector::LeaderElector(Client* client, LeaderElectionConfig config, LeaderCallbacks callbacks,
                             const Clock* clock)
    : client_(client), config_(std::move(config)), callbacks_(std::move(callbacks)), clock_(clock) {}

LeaderElector::~LeaderElector() { Stop(); }

void LeaderElector::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void LeaderElector::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

std::string LeaderElector::ObservedLeader() const {
  std::lock_guard<std::mutex> lock(mu_);
  return observedHolder_;
}

bool LeaderElector::Wait(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [&] { return stopping_; });
}

bool LeaderElector::TryAcquireOrRenew() {
  const Resource leases = LeaseResource();
  auto wallNow = FormatMicroTime(std::chrono::system_clock::now());
  int leaseSeconds = static_cast<int>(std::ceil(config_.leaseDuration.count() / 1000.0));
  auto current = client_->Get(leases, config_.ns, config_.name);
  if (!current.ok() && current.status().code() != StatusCode::kNotFound) {
    spdlog::debug("could not read lease lease={}/{} error=\"{}\"", config_.ns, config_.name,
                  current.status().message());
    return false;
  }
  if (!current.ok()) {
    Json lease = NewLeaseObject(config_.ns, config_.name, {config_.identity, leaseSeconds, wallNow, wallNow, 0});
    auto created = client_->Create(leases, config_.ns, lease);
    if (!created.ok()) return false;
    std::lock_guard<std::mutex> lock(mu_);
    observedRecord_ = config_.identity + "|" + wallNow + "|0";
    observedAt_ = clock_->Now();
    observedHolder_ = config_.identity;
    return true;
  }
  Json lease = *current;
  std::string holder = GetString(lease, {"spec", "holderIdentity"});
  int64_t leaseTransitions = GetInt(lease, {"spec", "leaseTransitions"}).value_or(0);
  std::string record = holder + "|" + GetString(lease, {"spec", "renewTime"}) + "|" + std::to_string(leaseTransitions);
  bool newHolder = false;
  bool stillHeld = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (record != observedRecord_) {
      observedRecord_ = record;
      observedAt_ = clock_->Now();
    }
    if (holder != observedHolder_) {
      observedHolder_ = holder;
      newHolder = !holder.empty();
    }
    bool heldByOther = !holder.empty() && holder != config_.identity;
    stillHeld = heldByOther && clock_->Now() < observedAt_ + config_.leaseDuration;
  }
  if (newHolder && callbacks_.onNewLeader) callbacks_.onNewLeader(holder);
  if (stillHeld) return false;
  bool renewing = holder == config_.identity;
  lease["spec"]["holderIdentity"] = Json::string(config_.identity);
  lease["spec"]["leaseDurationSeconds"] = Json::number(leaseSeconds);
  lease["spec"]["renewTime"] = Json::string(wallNow);
  if (!renewing) {
    lease["spec"]["acquireTime"] = Json::string(wallNow);
    lease["spec"]["leaseTransitions"] = Json::number(leaseTransitions + 1);
  }
  auto updated = client_->Update(leases, config_.ns, lease);
  if (!updated.ok()) {
    spdlog::debug("could not {} lease lease={}/{} error=\"{}\"", renewing ? "renew" : "acquire", config_.ns,
                  config_.name, updated.status().message());
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  observedRecord_ = config_.identity + "|" + wallNow + "|" +
                    std::to_string(renewing ? leaseTransitions : leaseTransitions + 1);
  observedAt_ = clock_->Now();
  observedHolder_ = config_.identity;
  return true;
}

void LeaderElector::Release() {
  auto current = client_->Get(LeaseResource(), config_.ns, config_.name);
  if (!current.ok() || GetString(*current, {"spec", "holderIdentity"}) != config_.identity) return;
  Json lease = *current;
  auto wallNow = FormatMicroTime(std::chrono::system_clock::now());
  lease["spec"].erase("holderIdentity");
  lease["spec"]["leaseDurationSeconds"] = Json::number(1);
  lease["spec"]["renewTime"] = Json::string(wallNow);
  lease["spec"]["acquireTime"] = Json::string(wallNow);
  auto released = client_->Update(LeaseResource(), config_.ns, lease);
  if (released.ok()) {
    spdlog::info("released lease lease={}/{} identity={}", config_.ns, config_.name, config_.identity);
  } else {
    spdlog::warn("could not release lease lease={}/{} error=\"{}\"", config_.ns, config_.name,
                 released.status().message());
  }
}

void LeaderElector::Run() {
  spdlog::info("campaigning for leadership lease={}/{} identity={}", config_.ns, config_.name, config_.identity);
  // A renewal counts from when it was sent, not from when its answer came:
  // the server may have recorded it any time in between, and others time
  // the lease from their view of that record.
  auto attempt = clock_->Now();
  while (!TryAcquireOrRenew()) {
    if (!Wait(config_.retryPeriod)) return;
    attempt = clock_->Now();
  }
  leading_ = true;
  transitions_.fetch_add(1);
  spdlog::info("acquired lease lease={}/{} identity={}", config_.ns, config_.name, config_.identity);
  if (callbacks_.onStartedLeading) callbacks_.onStartedLeading();
  auto lastRenew = attempt;
  bool lost = false;
  while (Wait(config_.retryPeriod)) {
    attempt = clock_->Now();
    if (TryAcquireOrRenew()) {
      lastRenew = attempt;
      continue;
    }
    if (clock_->Now() - lastRenew >= config_.renewDeadline) {
      lost = true;
      break;
    }
  }
  leading_ = false;
  if (lost) {
    spdlog::error("lost lease: not renewed within the renew deadline lease={}/{} identity={} renew_deadline_ms={}",
                  config_.ns, config_.name, config_.identity, config_.renewDeadline.count());
  } else if (config_.releaseOnStop) {
    Release();
  }
  if (callbacks_.onStoppedLeading) callbacks_.onStoppedLeading(lost);
}

}  // namespace pgrs::kube
