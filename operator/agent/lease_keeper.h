// The primary lease as this agent holds it: opened once per location and
// kept while the location stays, renewed at most every retryPeriodSeconds,
// and how long ago it was last renewed. What to do when a renewal fails
// (fence, stay down) is the agent's decision.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "operator/agent/protocol.h"
#include "operator/lease/lease.h"
#include "operator/util/status.h"

namespace pgrs::agent {

class LeaseKeeper {
 public:
  explicit LeaseKeeper(std::string holder) : holder_(std::move(holder)) {}

  // The lease at config.lease, opened at the first call and again when the
  // location changes.
  Result<lease::PrimaryLease*> Open(const AgentConfig& config);
  // Extends the lease for config.leaseDurationSeconds if this agent holds it
  // (Conflict when another does). Skipped (Ok) when the last renewal is
  // younger than retryPeriodSeconds, unless `beforeStart`: a start needs a
  // renewal of now.
  Status Renew(const AgentConfig& config, bool beforeStart);
  // No successful renewal within config.renewDeadlineSeconds.
  bool RenewOverdue(const AgentConfig& config) const;
  // Unix ms of the last successful renewal; 0 for none.
  int64_t lastRenewMs() const { return lastRenewMs_; }
  // Counts as never renewed (a promotion's renewal must succeed, or the
  // deadline has passed already).
  void ForgetRenewal() { lastRenewMs_ = 0; }

 private:
  std::string holder_;
  std::unique_ptr<lease::PrimaryLease> lease_;
  std::string location_;
  int64_t lastRenewMs_ = 0;
};

}  // namespace pgrs::agent
