// The executor carries out a reconciler's plan: actions in order (stopping
// at the first failure, so the next reconcile sees the world as it is), and
// the desired config of every instance pushed to agents whose config
// differs. Idempotent: running a plan twice does no harm.
#pragma once

#include <functional>
#include <string>

#include "operator/executor/runtime.h"
#include "operator/pq/pq.h"
#include "reconcilers/replicaset.h"

namespace pgrs::executor {

// Puts the recovery repository's secrets (restoreS3*, restoreCipherPass)
// into `restore`, as
// the executor does for the agent of a set's first primary.
void AddRestoreSecrets(agent::RestoreConfig& restore, const SetSecrets& secrets);

class Executor {
 public:
  explicit Executor(Runtime& runtime) : runtime_(runtime) {}

  // How a config reaches an agent: PUT /config over HTTP unless replaced
  // (benchmarks simulate the agents).
  using ConfigPusher = std::function<Status(const AgentEndpoint& endpoint, const agent::AgentConfig& config)>;
  void SetConfigPusher(ConfigPusher pusher) { pusher_ = std::move(pusher); }

  Status Execute(const api::PostgresReplicaSet& set, const reconcilers::Plan& plan,
                 const reconcilers::ObservedSet& observed);

 private:
  Status Run(const api::PostgresReplicaSet& set, const reconcilers::Action& action,
             const reconcilers::ObservedSet& observed, const SetSecrets& secrets);
  Status PushConfig(const api::PostgresReplicaSet& set, const InstanceRecord& instance, agent::AgentConfig config,
                    const SetSecrets& secrets, const std::string& knownHash);
  Status CreateApplicationDatabase(pq::Connection& c, const SetSecrets& secrets, const std::string& instance);
  Status RunSql(const reconcilers::ObservedInstance& primary, const SetSecrets& secrets,
                const reconcilers::Action& action);

  Runtime& runtime_;
  ConfigPusher pusher_;
};

}  // namespace pgrs::executor
