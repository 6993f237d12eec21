// The observer: builds the observed state of a replica set from what each
// instance's agent reports (GET /status) and what PostgreSQL itself says
// over libpq (role, timeline, LSNs, pg_stat_replication, slots). Instances
// are observed in parallel, each within a bounded time, so one unreachable
// instance cannot stall the loop.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "reconcilers/observed.h"

namespace pgrs::observer {

struct InstanceTarget {
  std::string name;
  int index = 0;
  std::string host;  // where PostgreSQL listens
  int port = 0;
  std::string agentUrl;  // http://127.0.0.1:PORT
  std::string agentToken;
};

reconcilers::ObservedInstance ObserveInstance(const InstanceTarget& target, const std::string& superuserPassword);

reconcilers::ObservedSet ObserveSet(const std::vector<InstanceTarget>& targets, const std::string& superuserPassword);

}  // namespace pgrs::observer
