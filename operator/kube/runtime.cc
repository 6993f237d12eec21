#include "operator/kube/runtime.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>

#include "operator/kube/certificates.h"
#include "operator/util/files.h"
#include "operator/util/log.h"
#include "operator/util/random.h"
#include "reconcilers/replicaset.h"

namespace pgrs::kube {

using executor::InstanceRecord;
using namespace std::chrono_literals;

namespace {

constexpr auto kRememberDeleted = 60s;
// A fence from outside is over (confirmed, promoted) within seconds.
constexpr auto kRememberFence = 30s;

SetRef RefOf(const api::PostgresReplicaSet& set) {
  return {set.metadata.namespace_, set.metadata.name, set.metadata.uid};
}

std::string Key(const api::PostgresReplicaSet& set, const std::string& name) {
  return set.metadata.namespace_ + "/" + name;
}

bool Terminating(const Json& o) { return !GetString(o, {"metadata", "deletionTimestamp"}).empty(); }

}  // namespace

KubeRuntime::KubeRuntime(Client* client, const Controller* cache, InstancePodOptions options)
    : client_(client), cache_(cache), options_(std::move(options)) {
  // The CA files libpq verifies the instances with (it reads no PEM from
  // memory): one directory per operator process, named after its PID; those
  // of processes that are gone (killed) are removed here.
  const std::string prefix = "pgrs-operator-ca-";
  if (DIR* tmp = ::opendir("/tmp")) {
    while (dirent* entry = ::readdir(tmp)) {
      const std::string name = entry->d_name;
      if (name.rfind(prefix, 0) != 0) continue;
      const pid_t pid = static_cast<pid_t>(std::atoi(name.c_str() + prefix.size()));
      if (pid > 0 && (::kill(pid, 0) == 0 || errno != ESRCH)) continue;
      RemoveTree("/tmp/" + name).ok();
    }
    ::closedir(tmp);
  }
  static std::atomic<int> made{0};
  const std::string dir = "/tmp/" + prefix + std::to_string(::getpid()) + "-" + std::to_string(++made);
  if (MakeDirs(dir, 0700).ok()) caDir_ = dir;
}

KubeRuntime::~KubeRuntime() {
  if (!caDir_.empty()) RemoveTree(caDir_).ok();
}

bool KubeRuntime::RecentlyDeleted(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = deleted_.find(key);
  if (it == deleted_.end()) return false;
  if (std::chrono::steady_clock::now() - it->second > kRememberDeleted) {
    deleted_.erase(it);
    return false;
  }
  return true;
}

void KubeRuntime::Forget(const std::string& ns, const std::string& set) {
  std::lock_guard<std::mutex> lock(mu_);
  leases_.erase(ns + "/" + set);
  secrets_.erase(ns + "/" + set);
  tokens_.erase(ns + "/" + set);
}

std::optional<Json> KubeRuntime::Child(const Resource& r, const api::PostgresReplicaSet& set,
                                       const std::string& name) {
  for (const auto& o : cache_->ListOwned(r, set.metadata.uid)) {
    if (NameOf(o) == name) return o;
  }
  auto fresh = client_->Get(r, set.metadata.namespace_, name);
  if (fresh.ok()) return *fresh;
  return std::nullopt;
}

Status KubeRuntime::CreateIfMissing(const Resource& r, const api::PostgresReplicaSet& set, const Json& object) {
  const std::string name = NameOf(object);
  for (const auto& o : cache_->ListOwned(r, set.metadata.uid)) {
    if (NameOf(o) == name) return Status::Ok();
  }
  auto created = client_->Create(r, set.metadata.namespace_, object);
  if (created.ok()) {
    spdlog::info("created {} set={} name={}", r.kind, set.metadata.name, name);
    return Status::Ok();
  }
  if (IsAlreadyExists(created.status())) return Status::Ok();
  return created.status().WithContext("create " + r.kind + " " + name);
}

Status KubeRuntime::EnsureSetObjects(const api::PostgresReplicaSet& set) {
  const SetRef owner = RefOf(set);
  // Secrets first: Secrets() makes them with fresh random values.
  if (auto secrets = Secrets(set); !secrets.ok()) return secrets.status();
  if (auto token = SecretField(set, AgentSecretName(set.metadata.name), "token"); !token.ok()) return token.status();
  for (const auto& service : BuildServices(owner)) PGRS_RETURN_IF_ERROR(CreateIfMissing(ServiceResource(), set, service));
  PGRS_RETURN_IF_ERROR(CreateIfMissing(PdbResource(), set, BuildPdb(owner)));
  PGRS_RETURN_IF_ERROR(CreateIfMissing(ServiceAccountResource(), set, BuildServiceAccount(owner)));
  PGRS_RETURN_IF_ERROR(CreateIfMissing(RoleResource(), set, BuildRole(owner)));
  PGRS_RETURN_IF_ERROR(CreateIfMissing(RoleBindingResource(), set, BuildRoleBinding(owner)));
  // The primary Lease exists from the start, owned by the set, so that it
  // goes with it; the first primary acquires it.
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = leases_.find(Key(set, set.metadata.name));
    if (it != leases_.end() && it->second == set.metadata.uid) return Status::Ok();
  }
  Json lease = Json::object();
  lease["apiVersion"] = Json::string("coordination.k8s.io/v1");
  lease["kind"] = Json::string("Lease");
  lease["metadata"] = ChildMetadata(owner, PrimaryLeaseName(set.metadata.name));
  lease["spec"] = Json::object();
  auto existing = client_->Get(LeaseResource(), owner.ns, PrimaryLeaseName(owner.name));
  if (existing.status().code() == StatusCode::kNotFound) {
    auto created = client_->Create(LeaseResource(), owner.ns, lease);
    if (!created.ok() && !IsAlreadyExists(created.status())) return created.status().WithContext("create primary lease");
  } else if (!existing.ok()) {
    return existing.status().WithContext("read primary lease");
  }
  // Once there, the Lease is the agents' and the failover's to change; the
  // set's deletion takes it along (and Acquire makes one if it went).
  std::lock_guard<std::mutex> lock(mu_);
  leases_[Key(set, set.metadata.name)] = set.metadata.uid;
  return Status::Ok();
}

