// The local runtime: each instance is a `pgrs instance` agent process on
// this machine, a child of `pgrs local run`, with its own data directory
// and port (spec.local.basePort + index - 1) on 127.0.0.1.
//   DIR/sets/<set>/instances/<name>.json   the instance record
//   DIR/sets/<set>/instances/<name>/       agent-owned: data/, logs
//   DIR/sets/<set>/secrets/                passwords and agent tokens (0600)
//   DIR/sets/<set>/pgpass                  the passfile in status.connection
//   DIR/sets/<set>/tls/                    spec.tls: ca.crt (in status.connection),
//                                          ca.key, replication and per-instance
//                                          certificates (keys 0600)
//   DIR/backup-keys/<set>                  spec.backup.encryption's passphrase
//                                          (kept after the set: repository_secrets.h)
#pragma once

#include <sys/types.h>

#include <map>
#include <string>

#include "operator/executor/runtime.h"
#include "operator/local/store.h"

namespace pgrs::local {

class LocalRuntime : public executor::Runtime {
 public:
  // `pgrsBinary` is the program started as `pgrs instance`.
  LocalRuntime(const LocalStore& store, std::string pgrsBinary);
  ~LocalRuntime() override;

  std::vector<executor::InstanceRecord> ListInstances(const api::PostgresReplicaSet& set) override;
  Result<executor::InstanceRecord> CreateInstance(const api::PostgresReplicaSet& set, const std::string& name,
                                                  int index) override;
  Status EnsureAgent(const api::PostgresReplicaSet& set, const executor::InstanceRecord& instance) override;
  Status DeleteInstance(const api::PostgresReplicaSet& set, const std::string& name) override;
  Result<executor::AgentEndpoint> Endpoint(const api::PostgresReplicaSet& set, const std::string& name) override;
  Result<executor::SetSecrets> Secrets(const api::PostgresReplicaSet& set) override;
  api::ConnectionStatus Connection(const api::PostgresReplicaSet& set,
                                   const std::vector<executor::InstanceRecord>& instances) override;
  Result<tls::KeyPair> ServerCertificate(const api::PostgresReplicaSet& set,
                                         const executor::InstanceRecord& instance) override;
  std::string LeaseLocation(const api::PostgresReplicaSet& set) override;
  Status FenceFromOutside(const api::PostgresReplicaSet& set, const std::string& name) override;

  // Stops every agent (and so every PostgreSQL) this runtime started.
  void StopAll();
  std::string InstanceDir(const std::string& set, const std::string& name) const;

 private:
  struct Agent {
    pid_t pid = 0;
    int apiPort = 0;
  };
  std::string InstancesDir(const std::string& set) const;
  std::string SecretsDir(const std::string& set) const;
  std::string TlsDir(const std::string& set) const;
  Result<std::string> Token(const std::string& set, const std::string& name);
  Status StartAgent(const std::string& set, const executor::InstanceRecord& instance);
  void StopAgent(const std::string& key);

  const LocalStore& store_;
  std::string pgrsBinary_;
  std::map<std::string, Agent> agents_;  // key: set/instance
};

// A free TCP port on 127.0.0.1 (bound to port 0 and released).
int FreeLoopbackPort();

}  // namespace pgrs::local
