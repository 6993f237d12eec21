// The modes PostgreSQL demands of its directories. PostgreSQL refuses to
// start on a data directory its group may write or others may enter
// ("should be u=rwx (0700) or u=rwx,g=rx (0750)"). A kubelet applying a
// Pod's fsGroup makes every directory of a volume group-writable and setgid
// (2770) at mount time, so a Pod recreated on its volume would never start
// again: the agent puts the modes right before every start of PostgreSQL.
// Ownership is left as it is.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "operator/util/status.h"

namespace pgrs::agent {

struct ModeCorrection {
  std::string path;
  mode_t before = 0;  // permission bits, setgid included
  mode_t after = 0;
};

// The data directory, the directory pg_wal links to (if it is a link) and
// every tablespace directory pg_tblspc links to: each one its group may
// write, or others may use, is made 0700; a valid 0700 or 0750 (setgid or
// not) is left alone. Returns what was changed; an error names the path.
Result<std::vector<ModeCorrection>> EnsurePostgresDirectoryModes(const std::string& dataDir);

}  // namespace pgrs::agent