std::optional<Json> KubeRuntime::CachedPod(const api::PostgresReplicaSet& set, const std::string& name) const {
  for (const auto& pod : cache_->ListOwned(PodResource(), set.metadata.uid)) {
    if (NameOf(pod) == name) return pod;
  }
  return std::nullopt;
}

InstanceRecord KubeRuntime::Record(const api::PostgresReplicaSet& set, const std::string& name, int index) const {
  InstanceRecord r;
  r.name = name;
  r.index = index;
  r.port = kPostgresPort;
  // No address until the Pod runs. A Pod on its way out keeps its address
  // while its container stops: its agent still answers, and a primary
  // hands over to a standby before its PostgreSQL stops.
  auto pod = CachedPod(set, name);
  if (pod) r.host = GetString(*pod, {"status", "podIP"});
  r.stopping = pod && Terminating(*pod);
  r.listenAddresses = r.host;
  // Pods move between addresses; passwords (scram) guard every rule.
  r.clientNetworks = {"0.0.0.0/0", "::/0"};
  r.backupServerPort = kPgBackRestServerPort;
  return r;
}

std::vector<InstanceRecord> KubeRuntime::ListInstances(const api::PostgresReplicaSet& set) {
  // An instance exists while its volume does; its Pod may come and go.
  std::vector<InstanceRecord> out;
  for (const auto& pvc : cache_->ListOwned(PvcResource(), set.metadata.uid)) {
    const std::string name = NameOf(pvc);
    int index = api::InstanceIndex(set.metadata.name, name);
    if (index <= 0 || Terminating(pvc) || RecentlyDeleted(Key(set, name))) continue;
    out.push_back(Record(set, name, index));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  return out;
}

Result<InstanceRecord> KubeRuntime::CreateInstance(const api::PostgresReplicaSet& set, const std::string& name,
                                                   int index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    deleted_.erase(Key(set, name));
  }
  const SetRef owner = RefOf(set);
  PGRS_RETURN_IF_ERROR(CreateIfMissing(PvcResource(), set, BuildPvc(owner, set.spec, name)));
  const std::string role = set.status.currentPrimary.empty() || set.status.currentPrimary == name ? "primary" : "standby";
  PGRS_RETURN_IF_ERROR(CreateIfMissing(PodResource(), set, BuildPod(owner, set.spec, name, role, options_)));
  return Record(set, name, index);
}

