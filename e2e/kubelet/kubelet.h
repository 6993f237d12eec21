// A process kubelet for tests (never linked into pgrs): it plays the node
// agent for the Pods of a Kubernetes API server, running each Pod's first
// container as a local process, so that the operator's end-to-end tests can
// run real instance Pods without a cluster or a container engine.
//
// What a Pod gets (see README.md for what a real kubelet does that this one
// does not):
//   - a loopback address 127.x.y.z of its own (status.podIP), kept for the
//     Pod's life; Pods share the host network and tell each other apart by it
//   - its process in a mount namespace of its own, where the volumes
//     (persistentVolumeClaim, secret, configMap, emptyDir and the service
//     account token) are bind-mounted at their mountPath; the host sees none
//     of those mounts
//   - the securityContext a container runtime applies: runAsUser /
//     runAsGroup / fsGroup / supplementalGroups (through uidMap / gidMap),
//     runAsNonRoot, capabilities, allowPrivilegeEscalation,
//     readOnlyRootFilesystem, and fsGroup ownership of its volumes as the
//     kubelet's SetVolumeOwnership (fsGroupChangePolicy included)
//   - `$(VAR)` expansion, env from values, fieldRefs, Secret and ConfigMap
//     keys, KUBERNETES_SERVICE_HOST/_PORT of the API server
//   - readiness, liveness and startup probes (httpGet, tcpSocket, exec),
//     restarts with backoff per restartPolicy, and a Pod status written
//     through /status only when it changed
//   - binding: an unbound Pod it takes is bound to its node (pods/binding),
//     as the scheduler would
//   - a service-account token from TokenRequest, bound to the Pod and
//     renewed in place before it expires
//   - on deletion (a deletionTimestamp): SIGTERM to the main process, the
//     grace period (capped), SIGKILL of every process of the Pod, a final
//     status, then the object's grace-0 delete; the Pod directory goes, PVC
//     directories stay until their claim is deleted
// Stop() and KillAll() end every Pod's processes but leave the API objects
// alone, as a node that goes down would.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/kube/informer.h"
#include "operator/util/status.h"

namespace pgrs::e2e {

struct KubeletOptions {
  kube::ClientConfig config;          // where the API server is (see kube::LoadKubeconfig)
  std::string nodeName = "process-node";
  std::string namespace_;             // "" = Pods of every namespace
  std::string root;                   // pod and volume directories (required)
  // Rewrites a container's command[0] (there are no images):
  // "/usr/local/bin/pgrs" -> "/work/main/build/operator/pgrs".
  std::map<std::string, std::string> commandMap;
  // There are no images either for the ids of a securityContext: they are
  // rewritten to host ids (runAsUser 999 -> the host's postgres uid 101;
  // runAsGroup, fsGroup, supplementalGroups through gidMap). `imageUser` is
  // the USER of every "image": the uid of a container without runAsUser.
  std::map<uid_t, uid_t> uidMap;
  std::map<gid_t, gid_t> gidMap;
  uid_t imageUser = 0;
  std::string ipBase = "127.0.10.1";  // the first Pod IP; later ones count up
  // A fixed token mounted into every Pod instead of one from TokenRequest
  // (never refreshed); "" = a token per Pod, as a real kubelet's
  // kube-api-access volume.
  std::string podTokenFile;
  // spec.expirationSeconds of the Pods' TokenRequests (a real kubelet's
  // 3607 s); the token is renewed once 80% of its life has passed.
  std::chrono::seconds tokenExpiration{3607};
  std::chrono::milliseconds maxGrace{10000};  // caps terminationGracePeriodSeconds
  std::chrono::milliseconds stopGrace{2000};  // SIGTERM -> SIGKILL on Stop()
  // Restart backoff after a container exits: doubling from the first to the
  // cap (Kubernetes: 10 s to 5 min, too slow for tests).
  std::chrono::milliseconds restartBackoff{1000};
  std::chrono::milliseconds maxRestartBackoff{10000};
  // How often a Pod's worker looks at its process and its probes.
  std::chrono::milliseconds tick{50};
};

class ProcessKubelet {
 public:
  explicit ProcessKubelet(KubeletOptions options);
  // Stop()s.
  ~ProcessKubelet();
  ProcessKubelet(const ProcessKubelet&) = delete;
  ProcessKubelet& operator=(const ProcessKubelet&) = delete;

