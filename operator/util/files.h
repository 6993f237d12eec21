// Small file-system helpers. Writes that others read concurrently are
// atomic (temp file + rename), so a reader sees the old or the new text.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "operator/util/status.h"

namespace pgrs {

Result<std::string> ReadFile(const std::string& path);
// Writes `content` to `path` through a temp file and rename; `mode` applies
// to the new file. fsyncs the file before the rename.
Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode = 0644);
bool PathExists(const std::string& path);
// Whether `path` exists with exactly these permission bits (07777).
bool HasMode(const std::string& path, mode_t mode);
bool IsDirectory(const std::string& path);
Status MakeDirs(const std::string& path, mode_t mode = 0755);
Status RemoveTree(const std::string& path);
// Names (not paths) of the entries of a directory, sorted; empty if absent.
std::vector<std::string> ListDirectory(const std::string& path);
// chown without following links; no-op when uid is -1.
Status ChownPath(const std::string& path, uid_t uid, gid_t gid);
Status ChownTree(const std::string& path, uid_t uid, gid_t gid);
std::string AbsolutePath(const std::string& path);
std::string JoinPath(const std::string& a, const std::string& b);

}  // namespace pgrs