Status KubeRuntime::EnsureAgent(const api::PostgresReplicaSet& set, const InstanceRecord& instance) {
  if (RecentlyDeleted(Key(set, instance.name))) return Status::Ok();
  auto pod = CachedPod(set, instance.name);
  if (pod) {
    std::string phase = GetString(*pod, {"status", "phase"});
    if (Terminating(*pod)) return Status::Ok();  // recreated once it is gone
    if (phase != "Failed" && phase != "Succeeded") return Status::Ok();
    // A Pod that ended (evicted, node lost) does not come back by itself.
    spdlog::warn("replacing ended pod set={} instance={} phase={}", set.metadata.name, instance.name, phase);
    Status st = client_->Delete(PodResource(), set.metadata.namespace_, instance.name);
    if (!st.ok() && st.code() != StatusCode::kNotFound) return st;
    return Status::Ok();
  }
  // The volume is there and the Pod is not (deleted by someone, fenced, or
  // its node went away): bring the instance back on its volume.
  const std::string role = set.status.currentPrimary == instance.name ? "primary" : "standby";
  auto created = client_->Create(PodResource(), set.metadata.namespace_, BuildPod(RefOf(set), set.spec, instance.name, role, options_));
  if (created.ok()) {
    spdlog::info("recreated pod set={} instance={}", set.metadata.name, instance.name);
    return Status::Ok();
  }
  if (IsAlreadyExists(created.status())) return Status::Ok();
  return created.status();
}

Result<std::string> KubeRuntime::RollOutdatedPod(const api::PostgresReplicaSet& set,
                                                 const api::ReplicaSetStatus& status) {
  const std::string wanted = set.spec.backup ? set.spec.backup->repository.volumeClaim : "";
  std::vector<PodToRoll> pods;
  for (const auto& i : status.instances) {
    PodToRoll p;
    p.name = i.name;
    auto pod = CachedPod(set, i.name);
    p.exists = pod.has_value();
    p.terminating = pod && Terminating(*pod);
    p.repositoryClaim = pod ? PodRepositoryClaim(*pod) : "";
    p.ready = i.name == status.currentPrimary ? i.state == "Running" : i.state == "Streaming";
    pods.push_back(p);
  }
  const std::string name = ChooseOutdatedPod(pods, wanted, status.currentPrimary);
  if (name.empty()) return name;
  spdlog::info("deleting pod to mount the repository set={} instance={} role={} claim={}", set.metadata.name, name,
               name == status.currentPrimary ? "primary" : "standby", wanted.empty() ? "(none)" : wanted);
  Status st = client_->Delete(PodResource(), set.metadata.namespace_, name);
  if (!st.ok() && st.code() != StatusCode::kNotFound) return st.WithContext("delete pod " + name);
  return name;
}

Status KubeRuntime::DeleteInstance(const api::PostgresReplicaSet& set, const std::string& name) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    deleted_[Key(set, name)] = std::chrono::steady_clock::now();
  }
  Status pod = client_->Delete(PodResource(), set.metadata.namespace_, name);
  if (!pod.ok() && pod.code() != StatusCode::kNotFound) return pod.WithContext("delete pod " + name);
  Status pvc = client_->Delete(PvcResource(), set.metadata.namespace_, name);
  if (!pvc.ok() && pvc.code() != StatusCode::kNotFound) return pvc.WithContext("delete volume claim " + name);
  return Status::Ok();
}

