#include "e2e/kubelet/security_context.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "operator/util/files.h"

namespace pgrs::e2e {

namespace {

using kube::Json;

// By number (linux/capability.h), without the CAP_ prefix.
constexpr const char* kCapabilityNames[] = {
    "CHOWN",           "DAC_OVERRIDE",    "DAC_READ_SEARCH", "FOWNER",          "FSETID",
    "KILL",            "SETGID",          "SETUID",          "SETPCAP",         "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE", "NET_BROADCAST",  "NET_ADMIN",       "NET_RAW",         "IPC_LOCK",
    "IPC_OWNER",       "SYS_MODULE",      "SYS_RAWIO",       "SYS_CHROOT",      "SYS_PTRACE",
    "SYS_PACCT",       "SYS_ADMIN",       "SYS_BOOT",        "SYS_NICE",        "SYS_RESOURCE",
    "SYS_TIME",        "SYS_TTY_CONFIG",  "MKNOD",           "LEASE",           "AUDIT_WRITE",
    "AUDIT_CONTROL",   "SETFCAP",         "MAC_OVERRIDE",    "MAC_ADMIN",       "SYSLOG",
    "WAKE_ALARM",      "BLOCK_SUSPEND",   "AUDIT_READ",      "PERFMON",         "BPF",
    "CHECKPOINT_RESTORE",
};
constexpr int kCapabilityCount = sizeof(kCapabilityNames) / sizeof(kCapabilityNames[0]);

// containerd's (and Docker's) default set for a container that is not
// privileged.
constexpr const char* kRuntimeDefaultCapabilities[] = {
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER",           "MKNOD",       "NET_RAW", "SETGID",
    "SETUID", "SETFCAP",     "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",    "AUDIT_WRITE",
};

uint64_t AllCapabilities() { return (uint64_t{1} << kCapabilityCount) - 1; }

const Json* SecurityField(const Json& object, const char* field) {
  const Json* context = kube::GetField(object, {"securityContext"});
  if (context == nullptr || !context->is_object() || !context->has_field(field)) return nullptr;
  const Json& value = context->at(field);
  return value.is_null() ? nullptr : &value;
}

// The container's value, else the Pod's.
const Json* Effective(const Json& podSpec, const Json& container, const char* field) {
  const Json* own = SecurityField(container, field);
  return own != nullptr ? own : SecurityField(podSpec, field);
}

std::optional<int64_t> Number(const Json* value) {
  if (value == nullptr || !value->is_number()) return std::nullopt;
  return value->as_number().to_int64();
}

template <typename Id>
Id Mapped(const std::map<Id, Id>& map, Id id) {
  auto it = map.find(id);
  return it != map.end() ? it->second : id;
}

std::vector<std::string> Names(const Json& capabilities, const char* field) {
  std::vector<std::string> out;
  if (!capabilities.is_object() || !capabilities.has_array_field(field)) return out;
  for (const auto& v : capabilities.at(field).as_array()) {
    if (v.is_string()) out.push_back(v.as_string());
  }
  return out;
}

bool IsAll(const std::string& name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return upper == "ALL";
}

// containerd's order: ALL in add starts from every capability, ALL in drop
// from none; then the single adds, then the single drops.
Result<uint64_t> BoundingSet(const Json* capabilities, std::string* reason) {
  uint64_t set = 0;
  for (const char* name : kRuntimeDefaultCapabilities) set |= uint64_t{1} << CapabilityNumber(name);
  if (capabilities == nullptr || !capabilities->is_object()) return set;
  auto add = Names(*capabilities, "add");
  auto drop = Names(*capabilities, "drop");
  if (std::any_of(add.begin(), add.end(), IsAll)) set = AllCapabilities();
  if (std::any_of(drop.begin(), drop.end(), IsAll)) set = 0;
  for (const auto* list : {&add, &drop}) {
    for (const auto& name : *list) {
      if (IsAll(name)) continue;
      int number = CapabilityNumber(name);
      if (number < 0) {
        *reason = "CreateContainerError";
        return Status::Invalid("securityContext.capabilities: unknown capability \"" + name + "\"");
      }
      if (list == &add) set |= uint64_t{1} << number;
      else set &= ~(uint64_t{1} << number);
    }
  }
  return set;
}

// kubernetes pkg/kubelet/util/format.Pod.
std::string FormatPod(const Json& pod) {
  return kube::NameOf(pod) + "_" + kube::NamespaceOf(pod) + "(" + kube::UidOf(pod) + ")";
}

}  // namespace

int CapabilityNumber(const std::string& name) {
  std::string upper;
  for (char c : name) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper.rfind("CAP_", 0) == 0) upper = upper.substr(4);
  for (int i = 0; i < kCapabilityCount; ++i) {
    if (upper == kCapabilityNames[i]) return i;
  }
  return -1;
}

