// The local runtime: each instance is a `pgrs instance` agent process on
// this machine, started by `pgrs local run`, with its own data directory
// and port (spec.local.basePort + index - 1) on 127.0.0.1. The agents do
// not die with the control plane: a `run` that crashed leaves them (and
// PostgreSQL) running, and the next one adopts them (AdoptRunningAgents).
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

#include <chrono>
#include <cstdint>
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

  // Once, before the first pass of `pgrs local run`: finds the `pgrs
  // instance` processes of this state directory (in /proc, by their
  // --instance-dir) and adopts those of stored instances without touching
  // their PostgreSQL; stops the others (their set or instance is gone,
  // or another agent runs for the same directory). Returns how many it
  // adopted.
  int AdoptRunningAgents();
  // Stops every agent (and so every PostgreSQL) this runtime started or
  // adopted.
  void StopAll();
  std::string InstanceDir(const std::string& set, const std::string& name) const;

 private:
  struct Agent {
    pid_t pid = 0;
    int apiPort = 0;
    uint64_t startTime = 0;  // tells it from a later process with its pid
    bool child = false;      // started by this process (else adopted)
    bool https = false;      // its API is HTTPS with mutual TLS (--tls-cert-file)
  };
  // Alive; reaps a child that has exited, with how it ended in `how`.
  bool Alive(const Agent& agent, std::string* how);
  std::string InstancesDir(const std::string& set) const;
  std::string SecretsDir(const std::string& set) const;
  std::string TlsDir(const std::string& set) const;
  Result<std::string> Token(const std::string& set, const std::string& name);
  Status StartAgent(const api::PostgresReplicaSet& set, const executor::InstanceRecord& instance);
  // With spec.tls: how the control plane calls an agent (its client
  // certificate, the set's CA, the address the agent's certificate names).
  Result<TlsFiles> AgentClientTls(const api::PostgresReplicaSet& set);
  // The set's CA ("ca") or a certificate it issued, in DIR/sets/NAME/tls
  // (tls::EnsureSetCertificate).
  Result<tls::KeyPair> Certificate(const api::PostgresReplicaSet& set, const std::string& name,
                                   const tls::Subject& subject, tls::Usage usage);
  bool StopAgentProcess(const Agent& agent, int signal, std::chrono::milliseconds grace);
  void StopAgent(const std::string& key);

  const LocalStore& store_;
  std::string pgrsBinary_;
  std::map<std::string, Agent> agents_;  // key: set/instance
};

// A `pgrs instance` process of a state directory, found by its argv
// (--instance-dir DIR/sets/SET/instances/NAME, --listen HOST:PORT).
struct FoundAgent {
  pid_t pid = 0;
  uint64_t startTime = 0;
  std::string set, name;
  int apiPort = 0;
  bool https = false;
};
// Every live one, oldest first.
std::vector<FoundAgent> FindAgentProcesses(const std::string& stateDir);

// A free TCP port on 127.0.0.1 (bound to port 0 and released).
int FreeLoopbackPort();

}  // namespace pgrs::local