Result<std::string> KubeRuntime::SecretField(const api::PostgresReplicaSet& set, const std::string& secret,
                                             const std::string& key) {
  const SetRef owner = RefOf(set);
  auto existing = Child(SecretResource(), set, secret);
  if (!existing) {
    // Made once, never rotated by pgrs.
    std::vector<std::pair<std::string, std::string>> data;
    std::string type = "kubernetes.io/basic-auth";
    if (secret == SuperuserSecretName(owner.name)) data = {{"username", "postgres"}, {"password", RandomHex(24)}};
    else if (secret == AppSecretName(owner.name)) {
      data = {{"username", "app"}, {"password", RandomHex(24)}, {"dbname", "app"}};
    } else if (secret == ReplicationSecretName(owner.name)) {
      data = {{"username", "pgrs_replication"}, {"password", RandomHex(24)}};
    } else if (secret == EncryptionSecretName(owner.name)) {
      data = {{"passphrase", RandomHex(32)}};
      type = "Opaque";
    } else {
      data = {{"token", RandomHex(24)}};
      type = "Opaque";
    }
    Json object = BuildSecret(owner, secret, type, data);
    // The encryption passphrase is not owned by the set: the repository,
    // and whoever restores from it, need it after the set is gone.
    const bool owned = secret != EncryptionSecretName(owner.name);
    if (!owned) object["metadata"].erase("ownerReferences");
    auto created = client_->Create(SecretResource(), owner.ns, object);
    if (created.ok()) {
      spdlog::info("created secret set={} name={}{}", owner.name, secret, owned ? "" : " (kept after the set)");
      existing = *created;
    } else if (IsAlreadyExists(created.status())) {
      auto fresh = client_->Get(SecretResource(), owner.ns, secret);
      if (!fresh.ok()) return fresh.status();
      existing = *fresh;
    } else {
      return created.status().WithContext("create secret " + secret);
    }
  }
  std::string value = SecretValue(*existing, key);
  if (value.empty()) return Status::Invalid("secret " + owner.ns + "/" + secret + " has no " + key);
  return value;
}

Result<executor::SetSecrets> KubeRuntime::Secrets(const api::PostgresReplicaSet& set) {
  const std::string key = Key(set, set.metadata.name);
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (auto it = secrets_.find(key); it != secrets_.end()) {
      executor::SetSecrets s = it->second;
      lock.unlock();
      PGRS_RETURN_IF_ERROR(ReadS3Secrets(set, s));
      PGRS_RETURN_IF_ERROR(EnsureTls(set, s));
      return s;
    }
  }
  const std::string& n = set.metadata.name;
  executor::SetSecrets s;
  auto superuser = SecretField(set, SuperuserSecretName(n), "password");
  if (!superuser.ok()) return superuser.status();
  auto replication = SecretField(set, ReplicationSecretName(n), "password");
  if (!replication.ok()) return replication.status();
  auto appPassword = SecretField(set, AppSecretName(n), "password");
  if (!appPassword.ok()) return appPassword.status();
  auto appUser = SecretField(set, AppSecretName(n), "username");
  if (!appUser.ok()) return appUser.status();
  auto appDatabase = SecretField(set, AppSecretName(n), "dbname");
  if (!appDatabase.ok()) return appDatabase.status();
  s.superuserPassword = *superuser;
  s.replicationPassword = *replication;
  s.appUser = *appUser;
  s.appPassword = *appPassword;
  s.appDatabase = *appDatabase;
  {
    std::lock_guard<std::mutex> lock(mu_);
    secrets_[key] = s;
  }
  PGRS_RETURN_IF_ERROR(ReadS3Secrets(set, s));
  PGRS_RETURN_IF_ERROR(EnsureTls(set, s));
  return s;
}

Result<tls::KeyPair> KubeRuntime::Certificate(const api::PostgresReplicaSet& set, const std::string& name,
                                              const tls::Subject& subject, tls::Usage usage) {
  const SetRef owner = RefOf(set);
  const auto now = std::chrono::system_clock::now();
  SecretCertificateStore caSecret(client_, owner, CaSecretName(owner.name));
  SecretCertificateStore tlsSecret(client_, owner, TlsSecretName(owner.name));
  std::lock_guard<std::mutex> lock(tlsMu_);
  tls::CachingCertificateStore caStore(caSecret, certificates_, Key(set, owner.name) + "/ca/");
  tls::CachingCertificateStore store(tlsSecret, certificates_, Key(set, owner.name) + "/tls/");
  auto pair = tls::EnsureSetCertificate(caStore, store, owner.name, api::kCertificateAuthorityValidity, name, subject,
                                        usage, api::CertificateValidity(set.spec), now);
  if (!pair.ok()) return pair.status().WithContext("postgresreplicaset " + owner.name + ": spec.tls");
  return pair;
}

