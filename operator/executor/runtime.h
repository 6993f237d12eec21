// A runtime creates and removes instances: local agent processes on this
// machine, or Pods and PVCs in Kubernetes. The executor drives it; nothing
// in the runtime decides anything.
#pragma once

#include <string>
#include <vector>

#include "operator/api/types.h"
#include "operator/util/status.h"

namespace pgrs::executor {

struct InstanceRecord {
  std::string name;
  int index = 0;
  std::string host;  // where PostgreSQL listens and clients connect
  int port = 0;
  std::string listenAddresses;              // for postgresql.conf
  std::vector<std::string> clientNetworks;  // for pg_hba.conf
  // Being stopped on purpose: its Pod is terminating (deleted, evicted,
  // drained). A planned stop, not a crash.
  bool stopping = false;
};

struct AgentEndpoint {
  std::string url;  // http://HOST:PORT
  std::string token;
};

// Generated credentials of a replica set.
struct SetSecrets {
  std::string superuserPassword;
  std::string replicationPassword;
  // The application's role and database, made on the primary with the
  // replication role. Empty: none (local mode connects as the superuser).
  std::string appUser;
  std::string appPassword;
  std::string appDatabase;
  // spec.backup.repository.s3: the access keys and the CA bundle (PEM; ""
  // = the system's CAs). Empty without an S3 repository.
  std::string s3Key;
  std::string s3KeySecret;
  std::string s3CA;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  // The instances that exist for the set, sorted by index.
  virtual std::vector<InstanceRecord> ListInstances(const api::PostgresReplicaSet& set) = 0;
  // Creates the instance's storage and starts its agent.
  virtual Result<InstanceRecord> CreateInstance(const api::PostgresReplicaSet& set, const std::string& name,
                                                int index) = 0;
  // Makes sure the agent of an existing instance runs (adoption after a
  // restart of the control plane, or an agent that died).
  virtual Status EnsureAgent(const api::PostgresReplicaSet& set, const InstanceRecord& instance) = 0;
  // Stops the instance and deletes its storage.
  virtual Status DeleteInstance(const api::PostgresReplicaSet& set, const std::string& name) = 0;
  virtual Result<AgentEndpoint> Endpoint(const api::PostgresReplicaSet& set, const std::string& name) = 0;
  // The set's passwords, generated on first use and kept.
  virtual Result<SetSecrets> Secrets(const api::PostgresReplicaSet& set) = 0;
  // Where the set's primary lease lives, as agents open it ("file:/path").
  virtual std::string LeaseLocation(const api::PostgresReplicaSet& set) = 0;
  // Stops an instance's PostgreSQL without the help of its agent (which does
  // not answer), and keeps it stopped: the last resort before a failover.
  virtual Status FenceFromOutside(const api::PostgresReplicaSet& set, const std::string& name) = 0;
  // How applications connect (status.connection).
  virtual api::ConnectionStatus Connection(const api::PostgresReplicaSet& set,
                                           const std::vector<InstanceRecord>& instances) = 0;
};

}  // namespace pgrs::executor
