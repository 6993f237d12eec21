// The Kubernetes runtime: an instance is a Pod and a PersistentVolumeClaim
// of the same name, reached at the Pod's IP; passwords live in Secrets; the
// primary lease is a Lease object. Reads come from the controller's caches
// (informers), writes go to the API server. See OBJECTS.md.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "operator/executor/runtime.h"
#include "operator/kube/controller.h"
#include "operator/kube/objects.h"

namespace pgrs::kube {

class KubeRuntime : public executor::Runtime {
 public:
  // `cache` is the controller whose informers watch the set's children
  // (pods, PVCs, secrets, services ... owned by the set).
  KubeRuntime(Client* client, const Controller* cache, InstancePodOptions options);
  ~KubeRuntime() override;

  // What a set needs besides its instances: Secrets, Services, the
  // PodDisruptionBudget, the instances' ServiceAccount, Role and
  // RoleBinding, and the primary Lease. Creates what is missing.
  Status EnsureSetObjects(const api::PostgresReplicaSet& set);
  // Moves the pgrs.dev/role labels so that `-rw` selects the current
  // primary and nothing else.
  Status SyncRoleLabels(const api::PostgresReplicaSet& set, const api::ReplicaSetStatus& status);

  std::vector<executor::InstanceRecord> ListInstances(const api::PostgresReplicaSet& set) override;
  Result<executor::InstanceRecord> CreateInstance(const api::PostgresReplicaSet& set, const std::string& name,
                                                  int index) override;
  Status EnsureAgent(const api::PostgresReplicaSet& set, const executor::InstanceRecord& instance) override;
  Status DeleteInstance(const api::PostgresReplicaSet& set, const std::string& name) override;
  Result<executor::AgentEndpoint> Endpoint(const api::PostgresReplicaSet& set, const std::string& name) override;
  Result<executor::SetSecrets> Secrets(const api::PostgresReplicaSet& set) override;
  Result<tls::KeyPair> ServerCertificate(const api::PostgresReplicaSet& set,
                                         const executor::InstanceRecord& instance) override;
  std::string LeaseLocation(const api::PostgresReplicaSet& set) override;
  Status FenceFromOutside(const api::PostgresReplicaSet& set, const std::string& name) override;
  api::ConnectionStatus Connection(const api::PostgresReplicaSet& set,
                                   const std::vector<executor::InstanceRecord>& instances) override;

  // What the spec names and the user makes: the repository's volume claim
  // (it exists; ReadWriteMany when several Pods mount it), the S3 Secrets
  // (they exist and have their keys). Invalid with the field path when not.
  Status CheckReferences(const api::PostgresReplicaSet& set);

  // Deletes one Pod whose volumes predate the set's repository
  // (ChooseOutdatedPod); it is made again with them by EnsureAgent. Returns
  // the instance whose Pod it deleted, "" when none.
  Result<std::string> RollOutdatedPod(const api::PostgresReplicaSet& set, const api::ReplicaSetStatus& status);

  // Forgets what it remembers of a deleted set.
  void Forget(const std::string& ns, const std::string& set);

 private:
  // A child from the cache, or from the API when the cache has not seen it
  // yet (just created); nullopt when it does not exist.
  std::optional<Json> Child(const Resource& r, const api::PostgresReplicaSet& set, const std::string& name);
  Status CreateIfMissing(const Resource& r, const api::PostgresReplicaSet& set, const Json& object);
  std::optional<Json> CachedPod(const api::PostgresReplicaSet& set, const std::string& name) const;
  // How the instance is reached: its Pod's address (empty while it has none).
  executor::InstanceRecord Record(const api::PostgresReplicaSet& set, const std::string& name, int index) const;
  // A key of one of the set's Secrets, which it makes once with random
  // values when missing (NAME-backup-encryption without an owner, so that
  // it outlives the set).
  Result<std::string> SecretField(const api::PostgresReplicaSet& set, const std::string& secret,
                                  const std::string& key);
  bool RecentlyDeleted(const std::string& key);
  // The repositories' secrets, read afresh (they may be rotated): S3 access
  // keys and CA from the user's Secrets (spec.backup and, while the set is
  // to be restored, spec.bootstrap.recovery), the encryption passphrases
  // (this set's, made once; the source's). Errors name the field.
  Status ReadS3Secrets(const api::PostgresReplicaSet& set, executor::SetSecrets& out);
  // spec.tls: the CA (made once), the replication client certificate, and a
  // file with the CA for the operator's own libpq connections.
  Status EnsureTls(const api::PostgresReplicaSet& set, executor::SetSecrets& out);
  Result<tls::KeyPair> Certificate(const api::PostgresReplicaSet& set, const std::string& name,
                                   const tls::Subject& subject, tls::Usage usage);

  Client* client_;
  const Controller* cache_;
  InstancePodOptions options_;
  std::mutex mu_;
  std::mutex tlsMu_;  // certificates_
  // "ns/instance" -> when the operator deleted it: a cache that has not
  // caught up must not bring it back.
  std::map<std::string, std::chrono::steady_clock::time_point> deleted_;
  // "ns/set" -> its secrets, once read (they never change).
  std::map<std::string, executor::SetSecrets> secrets_;
  std::map<std::string, std::string> tokens_;
  // "ns/set/" + certificate name -> what its Secret holds (the operator is
  // the only writer), and the directory of the CA files for libpq.
  std::map<std::string, tls::KeyPair> certificates_;
  std::string caDir_;
  std::map<std::string, std::string> leases_;  // "ns/set" -> uid, once its primary Lease exists
  // "ns/instance" -> the uid of the Pod last deleted to fence it, and when:
  // a Pod made again since runs an agent that obeys its fenced config, and
  // is not deleted again during that fence (kRememberFence).
  std::map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> fencedPods_;
};

}  // namespace pgrs::kube