Status KubeRuntime::EnsureTls(const api::PostgresReplicaSet& set, executor::SetSecrets& out) {
  if (!set.spec.tls.enabled.value_or(true)) return Status::Ok();
  auto ca = Certificate(set, "ca", {}, tls::Usage::kServer);
  if (!ca.ok()) return ca.status();
  auto replication = Certificate(set, "replication", {reconcilers::kReplicationUser, {}, {}}, tls::Usage::kClient);
  if (!replication.ok()) return replication.status();
  out.tlsCA = ca->certPem;
  out.replicationCertificate = *replication;
  if (caDir_.empty()) return Status::Internal("no directory for the CA files of the operator's connections");
  out.tlsCAFile = caDir_ + "/" + set.metadata.namespace_ + "." + set.metadata.name + ".crt";
  if (auto current = ReadFile(out.tlsCAFile); !current.ok() || *current != ca->certPem) {
    PGRS_RETURN_IF_ERROR(WriteFileAtomic(out.tlsCAFile, ca->certPem, 0644));
  }
  return Status::Ok();
}

Result<tls::KeyPair> KubeRuntime::ServerCertificate(const api::PostgresReplicaSet& set,
                                                    const InstanceRecord& instance) {
  return Certificate(set, instance.name, InstanceSubject(RefOf(set), instance.name, instance.host),
                     tls::Usage::kServer);
}

Status KubeRuntime::ReadS3Secrets(const api::PostgresReplicaSet& set, executor::SetSecrets& out) {
  const std::string& ns = set.metadata.namespace_;
  const std::string object = "postgresreplicaset " + set.metadata.name + ": ";
  // The keys of one Secret the spec names at `field`, into the slots.
  auto read = [&](const std::string& field, const std::string& secret,
                  const std::vector<std::pair<std::string, std::string*>>& keys) -> Status {
    auto got = client_->Get(SecretResource(), ns, secret);
    if (!got.ok()) {
      if (got.status().code() == StatusCode::kNotFound) {
        return Status::Invalid(object + field + ": Secret " + ns + "/" + secret + " not found");
      }
      return got.status().WithContext("read secret " + secret);
    }
    for (const auto& [k, slot] : keys) {
      *slot = SecretValue(*got, k);
      if (slot->empty()) return Status::Invalid(object + field + ": Secret " + ns + "/" + secret + " has no key " + k);
    }
    return Status::Ok();
  };
  auto s3 = [&](const api::S3RepositorySpec& spec, const std::string& path, std::string* key, std::string* keySecret,
                std::string* ca) -> Status {
    PGRS_RETURN_IF_ERROR(read(path + ".credentialsSecret", spec.credentialsSecret,
                              {{"AWS_ACCESS_KEY_ID", key}, {"AWS_SECRET_ACCESS_KEY", keySecret}}));
    if (spec.caSecret.empty()) return Status::Ok();
    PGRS_RETURN_IF_ERROR(read(path + ".caSecret", spec.caSecret, {{"ca.crt", ca}}));
    if (ca->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return Status::Invalid(object + path + ".caSecret: Secret " + ns + "/" + spec.caSecret +
                             ": ca.crt is not a PEM certificate bundle");
    }
    return Status::Ok();
  };
  if (set.spec.backup && set.spec.backup->repository.s3) {
    PGRS_RETURN_IF_ERROR(
        s3(*set.spec.backup->repository.s3, "spec.backup.repository.s3", &out.s3Key, &out.s3KeySecret, &out.s3CA));
  }
  if (set.spec.backup && set.spec.backup->encryption.value_or(false)) {
    auto pass = SecretField(set, EncryptionSecretName(set.metadata.name), "passphrase");
    if (!pass.ok()) return pass.status().WithContext(object + "spec.backup.encryption");
    out.backupCipherPass = *pass;
  }
  // What the restore of a set that has never run reads.
  if (set.spec.bootstrap && set.spec.bootstrap->recovery && set.status.timeline == 0) {
    const api::RecoverySpec& r = *set.spec.bootstrap->recovery;
    if (r.repository.s3) {
      PGRS_RETURN_IF_ERROR(s3(*r.repository.s3, "spec.bootstrap.recovery.repository.s3", &out.restoreS3Key,
                              &out.restoreS3KeySecret, &out.restoreS3CA));
    }
    if (r.repository.encryption.value_or(false)) {
      // The source set's Secret unless another is named.
      const std::string secret = r.encryptionPassphraseSecret.empty() ? EncryptionSecretName(r.source)
                                                                      : r.encryptionPassphraseSecret;
      PGRS_RETURN_IF_ERROR(read("spec.bootstrap.recovery.encryptionPassphraseSecret", secret,
                                {{"passphrase", &out.restoreCipherPass}}));
    }
  }
  return Status::Ok();
}