Result<ContainerSecurity> ResolveContainerSecurity(const Json& pod, const Json& container, const IdMaps& maps,
                                                   std::string* reason) {
  static const Json kEmpty = Json::object();
  const Json* specField = kube::GetField(pod, {"spec"});
  const Json& spec = specField != nullptr ? *specField : kEmpty;
  ContainerSecurity out;
  const std::string containerName = kube::GetString(container, {"name"});

  // kubelet verifyRunAsNonRoot, on the spec's (image's) ids before mapping.
  auto runAsUser = Number(Effective(spec, container, "runAsUser"));
  const Json* nonRoot = Effective(spec, container, "runAsNonRoot");
  if (nonRoot != nullptr && nonRoot->is_boolean() && nonRoot->as_bool()) {
    if (runAsUser && *runAsUser == 0) {
      *reason = "CreateContainerConfigError";
      return Status::Invalid("container's runAsUser breaks non-root policy (pod: \"" + FormatPod(pod) +
                             "\", container: " + containerName + ")");
    }
    if (!runAsUser && maps.imageUser == 0) {
      *reason = "CreateContainerConfigError";
      return Status::Invalid("container has runAsNonRoot and image will run as root (pod: \"" + FormatPod(pod) +
                             "\", container: " + containerName + ")");
    }
  }
  out.uid = Mapped(maps.uid, runAsUser ? static_cast<uid_t>(*runAsUser) : maps.imageUser);

  // Without runAsGroup the runtime takes the primary group of the uid's
  // passwd entry (the image's /etc/passwd; here the host's), else 0.
  struct passwd pw;
  struct passwd* entry = nullptr;
  std::vector<char> buf(16384);
  getpwuid_r(out.uid, &pw, buf.data(), buf.size(), &entry);
  out.home = entry != nullptr && entry->pw_dir != nullptr && entry->pw_dir[0] != '\0' ? entry->pw_dir : "/";
  if (auto group = Number(Effective(spec, container, "runAsGroup"))) {
    out.gid = Mapped(maps.gid, static_cast<gid_t>(*group));
  } else {
    out.gid = entry != nullptr ? entry->pw_gid : 0;
  }

  out.groups.push_back(out.gid);
  if (auto fsGroup = Number(SecurityField(spec, "fsGroup"))) {
    out.fsGroup = Mapped(maps.gid, static_cast<gid_t>(*fsGroup));
    out.groups.push_back(*out.fsGroup);
  }
  if (const Json* supplemental = SecurityField(spec, "supplementalGroups"); supplemental && supplemental->is_array()) {
    for (const auto& g : supplemental->as_array()) {
      if (g.is_number()) out.groups.push_back(Mapped(maps.gid, static_cast<gid_t>(g.as_number().to_int64())));
    }
  }
  std::sort(out.groups.begin(), out.groups.end());
  out.groups.erase(std::unique(out.groups.begin(), out.groups.end()), out.groups.end());
  const Json* policy = SecurityField(spec, "fsGroupChangePolicy");
  out.fsGroupOnRootMismatch = policy != nullptr && policy->is_string() && policy->as_string() == "OnRootMismatch";

  // Container-only fields.
  auto bounding = BoundingSet(SecurityField(container, "capabilities"), reason);
  if (!bounding.ok()) return bounding.status();
  out.boundingSet = *bounding;
  const Json* escalation = SecurityField(container, "allowPrivilegeEscalation");
  out.noNewPrivs = escalation != nullptr && escalation->is_boolean() && !escalation->as_bool();
  const Json* readOnlyRoot = SecurityField(container, "readOnlyRootFilesystem");
  out.readOnlyRootFilesystem = readOnlyRoot != nullptr && readOnlyRoot->is_boolean() && readOnlyRoot->as_bool();
  return out;
}

