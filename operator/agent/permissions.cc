#include "operator/agent/permissions.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include "operator/util/files.h"

namespace pgrs::agent {

namespace {

// What PostgreSQL checks (PG_MODE_MASK_GROUP): no group write, nothing for
// others. setgid, which an fsGroup volume passes on, is harmless.
constexpr mode_t kForbidden = S_IWGRP | S_IRWXO;

Status Correct(const std::string& path, std::vector<ModeCorrection>* out) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::Unavailable("stat " + path + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return Status::Invalid(path + " is not a directory");
  const mode_t before = st.st_mode & 07777;
  if ((before & kForbidden) == 0) return Status::Ok();
  const mode_t after = 0700;
  if (::chmod(path.c_str(), after) != 0) {
    return Status::Unavailable("chmod " + path + " to 0700: " + std::strerror(errno) +
                               " (PostgreSQL refuses a directory its group may write)");
  }
  out->push_back({path, before, after});
  return Status::Ok();
}

// Where a symbolic link points, or "" when `path` is no link.
std::string LinkTarget(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return "";
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return "";
  return resolved;
}

}  // namespace

Result<std::vector<ModeCorrection>> EnsurePostgresDirectoryModes(const std::string& dataDir) {
  std::vector<ModeCorrection> corrected;
  PGRS_RETURN_IF_ERROR(Correct(dataDir, &corrected));
  if (std::string wal = LinkTarget(JoinPath(dataDir, "pg_wal")); !wal.empty()) {
    PGRS_RETURN_IF_ERROR(Correct(wal, &corrected));
  }
  const std::string tablespaces = JoinPath(dataDir, "pg_tblspc");
  for (const auto& oid : ListDirectory(tablespaces)) {
    if (std::string target = LinkTarget(JoinPath(tablespaces, oid)); !target.empty()) {
      PGRS_RETURN_IF_ERROR(Correct(target, &corrected));
    }
  }
  return corrected;
}

}  // namespace pgrs::agent