Status KubeRuntime::CheckReferences(const api::PostgresReplicaSet& set) {
  // The claim a set that has never run is restored from.
  if (set.spec.bootstrap && set.spec.bootstrap->recovery && set.status.timeline == 0) {
    const std::string& source = set.spec.bootstrap->recovery->repository.volumeClaim;
    if (!source.empty()) {
      auto claim = client_->Get(PvcResource(), set.metadata.namespace_, source);
      if (claim.status().code() == StatusCode::kNotFound) {
        return Status::Invalid("postgresreplicaset " + set.metadata.name +
                               ": spec.bootstrap.recovery.repository.volumeClaim: PersistentVolumeClaim " +
                               set.metadata.namespace_ + "/" + source + " not found");
      }
      if (!claim.ok()) return claim.status().WithContext("read volume claim " + source);
    }
  }
  executor::SetSecrets secrets;
  PGRS_RETURN_IF_ERROR(ReadS3Secrets(set, secrets));
  if (!set.spec.backup) return Status::Ok();
  const api::BackupRepositorySpec& repository = set.spec.backup->repository;
  if (!repository.volumeClaim.empty()) {
    const std::string field = "postgresreplicaset " + set.metadata.name + ": spec.backup.repository.volumeClaim: ";
    auto claim = client_->Get(PvcResource(), set.metadata.namespace_, repository.volumeClaim);
    if (!claim.ok()) {
      if (claim.status().code() == StatusCode::kNotFound) {
        return Status::Invalid(field + "PersistentVolumeClaim " + set.metadata.namespace_ + "/" +
                               repository.volumeClaim + " not found (create it, ReadWriteMany)");
      }
      return claim.status().WithContext("read volume claim " + repository.volumeClaim);
    }
    bool many = false;
    if (claim->has_object_field("spec") && claim->at("spec").has_array_field("accessModes")) {
      for (const auto& m : claim->at("spec").at("accessModes").as_array()) {
        many = many || (m.is_string() && m.as_string() == "ReadWriteMany");
      }
    }
    if (!many && set.spec.instances.value_or(1) > 1) {
      return Status::Invalid(field + "PersistentVolumeClaim " + set.metadata.namespace_ + "/" +
                             repository.volumeClaim +
                             " must have accessModes ReadWriteMany: every instance Pod mounts it");
    }
  }
  return Status::Ok();
}

Result<executor::AgentEndpoint> KubeRuntime::Endpoint(const api::PostgresReplicaSet& set, const std::string& name) {
  auto pod = CachedPod(set, name);
  std::string ip = pod ? GetString(*pod, {"status", "podIP"}) : "";
  if (ip.empty()) return Status::Unavailable("pod " + name + " has no address yet");
  std::string token;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = tokens_.find(Key(set, set.metadata.name)); it != tokens_.end()) token = it->second;
  }
  if (token.empty()) {
    auto read = SecretField(set, AgentSecretName(set.metadata.name), "token");
    if (!read.ok()) return read.status();
    token = *read;
    std::lock_guard<std::mutex> lock(mu_);
    tokens_[Key(set, set.metadata.name)] = token;
  }
  bool v6 = ip.find(':') != std::string::npos;
  return executor::AgentEndpoint{"http://" + (v6 ? "[" + ip + "]" : ip) + ":" + std::to_string(kAgentPort), token,
                                 std::nullopt};
}

