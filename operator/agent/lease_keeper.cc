#include "operator/agent/lease_keeper.h"

namespace pgrs::agent {

Result<lease::PrimaryLease*> LeaseKeeper::Open(const AgentConfig& config) {
  if (!lease_ || location_ != config.lease) {
    auto opened = lease::OpenLease(config.lease);
    if (!opened.ok()) return opened.status();
    lease_ = std::move(opened.value());
    location_ = config.lease;
  }
  return lease_.get();
}

Status LeaseKeeper::Renew(const AgentConfig& config, bool beforeStart) {
  int64_t now = lease::NowMs();
  if (!beforeStart && now - lastRenewMs_ < int64_t{config.retryPeriodSeconds} * 1000) return Status::Ok();
  auto store = Open(config);
  if (!store.ok()) return store.status();
  auto renewed = (*store)->Renew(holder_, config.leaseDurationSeconds);
  if (!renewed.ok()) return renewed.status().WithContext("primary lease");
  lastRenewMs_ = now;
  return Status::Ok();
}

bool LeaseKeeper::RenewOverdue(const AgentConfig& config) const {
  return lease::NowMs() - lastRenewMs_ > int64_t{config.renewDeadlineSeconds} * 1000;
}

}  // namespace pgrs::agent
