#include "operator/kube/objects.h"

#include <cpprest/asyncrt_utils.h>

namespace pgrs::kube {

namespace {

Json Str(const std::string& s) { return Json::string(s); }

Json Array(std::vector<Json> items) { return Json::array(std::move(items)); }

Json Obj(std::initializer_list<std::pair<const char*, Json>> fields) {
  Json o = Json::object();
  for (const auto& [k, v] : fields) o[k] = v;
  return o;
}

Json EnvFrom(const std::string& name, const std::string& fieldPath) {
  return Obj({{"name", Str(name)}, {"valueFrom", Obj({{"fieldRef", Obj({{"fieldPath", Str(fieldPath)}})}})}});
}

Json SetSelector(const std::string& set) { return Obj({{kSetLabel, Str(set)}}); }

}  // namespace

Resource PodResource() { return {"", "v1", "pods", "Pod", true}; }
Resource PvcResource() { return {"", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true}; }
Resource ServiceResource() { return {"", "v1", "services", "Service", true}; }
Resource SecretResource() { return {"", "v1", "secrets", "Secret", true}; }
Resource PdbResource() { return {"policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true}; }
Resource ServiceAccountResource() { return {"", "v1", "serviceaccounts", "ServiceAccount", true}; }
Resource RoleResource() { return {"rbac.authorization.k8s.io", "v1", "roles", "Role", true}; }
Resource RoleBindingResource() { return {"rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true}; }

SetRef SetRef::Of(const Json& object) { return {NamespaceOf(object), NameOf(object), UidOf(object)}; }

std::string SuperuserSecretName(const std::string& set) { return set + "-superuser"; }
std::string AppSecretName(const std::string& set) { return set + "-app"; }
std::string ReplicationSecretName(const std::string& set) { return set + "-replication"; }
std::string AgentSecretName(const std::string& set) { return set + "-agent"; }
std::string PrimaryLeaseName(const std::string& set) { return set + "-primary"; }
std::string InstanceServiceAccountName(const std::string& set) { return set + "-instance"; }

Json CommonLabels(const std::string& set) {
  return Obj({{"app.kubernetes.io/name", Str("postgres")},
              {"app.kubernetes.io/instance", Str(set)},
              {"app.kubernetes.io/managed-by", Str("pgrs")},
              {kSetLabel, Str(set)}});
}
std::string EncryptionSecretName(const std::string& set) { return set + "-backup-encryption"; }

std::string PodSelector(const std::string& set) { return std::string(kSetLabel) + "=" + set; }

Json ChildMetadata(const SetRef& owner, const std::string& name) {
  Json ref = Obj({{"apiVersion", Str(api::kApiVersion)},
                  {"kind", Str(api::kKind)},
                  {"name", Str(owner.name)},
                  {"uid", Str(owner.uid)},
                  {"controller", Json::boolean(true)},
                  {"blockOwnerDeletion", Json::boolean(true)}});
  return Obj({{"name", Str(name)},
              {"namespace", Str(owner.ns)},
              {"labels", CommonLabels(owner.name)},
              {"ownerReferences", Array({ref})}});
}

Json BuildPvc(const SetRef& owner, const api::ReplicaSetSpec& spec, const std::string& instance) {
  Json pvc = Obj({{"apiVersion", Str("v1")}, {"kind", Str("PersistentVolumeClaim")}});
  pvc["metadata"] = ChildMetadata(owner, instance);
  pvc["metadata"]["labels"][kInstanceLabel] = Str(instance);
  Json pvcSpec = Obj({{"accessModes", Array({Str("ReadWriteOnce")})},
                      {"resources", Obj({{"requests", Obj({{"storage", Str(spec.storage.size.empty()
                                                                                ? "1Gi"
                                                                                : spec.storage.size)}})}})}});
  if (!spec.storage.storageClassName.empty()) pvcSpec["storageClassName"] = Str(spec.storage.storageClassName);
  pvc["spec"] = pvcSpec;
  return pvc;
}

Json BuildPod(const SetRef& owner, const api::ReplicaSetSpec& spec, const std::string& instance,
              const std::string& role, const InstancePodOptions& options) {
  Json pod = Obj({{"apiVersion", Str("v1")}, {"kind", Str("Pod")}});
  pod["metadata"] = ChildMetadata(owner, instance);
  pod["metadata"]["labels"][kInstanceLabel] = Str(instance);
  pod["metadata"]["labels"][kRoleLabel] = Str(role);

  std::vector<Json> args;
  for (const char* a : {"instance", "--name", "$(POD_NAME)", "--instance-dir", "/var/lib/pgrs/instance", "--listen",
                        "$(POD_IP):8000", "--postgres-listen", "$(POD_IP)", "--token-file", "/etc/pgrs/agent/token",
                        "--log-format", "json"}) {
    args.push_back(Str(a));
  }
  args.push_back(Str("--log-level"));
  args.push_back(Str(options.logLevel));
  // Deleted, evicted or drained, a primary is handed over to a standby
  // before its PostgreSQL stops; the rest of the grace period is for the
  // fast shutdown.
  args.push_back(Str("--shutdown-handover"));
  args.push_back(Str(std::to_string(options.shutdownHandoverSeconds) + "s"));
  auto probe = [](const char* path, int period, int failures) {
    return Obj({{"httpGet", Obj({{"path", Str(path)}, {"port", Json::number(kAgentPort)}})},
                {"periodSeconds", Json::number(period)},
                {"timeoutSeconds", Json::number(1)},
                {"failureThreshold", Json::number(failures)}});
  };
  Json container = Obj({
      {"name", Str("postgres")},
      {"image", Str(options.image)},
      {"imagePullPolicy", Str(options.imagePullPolicy)},
      {"command", Array({Str(options.command)})},
      {"args", Array(args)},
      {"env", Array({EnvFrom("POD_NAME", "metadata.name"), EnvFrom("POD_NAMESPACE", "metadata.namespace"),
                     EnvFrom("POD_IP", "status.podIP")})},
      {"ports", Array({Obj({{"name", Str("postgresql")}, {"containerPort", Json::number(kPostgresPort)}}),
                       Obj({{"name", Str("agent")}, {"containerPort", Json::number(kAgentPort)}})})},
      {"readinessProbe", probe("/readyz", 1, 3)},
      {"livenessProbe", probe("/healthz", 10, 6)},
      {"securityContext", Obj({{"allowPrivilegeEscalation", Json::boolean(false)},
                               {"capabilities", Obj({{"drop", Array({Str("ALL")})}})}})},
      {"volumeMounts", Array({Obj({{"name", Str("data")}, {"mountPath", Str("/var/lib/pgrs")}}),
                              Obj({{"name", Str("agent-token")},
                                   {"mountPath", Str("/etc/pgrs/agent")},
                                   {"readOnly", Json::boolean(true)}})})},
  });
  Json affinity = Obj({{"podAntiAffinity",
                        Obj({{"preferredDuringSchedulingIgnoredDuringExecution",
                              Array({Obj({{"weight", Json::number(100)},
                                          {"podAffinityTerm",
                                           Obj({{"topologyKey", Str("kubernetes.io/hostname")},
                                                {"labelSelector",
                                                 Obj({{"matchLabels", SetSelector(owner.name)}})}})}})})}})}});
  pod["spec"] = Obj({
      {"serviceAccountName", Str(InstanceServiceAccountName(owner.name))},
      {"hostname", Str(instance)},
      {"subdomain", Str(owner.name)},
      {"restartPolicy", Str("Always")},
      {"terminationGracePeriodSeconds", Json::number(kTerminationGraceSeconds)},
      // fsGroup makes the volume the group's at its first mount; after that
      // (OnRootMismatch) the kubelet leaves it alone: applied at every mount,
      // it would make the data directory 2770, which PostgreSQL refuses.
      {"securityContext", Obj({{"runAsNonRoot", Json::boolean(true)},
                               {"runAsUser", Json::number(999)},
                               {"runAsGroup", Json::number(999)},
                               {"fsGroup", Json::number(999)},
                               {"fsGroupChangePolicy", Str("OnRootMismatch")},
                               {"seccompProfile", Obj({{"type", Str("RuntimeDefault")}})}})},
      {"affinity", affinity},
      {"containers", Array({container})},
      {"volumes", Array({Obj({{"name", Str("data")},
                              {"persistentVolumeClaim", Obj({{"claimName", Str(instance)}})}}),
                         Obj({{"name", Str("agent-token")},
                              {"secret", Obj({{"secretName", Str(AgentSecretName(owner.name))},
                                              {"defaultMode", Json::number(0400)}})}})})},
  });
  // The POSIX repository every instance shares: the primary archives into
  // it, backups go there, standbys and restores read from it.
  Json& mounts = pod["spec"]["containers"][0]["volumeMounts"];
  Json& volumes = pod["spec"]["volumes"];
  auto mount = [&](const char* volume, const char* path) {
    mounts[mounts.size()] = Obj({{"name", Str(volume)}, {"mountPath", Str(path)}});
  };
  auto claim = [&](const char* volume, const std::string& name) {
    volumes[volumes.size()] = Obj({{"name", Str(volume)}, {"persistentVolumeClaim", Obj({{"claimName", Str(name)}})}});
  };
  const std::string own = spec.backup ? spec.backup->repository.volumeClaim : "";
  if (!own.empty()) {
    mount("repository", api::kRepositoryMountPath);
    claim("repository", own);
  }
  // The repository a new set is restored from, read-only in spirit (only
  // restore and restore_command read it); the set's own claim mounted a
  // second time when it is the same one.
  const std::string source =
      spec.bootstrap && spec.bootstrap->recovery ? spec.bootstrap->recovery->repository.volumeClaim : "";
  if (!source.empty()) {
    if (source == own) {
      mount("repository", api::kRestoreRepositoryMountPath);
    } else {
      mount("restore-repository", api::kRestoreRepositoryMountPath);
      claim("restore-repository", source);
    }
  }
  return pod;
}

std::string PodRepositoryClaim(const Json& pod) {
  if (!pod.has_object_field("spec") || !pod.at("spec").has_array_field("volumes")) return "";
  for (const auto& v : pod.at("spec").at("volumes").as_array()) {
    if (GetString(v, {"name"}) == "repository") return GetString(v, {"persistentVolumeClaim", "claimName"});
  }
  return "";
}

std::string ChooseOutdatedPod(const std::vector<PodToRoll>& pods, const std::string& wantedClaim,
                              const std::string& primary) {
  std::string standby, primaryPod;
  for (const auto& p : pods) {
    // Another Pod on its way: one change at a time.
    if (!p.exists || p.terminating || !p.ready) return "";
    if (p.repositoryClaim == wantedClaim) continue;
    if (p.name == primary) primaryPod = p.name;
    else if (standby.empty()) standby = p.name;
  }
  return standby.empty() ? primaryPod : standby;
}

std::vector<Json> BuildServices(const SetRef& owner) {
  auto port = Array({Obj({{"name", Str("postgresql")},
                          {"port", Json::number(kPostgresPort)},
                          {"targetPort", Json::number(kPostgresPort)},
                          {"protocol", Str("TCP")}})});
  auto service = [&](const std::string& name, Json selector, bool headless) {
    Json s = Obj({{"apiVersion", Str("v1")}, {"kind", Str("Service")}});
    s["metadata"] = ChildMetadata(owner, name);
    s["spec"] = Obj({{"selector", selector}, {"ports", port}});
    if (headless) {
      s["spec"]["clusterIP"] = Str("None");
      s["spec"]["publishNotReadyAddresses"] = Json::boolean(true);
    } else {
      s["spec"]["type"] = Str("ClusterIP");
    }
    return s;
  };
  auto roleSelector = [&](const char* role) {
    Json sel = SetSelector(owner.name);
    sel[kRoleLabel] = Str(role);
    return sel;
  };
  return {service(owner.name, SetSelector(owner.name), true),
          service(owner.name + "-rw", roleSelector("primary"), false),
          service(owner.name + "-ro", roleSelector("standby"), false),
          service(owner.name + "-r", SetSelector(owner.name), false)};
}

Json BuildPdb(const SetRef& owner) {
  Json pdb = Obj({{"apiVersion", Str("policy/v1")}, {"kind", Str("PodDisruptionBudget")}});
  pdb["metadata"] = ChildMetadata(owner, owner.name);
  pdb["spec"] = Obj({{"maxUnavailable", Json::number(1)},
                     {"selector", Obj({{"matchLabels", SetSelector(owner.name)}})}});
  return pdb;
}

std::string Base64(const std::string& bytes) {
  return utility::conversions::to_base64(std::vector<unsigned char>(bytes.begin(), bytes.end()));
}

std::string SecretValue(const Json& secret, const std::string& key) {
  std::string encoded = GetString(secret, {"data", key.c_str()});
  if (encoded.empty()) return "";
  try {
    auto bytes = utility::conversions::from_base64(encoded);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception&) {
    return "";
  }
}

Json BuildSecret(const SetRef& owner, const std::string& name, const std::string& type,
                 const std::vector<std::pair<std::string, std::string>>& data) {
  Json secret = Obj({{"apiVersion", Str("v1")}, {"kind", Str("Secret")}, {"type", Str(type)}});
  secret["metadata"] = ChildMetadata(owner, name);
  Json d = Json::object();
  for (const auto& [k, v] : data) d[k] = Str(Base64(v));
  secret["data"] = d;
  return secret;
}

Json BuildServiceAccount(const SetRef& owner) {
  Json sa = Obj({{"apiVersion", Str("v1")}, {"kind", Str("ServiceAccount")}});
  sa["metadata"] = ChildMetadata(owner, InstanceServiceAccountName(owner.name));
  return sa;
}

Json BuildRole(const SetRef& owner) {
  Json role = Obj({{"apiVersion", Str("rbac.authorization.k8s.io/v1")}, {"kind", Str("Role")}});
  role["metadata"] = ChildMetadata(owner, InstanceServiceAccountName(owner.name));
  // The agents renew the primary lease; they may touch nothing else.
  role["rules"] = Array({Obj({{"apiGroups", Array({Str("coordination.k8s.io")})},
                              {"resources", Array({Str("leases")})},
                              {"resourceNames", Array({Str(PrimaryLeaseName(owner.name))})},
                              {"verbs", Array({Str("get"), Str("update")})}})});
  return role;
}

Json BuildRoleBinding(const SetRef& owner) {
  Json binding = Obj({{"apiVersion", Str("rbac.authorization.k8s.io/v1")}, {"kind", Str("RoleBinding")}});
  const std::string name = InstanceServiceAccountName(owner.name);
  binding["metadata"] = ChildMetadata(owner, name);
  binding["roleRef"] = Obj({{"apiGroup", Str("rbac.authorization.k8s.io")}, {"kind", Str("Role")}, {"name", Str(name)}});
  binding["subjects"] = Array({Obj({{"kind", Str("ServiceAccount")}, {"name", Str(name)}, {"namespace", Str(owner.ns)}})});
  return binding;
}

}  // namespace pgrs::kube