PreparedSecurity PrepareContainerSecurity(const ContainerSecurity& security) {
  PreparedSecurity prepared;
  prepared.security = &security;
  auto last = ReadFile("/proc/sys/kernel/cap_last_cap");
  if (last.ok()) prepared.lastCapability = std::clamp(std::atoi(last->c_str()), 0, 63);
  return prepared;
}

int ApplyContainerSecurity(const PreparedSecurity& prepared, int deathSignal, pid_t parent) {
  const ContainerSecurity& s = *prepared.security;
  // Before setuid: dropping from the bounding set needs CAP_SETPCAP.
  for (int cap = 0; cap <= prepared.lastCapability; ++cap) {
    if ((s.boundingSet >> cap) & 1) continue;
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) return kStageCapabilityDrop;
  }
  if (setgroups(s.groups.size(), s.groups.data()) != 0) return kStageSetgroups;
  if (setgid(s.gid) != 0) return kStageSetgid;
  if (setuid(s.uid) != 0) return kStageSetuid;
  // A non-root uid has lost its permitted and effective sets with setuid;
  // root gets the bounding set back at exec. Neither inherits anything.
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return kStageCapset;
  for (auto& d : data) d.inheritable = 0;
  if (syscall(SYS_capset, &header, data) != 0) return kStageCapset;
  prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  if (s.noNewPrivs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return kStageNoNewPrivs;
  if (deathSignal != 0) {
    prctl(PR_SET_PDEATHSIG, deathSignal);
    if (getppid() != parent) _exit(127);
  }
  return 0;
}

const char* ChildStageName(int stage) {
  switch (stage) {
    case kStageCapabilityDrop: return "dropping capabilities from the bounding set";
    case kStageSetgroups: return "setgroups";
    case kStageSetgid: return "setgid";
    case kStageSetuid: return "setuid";
    case kStageCapset: return "clearing inheritable capabilities";
    case kStageNoNewPrivs: return "PR_SET_NO_NEW_PRIVS";
    default: return "";
  }
}

namespace {

constexpr mode_t kRwMask = 0660;
constexpr mode_t kRoMask = 0440;
constexpr mode_t kExecMask = 0110;

// volume_linux.go requiresPermissionChange.
bool RequiresPermissionChange(const std::string& dir, gid_t fsGroup, bool readOnly) {
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return true;
  if (st.st_gid != fsGroup) return true;
  if (!S_ISDIR(st.st_mode)) return true;
  mode_t wanted = (readOnly ? kRoMask : kRwMask) | kExecMask;
  return (st.st_mode & wanted) != wanted || (st.st_mode & S_ISGID) == 0;
}

// volume_linux.go changeFilePermission; `st` is from before the chown (which
// clears a file's setuid / setgid bits: chmod puts them back).
void ChangeFilePermission(const std::string& path, const struct stat& st, gid_t fsGroup, bool readOnly) {
  if (lchown(path.c_str(), static_cast<uid_t>(-1), fsGroup) != 0) {
    spdlog::warn("lchown failed path={} error=\"{}\"", path, std::strerror(errno));
  }
  if (S_ISLNK(st.st_mode)) return;  // chmod would change the target's mode
  mode_t mask = readOnly ? kRoMask : kRwMask;
  if (S_ISDIR(st.st_mode)) mask |= S_ISGID | kExecMask;
  if (chmod(path.c_str(), (st.st_mode & 07777) | mask) != 0) {
    spdlog::warn("chmod failed path={} error=\"{}\"", path, std::strerror(errno));
  }
}

// Children first, the directory itself last (walkDeep).
void Walk(const std::string& path, const struct stat& st, gid_t fsGroup, bool readOnly) {
  if (S_ISDIR(st.st_mode)) {
    for (const auto& name : ListDirectory(path)) {
      std::string child = path + "/" + name;
      struct stat cst;
      if (lstat(child.c_str(), &cst) != 0) continue;
      Walk(child, cst, fsGroup, readOnly);
    }
  }
  ChangeFilePermission(path, st, fsGroup, readOnly);
}

}  // namespace

Result<bool> SetVolumeOwnership(const std::string& dir, gid_t fsGroup, bool readOnly, bool onRootMismatch) {
  if (onRootMismatch && !RequiresPermissionChange(dir, fsGroup, readOnly)) return false;
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return Status::Unavailable("volume " + dir + ": " + std::strerror(errno));
  Walk(dir, st, fsGroup, readOnly);
  return true;
}

}  // namespace pgrs::e2e
