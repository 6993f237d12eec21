// pgrs-operator-sim: `pgrs operator` with the same flags, but with a
// simulated data plane, for benchmarks at scale (bench/kube/README.md).
//
// Real: informers, the work queue, the Kubernetes runtime (Pods, PVCs,
// Services, Secrets, the primary Lease), the pure reconciler, status
// writes, role labels. Simulated: the instance agents and PostgreSQL. A
// config pushed to an agent is stored in memory (keyed by the agent's URL)
// and the observer reports what an agent that applied it at once would:
// WaitingForConfig before the first config, then a running primary or a
// streaming standby.
#include <cstdio>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "operator/agent/protocol.h"
#include "operator/api/types.h"
#include "operator/kube/operator_command.h"
#include "operator/kube/replicaset_controller.h"
#include "operator/observer/observer.h"
#include "reconcilers/replicaset.h"

namespace {

using pgrs::agent::AgentConfig;
using pgrs::observer::InstanceTarget;
using pgrs::reconcilers::ObservedInstance;
using pgrs::reconcilers::ObservedSet;

// Agent URL -> the last config pushed to it: the whole simulated data plane.
class SimulatedAgents {
 public:
  void Store(const std::string& url, const AgentConfig& config) {
    std::lock_guard<std::mutex> lock(mu_);
    configs_[url] = config;
  }
  std::optional<AgentConfig> Find(const std::string& url) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = configs_.find(url);
    if (it == configs_.end()) return std::nullopt;
    return it->second;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, AgentConfig> configs_;
};

// The set's name from an instance name "NAME-K" and its index K.
std::string SetNameOf(const InstanceTarget& t) {
  const std::string suffix = "-" + std::to_string(t.index);
  if (t.name.size() > suffix.size() && t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return t.name.substr(0, t.name.size() - suffix.size());
  }
  return t.name;
}

class SimulatedObserver : public pgrs::observer::Observer {
 public:
  explicit SimulatedObserver(std::shared_ptr<SimulatedAgents> agents) : agents_(std::move(agents)) {}

  ObservedSet ObserveSet(const std::vector<InstanceTarget>& targets, const pgrs::observer::Credentials&) override {
    constexpr uint64_t kPrimaryLsn = 0x3000060;
    std::vector<std::optional<AgentConfig>> configs;
    for (const auto& t : targets) configs.push_back(t.agentUrl.empty() ? std::nullopt : agents_->Find(t.agentUrl));

    ObservedSet set;
    for (size_t k = 0; k < targets.size(); ++k) {
      const InstanceTarget& t = targets[k];
      ObservedInstance o;
      o.name = t.name;
      o.index = t.index;
      o.host = t.host;
      o.port = t.port;
      if (t.agentUrl.empty()) {  // no Pod IP yet: nothing answers
        set.instances.push_back(o);
        continue;
      }
      o.agentReachable = true;
      const auto& config = configs[k];
      if (!config || config->fenced) {
        o.agentState = config ? pgrs::agent::kStateFenced : pgrs::agent::kStateWaitingForConfig;
        if (config) {
          o.agentFenced = true;
          o.dataDirRole = config->role;
          o.configHash = pgrs::agent::ConfigHash(*config);
          o.checkpointLsn = kPrimaryLsn;
        }
        set.instances.push_back(o);
        continue;
      }
      o.agentState = pgrs::agent::kStateRunning;
      o.configHash = pgrs::agent::ConfigHash(*config);
      o.dataDirRole = config->role;
      o.postgresRunning = true;
      o.postgresReady = true;
      o.pgReachable = true;
      o.timeline = 1;
      if (config->role == "primary") {
        o.inRecovery = false;
        o.currentLsn = kPrimaryLsn;
        o.replicationRoleExists = true;
        // Slots for every instance the set may ever have (the executor
        // creates slots over libpq, which is not simulated), all in use.
        const std::string setName = SetNameOf(t);
        for (int i = 1; i <= pgrs::api::kMaxInstances; ++i) {
          if (i == t.index) continue;
          o.slots.push_back({pgrs::reconcilers::SlotName(pgrs::api::InstanceName(setName, i)), true, kPrimaryLsn, "reserved"});
        }
        for (size_t j = 0; j < targets.size(); ++j) {
          if (j == k || !configs[j] || configs[j]->role != "standby" || configs[j]->fenced) continue;
          pgrs::reconcilers::ReplicationRow row;
          row.applicationName = targets[j].name;
          row.state = "streaming";
          row.syncState = "async";
          row.sentLsn = row.flushLsn = row.replayLsn = kPrimaryLsn;
          o.replication.push_back(row);
        }
      } else {
        o.inRecovery = true;
        o.walReceiverStreaming = true;
        o.receiveLsn = o.replayLsn = kPrimaryLsn;
        o.upstreamHost = config->upstreamHost;
        o.upstreamPort = config->upstreamPort;
      }
      set.instances.push_back(o);
    }
    return set;
  }

 private:
  std::shared_ptr<SimulatedAgents> agents_;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "operator") args.erase(args.begin());  // `pgrs operator` spelled out
  auto agents = std::make_shared<SimulatedAgents>();
  return pgrs::kube::RunOperatorCommand(args, [agents](pgrs::kube::ReplicaSetControllerOptions& options) {
    options.observer = std::make_shared<SimulatedObserver>(agents);
    options.configPusher = [agents](const pgrs::executor::AgentEndpoint& endpoint, const AgentConfig& config) {
      agents->Store(endpoint.url, config);
      return pgrs::Status::Ok();
    };
  });
}