std::string KubeRuntime::LeaseLocation(const api::PostgresReplicaSet& set) {
  return "kube:" + set.metadata.namespace_ + "/" + PrimaryLeaseName(set.metadata.name);
}

Status KubeRuntime::FenceFromOutside(const api::PostgresReplicaSet& set, const std::string& name) {
  // The kubelet kills the containers of a Pod deleted without grace. The
  // Pod comes back (EnsureAgent) with an agent that waits for its config,
  // which keeps it fenced until it rejoins as a standby.
  auto pod = CachedPod(set, name);
  if (!pod) return Status::Ok();
  const std::string uid = UidOf(*pod);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = fencedPods_.find(Key(set, name));
    if (it != fencedPods_.end() && it->second.first != uid &&
        std::chrono::steady_clock::now() - it->second.second < kRememberFence) {
      return Status::Ok();  // made again since this fence began
    }
  }
  DeleteOptions options;
  options.gracePeriodSeconds = 0;
  Status st = client_->Delete(PodResource(), set.metadata.namespace_, name, options);
  if (!st.ok() && st.code() != StatusCode::kNotFound) return st.WithContext("delete pod " + name);
  std::lock_guard<std::mutex> lock(mu_);
  fencedPods_[Key(set, name)] = {uid, std::chrono::steady_clock::now()};
  return Status::Ok();
}

api::ConnectionStatus KubeRuntime::Connection(const api::PostgresReplicaSet& set,
                                              const std::vector<InstanceRecord>&) {
  // Applications connect through the Services, as the application role
  // (its password is in the NAME-app Secret).
  const std::string& n = set.metadata.name;
  const std::string& ns = set.metadata.namespace_;
  std::string tail = " port=" + std::to_string(kPostgresPort) + " user=app dbname=app";
  api::ConnectionStatus c;
  c.readWrite = "host=" + n + "-rw." + ns + ".svc" + tail;
  c.readOnly = "host=" + n + "-ro." + ns + ".svc" + tail;
  if (set.spec.tls.enabled.value_or(true)) {
    // The servers' certificates name the Services; the CA is in its Secret.
    c.readWrite += " sslmode=verify-full sslrootcert=ca.crt";
    c.readOnly += " sslmode=verify-full sslrootcert=ca.crt";
    c.caSecret = CaSecretName(n);
  }
  return c;
}

Status KubeRuntime::SyncRoleLabels(const api::PostgresReplicaSet& set, const api::ReplicaSetStatus& status) {
  // Take the label off the old primary first, so that -rw never selects two.
  std::vector<std::pair<std::string, std::string>> demote, promote;
  for (const auto& pod : cache_->ListOwned(PodResource(), set.metadata.uid)) {
    if (Terminating(pod)) continue;
    const std::string name = NameOf(pod);
    bool fenced = false;
    for (const auto& i : status.instances) {
      if (i.name == name) fenced = i.fenced;
    }
    std::string want = name == status.currentPrimary && !fenced && status.targetPrimary == status.currentPrimary
                           ? "primary" : "standby";
    std::string have = GetString(pod, {"metadata", "labels", kRoleLabel});
    if (have == want) continue;
    (want == "primary" ? promote : demote).push_back({name, want});
  }
  for (const auto* list : {&demote, &promote}) {
    for (const auto& [name, role] : *list) {
      Json patch = Json::object();
      patch["metadata"]["labels"][kRoleLabel] = Json::string(role);
      auto patched = client_->MergePatch(PodResource(), set.metadata.namespace_, name, patch);
      if (!patched.ok()) {
        if (patched.status().code() == StatusCode::kNotFound) continue;
        return patched.status().WithContext("label pod " + name);
      }
      spdlog::info("moved role label set={} pod={} role={}", set.metadata.name, name, role);
    }
  }
  return Status::Ok();
}

}  // namespace pgrs::kube
