// The observer: builds the observed state of a replica set from what each
// instance's agent reports (GET /status) and what PostgreSQL itself says
// over libpq (role, timeline, LSNs, pg_stat_replication, slots). Instances
// are observed in parallel, each within a bounded time, so one unreachable
// instance cannot stall the loop.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "operator/util/http.h"
#include "reconcilers/observed.h"

namespace pgrs::observer {

struct InstanceTarget {
  std::string name;
  int index = 0;
  std::string host;  // where PostgreSQL listens
  int port = 0;
  std::string agentUrl;  // http://127.0.0.1:PORT
  std::string agentToken;
  bool stopping = false;  // executor::InstanceRecord::stopping
  std::optional<TlsFiles> agentTls;  // set: the agent's API is HTTPS with mutual TLS
};

// How the observer connects to PostgreSQL: as the superuser, over TLS with
// the servers verified against caFile when it is not empty.
struct Credentials {
  std::string superuserPassword;
  std::string caFile;
};

// Keeps one libpq connection per instance between passes (observing every
// 200 ms must not fork a backend each time); a broken one is reopened.
// ObserveSet is virtual for one reason: benchmarks replace the data plane
// with a simulation (bench/kube) while everything else runs for real.
class Observer {
 public:
  Observer();
  virtual ~Observer();
  virtual reconcilers::ObservedSet ObserveSet(const std::vector<InstanceTarget>& targets,
                                              const Credentials& credentials);
  reconcilers::ObservedInstance ObserveInstance(const InstanceTarget& target, const Credentials& credentials);

 private:
  struct Pool;
  std::unique_ptr<Pool> pool_;
};

}  // namespace pgrs::observer