  // Connects, starts the Pod and PVC informers and waits for their first
  // list. Pods are started from then on.
  Status Start();
  // Ends every Pod's processes (SIGTERM, `stopGrace`, SIGKILL), waits for
  // them, removes the mount points it created on the host when empty and
  // not mounted on in another mount namespace. Pod
  // objects and directories stay. Idempotent.
  void Stop();
  // A node crash: SIGKILL to every Pod's processes at once, then Stop().
  void KillAll();
  // `kubectl cordon` / `uncordon` of this (only) node: while cordoned, Pods
  // not bound yet are left Pending (no scheduler would place them here);
  // the Pods it runs go on. Uncordoned, it takes the waiting ones.
  void Cordon(bool unschedulable);

  // Test hooks. Empty / -1 when the kubelet runs no such Pod.
  // The container's main process (its process group leader); -1 also while
  // the container is not running (waiting, backing off, finished).
  pid_t PodPid(const std::string& ns, const std::string& name) const;
  std::string PodIp(const std::string& ns, const std::string& name) const;
  std::string PodDir(const std::string& ns, const std::string& name) const;  // ROOT/pods/NS_NAME_UID
  // ROOT/volumes/NS/CLAIM (whether or not it exists).
  std::string VolumeDir(const std::string& ns, const std::string& claim) const;

  const KubeletOptions& options() const { return options_; }

  class PodWorker;

 private:
  friend class PodWorker;

  void OnPod(const kube::Json& pod);
  void OnPodDeleted(const kube::Json& pod);
  void Housekeeping();
  // Claims PVCs and removes the directories of deleted ones not in use.
  void SyncVolumes();
  // The next free address (or `wanted`, a Pod's address from before a
  // restart, when free). Called with mu_ held.
  std::string AllocateIp(const std::string& wanted);
  void ReleaseIp(const std::string& ip);
  // The directory of a claim the Pod mounts; NotFound until the claim exists.
  // `sharedMount`: another Pod of this node mounts it already.
  Result<std::string> AcquireClaim(PodWorker* worker, const std::string& ns, const std::string& claim,
                                   bool* sharedMount);
  // Makes a missing mount point on the host (a directory, or an empty file
  // for a file mount), remembered so that Stop() can remove it.
  Status EnsureMountPoint(const std::string& target, bool file);
  void StopAll(bool kill);
  std::shared_ptr<PodWorker> FindWorker(const std::string& ns, const std::string& name) const;

  KubeletOptions options_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<kube::Informer> pods_;
  std::unique_ptr<kube::Informer> claims_;
  std::string podToken_;  // --pod-token's text, mounted into every Pod when set
  bool fixedPodToken_ = false;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool running_ = false;
  bool stopping_ = false;
  bool cordoned_ = false;
  std::map<std::string, std::shared_ptr<PodWorker>> workers_;  // by Pod uid
  std::set<std::string> heldIps_;
  uint32_t nextIp_ = 0;
  std::map<std::string, std::string> deletedClaims_;  // "ns/claim" -> uid
  std::set<std::string> boundClaims_;                 // uids we marked Bound
  std::vector<std::string> createdMountPoints_;       // host directories we made, in creation order
  // Terminating Pods of this node that no worker runs (the kubelet started
  // after their deletion began): only their grace-0 delete is left. "ns/name" -> uid.
  std::map<std::string, std::string> orphanedDeletions_;
  std::thread housekeeper_;
};

}  // namespace pgrs::e2e
