// What a container runtime makes of a Pod's and a container's
// securityContext, for the process kubelet (test code, never linked into
// pgrs): the user, groups, capabilities and no_new_privs a container's
// processes run with, and the ownership a volume gets from `fsGroup`.
//
// ResolveContainerSecurity() is a pure function of the Pod spec and the id
// maps; ApplyContainerSecurity() is what the forked child does with the
// result before exec (async-signal-safe only); SetVolumeOwnership() is the
// kubelet's pkg/volume/volume_linux.go.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "operator/kube/client.h"
#include "operator/util/status.h"

namespace pgrs::e2e {

// There are no images: the ids of the Pod spec are rewritten to host ids
// (999 -> the host's postgres uid), and an image's USER is `imageUser`.
struct IdMaps {
  std::map<uid_t, uid_t> uid;  // runAsUser (and imageUser)
  std::map<gid_t, gid_t> gid;  // runAsGroup, fsGroup, supplementalGroups
  uid_t imageUser = 0;
};

// How the container's processes run; every id is a host id.
struct ContainerSecurity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // setgroups(): the gid, fsGroup, supplementalGroups (sorted, unique)
  std::string home;           // the passwd entry's home of `uid`, else "/"
  uint64_t boundingSet = 0;   // bit n = capability n is kept
  bool noNewPrivs = false;    // allowPrivilegeEscalation: false
  bool readOnlyRootFilesystem = false;
  std::optional<gid_t> fsGroup;
  bool fsGroupOnRootMismatch = false;  // fsGroupChangePolicy: OnRootMismatch (default Always)
};

// The effective securityContext of `container` (its own fields override the
// Pod's). Fails, with the waiting reason in `reason`, when the container
// must not start: runAsNonRoot with uid 0 (CreateContainerConfigError, the
// real kubelet's message), an unknown capability (CreateContainerError).
Result<ContainerSecurity> ResolveContainerSecurity(const kube::Json& pod, const kube::Json& container,
                                                   const IdMaps& maps, std::string* reason);

// The capability number of "NET_RAW" / "CAP_NET_RAW" (any case), or -1.
int CapabilityNumber(const std::string& name);

// What ApplyContainerSecurity() needs, made before fork.
struct PreparedSecurity {
  const ContainerSecurity* security = nullptr;
  int lastCapability = 40;  // /proc/sys/kernel/cap_last_cap
};
PreparedSecurity PrepareContainerSecurity(const ContainerSecurity& security);

// In the forked child, after its mounts and before exec: drops the
// capabilities outside the bounding set, sets the groups, gid and uid,
// clears the inheritable and ambient sets, sets no_new_privs, and arms the
// parent-death signal again (a change of credentials clears it). Returns 0,
// or a ChildStage with errno set. Async-signal-safe.
enum ChildStage {
  kStageCapabilityDrop = 20,
  kStageSetgroups,
  kStageSetgid,
  kStageSetuid,
  kStageCapset,
  kStageNoNewPrivs,
};
int ApplyContainerSecurity(const PreparedSecurity& prepared, int deathSignal, pid_t parent);
const char* ChildStageName(int stage);  // "" for stages not defined here

// kubernetes pkg/volume/volume_linux.go SetVolumeOwnership: every file and
// directory under `dir` (symlinks not followed) gets group `fsGroup` and
// mode |= 0660 (0440 `readOnly`), directories also |= 0110 and setgid.
// With `onRootMismatch` nothing is done when `dir` already has gid fsGroup,
// permission bits covering 0770 (0550 readOnly) and setgid. Returns whether
// the walk ran. Errors of single files are logged and skipped, as there.
Result<bool> SetVolumeOwnership(const std::string& dir, gid_t fsGroup, bool readOnly, bool onRootMismatch);

}  // namespace pgrs::e2e
