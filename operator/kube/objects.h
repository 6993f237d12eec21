// The Kubernetes objects of a replica set (see OBJECTS.md), built as JSON
// by pure functions: names, labels, owner references, the instance Pod.
// The runtime creates them; tests check them without a server.
#pragma once

#include <string>
#include <vector>

#include "operator/api/types.h"
#include "operator/kube/client.h"

namespace pgrs::kube {

Resource PodResource();
Resource PvcResource();
Resource ServiceResource();
Resource SecretResource();
Resource PdbResource();
Resource ServiceAccountResource();
Resource RoleResource();
Resource RoleBindingResource();

inline constexpr char kSetLabel[] = "pgrs.dev/set";
inline constexpr char kInstanceLabel[] = "pgrs.dev/instance";
inline constexpr char kRoleLabel[] = "pgrs.dev/role";
inline constexpr char kManagedBySelector[] = "app.kubernetes.io/managed-by=pgrs";
inline constexpr int kPostgresPort = 5432;
// `pgbackrest server` in every instance Pod (spec.backup with spec.tls):
// what a primary backs up a standby of another Pod through.
inline constexpr int kPgBackRestServerPort = 8432;
inline constexpr int kAgentPort = 8000;
// An instance Pod's terminationGracePeriodSeconds, and how much of it a
// primary's agent waits for the controller to hand the primary over before
// it stops PostgreSQL anyway (`pgrs instance --shutdown-handover`).
inline constexpr int kTerminationGraceSeconds = 30;
inline constexpr int kShutdownHandoverSeconds = 20;

// How instance Pods are made (flags of `pgrs operator`).
struct InstancePodOptions {
  std::string image = "ghcr.io/pgrs/pgrs:latest";
  std::string imagePullPolicy = "IfNotPresent";
  std::string command = "/usr/local/bin/pgrs";
  std::string logLevel = "info";
  // How long a primary's agent, its Pod deleted or evicted, waits for the
  // hand-over to a standby before it stops anyway; 0 = no hand-over (the
  // operator fails over once the Pod is gone, as after a crash).
  int shutdownHandoverSeconds = kShutdownHandoverSeconds;
};

// The set as the owner of its children.
struct SetRef {
  std::string ns, name, uid;
  static SetRef Of(const Json& object);
};

std::string SuperuserSecretName(const std::string& set);
std::string AppSecretName(const std::string& set);
std::string ReplicationSecretName(const std::string& set);
std::string AgentSecretName(const std::string& set);
// spec.backup.encryption's passphrase (key passphrase); not owned by the set.
std::string EncryptionSecretName(const std::string& set);
std::string PrimaryLeaseName(const std::string& set);
std::string InstanceServiceAccountName(const std::string& set);

// Labels every child carries; the selector string of the set's Pods.
Json CommonLabels(const std::string& set);
std::string PodSelector(const std::string& set);

// metadata with name, namespace, labels and the owner reference.
Json ChildMetadata(const SetRef& owner, const std::string& name);

Json BuildPvc(const SetRef& owner, const api::ReplicaSetSpec& spec, const std::string& instance);
// The instance Pod. With spec.backup.repository.volumeClaim it mounts that
// claim at api::kRepositoryMountPath (the "repository" volume).
Json BuildPod(const SetRef& owner, const api::ReplicaSetSpec& spec, const std::string& instance,
              const std::string& role, const InstancePodOptions& options);
// The claim a Pod mounts as its repository ("" when none): what BuildPod
// wrote when the Pod was made.
std::string PodRepositoryClaim(const Json& pod);

// A Pod's volumes are fixed once it exists: a Pod made before the set's
// repository changed (spec.backup added, another volumeClaim) must be made
// again to mount it. One at a time and only while every instance is ready:
// standbys first (lowest index), the primary last (its deletion hands it
// over to a standby first). "" = none now.
struct PodToRoll {
  std::string name;
  bool exists = false;       // a Pod object is there
  bool terminating = false;  // it has a deletionTimestamp
  bool ready = false;        // its instance runs and streams (or is the primary)
  std::string repositoryClaim;
};
std::string ChooseOutdatedPod(const std::vector<PodToRoll>& pods, const std::string& wantedClaim,
                              const std::string& primary);
// The headless Service (NAME) and the -rw, -ro, -r Services.
std::vector<Json> BuildServices(const SetRef& owner);
Json BuildPdb(const SetRef& owner);
// basic-auth Secret (username, password [, dbname]) or an Opaque one.
Json BuildSecret(const SetRef& owner, const std::string& name, const std::string& type,
                 const std::vector<std::pair<std::string, std::string>>& data);
Json BuildServiceAccount(const SetRef& owner);
Json BuildRole(const SetRef& owner);
Json BuildRoleBinding(const SetRef& owner);

// A Secret's `data` key, base64-decoded ("" when absent).
std::string SecretValue(const Json& secret, const std::string& key);
std::string Base64(const std::string& bytes);

}  // namespace pgrs::kube
