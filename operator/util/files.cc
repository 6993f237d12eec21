#include "operator/util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <algorithm>

namespace pgrs {

namespace fs = std::filesystem;

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound(path + ": no such file");
    return Status::Unavailable(path + ": " + std::strerror(errno));
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

Status WriteFileAtomic(const std::string& path, const std::string& content, mode_t mode) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Unavailable(tmp + ": " + std::strerror(errno));
  const char* data = content.data();
  size_t left = content.size();
  while (left > 0) {
    ssize_t n = ::write(fd, data, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::Unavailable(tmp + ": " + std::strerror(err));
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);  // the umask may have narrowed it
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::Unavailable(path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

bool IsDirectory(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool HasMode(const std::string& path, mode_t mode) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && (st.st_mode & 07777) == mode;
}

Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return Status::Unavailable(path + ": " + ec.message());
  ::chmod(path.c_str(), mode);
  return Status::Ok();
}

Status RemoveTree(const std::string& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return Status::Unavailable(path + ": " + ec.message());
  return Status::Ok();
}

std::vector<std::string> ListDirectory(const std::string& path) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

Status ChownPath(const std::string& path, uid_t uid, gid_t gid) {
  if (uid == static_cast<uid_t>(-1)) return Status::Ok();
  if (::lchown(path.c_str(), uid, gid) != 0) return Status::Unavailable(path + ": chown: " + std::strerror(errno));
  return Status::Ok();
}

Status ChownTree(const std::string& path, uid_t uid, gid_t gid) {
  if (uid == static_cast<uid_t>(-1)) return Status::Ok();
  PGRS_RETURN_IF_ERROR(ChownPath(path, uid, gid));
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    PGRS_RETURN_IF_ERROR(ChownPath(it->path().string(), uid, gid));
  }
  return Status::Ok();
}

std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  auto abs = fs::absolute(path, ec);
  if (ec) return path;
  return abs.lexically_normal().string();
}

std::string JoinPath(const std::string& a, const std::string& b) { return (fs::path(a) / b).string(); }

}  // namespace pgrs
