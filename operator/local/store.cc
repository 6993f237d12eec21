#include "operator/local/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <cpprest/json.h>

#include "operator/util/files.h"
#include "operator/util/random.h"
#include "reconcilers/replicaset.h"

namespace pgrs::local {

namespace {

// Serializes concurrent `apply` runs on one state directory.
class FileLock {
 public:
  explicit FileLock(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ >= 0) ::flock(fd_, LOCK_EX);
  }
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  int fd_ = -1;
};

std::string SpecJson(const api::PostgresReplicaSet& object) {
  api::PostgresReplicaSet copy;
  copy.metadata.name = object.metadata.name;
  copy.spec = object.spec;
  return api::EncodeJson(copy);
}

}  // namespace

LocalStore::LocalStore(std::string stateDir) : stateDir_(AbsolutePath(stateDir)) {}

std::string LocalStore::SetDir(const std::string& name) const { return stateDir_ + "/sets/" + name; }

Result<api::PostgresReplicaSet> LocalStore::Apply(const api::PostgresReplicaSet& object, std::string* outcome) {
  PGRS_RETURN_IF_ERROR(MakeDirs(stateDir_ + "/sets", 0755));
  FileLock lock(stateDir_ + "/apply.lock");
  const std::string& name = object.metadata.name;
  api::PostgresReplicaSet stored = object;
  stored.status = {};
  auto existing = Get(name);
  if (existing.ok()) {
    if (!existing->metadata.deletionTimestamp.empty()) {
      return Status::Conflict("postgresreplicaset " + name + " is being deleted; apply again once it is gone");
    }
    if (auto errors = api::ValidateUpdate(*existing, stored); !errors.empty()) {
      return Status::Invalid("postgresreplicaset " + name + ": " + errors[0].ToString());
    }
    stored.metadata.uid = existing->metadata.uid;
    stored.metadata.creationTimestamp = existing->metadata.creationTimestamp;
    stored.metadata.generation = existing->metadata.generation;
    bool specChanged = SpecJson(*existing) != SpecJson(stored);
    if (specChanged) stored.metadata.generation++;
    bool metaChanged = existing->metadata.labels != stored.metadata.labels ||
                       existing->metadata.annotations != stored.metadata.annotations;
    *outcome = specChanged || metaChanged ? "configured" : "unchanged";
    if (!specChanged && !metaChanged) return *existing;
  } else if (existing.status().code() == StatusCode::kNotFound) {
    stored.metadata.uid = RandomHex(16);
    stored.metadata.creationTimestamp = api::FormatTime(std::chrono::system_clock::now());
    stored.metadata.generation = 1;
    *outcome = "created";
  } else {
    return existing.status();
  }
  std::vector<api::PostgresReplicaSet> others;
  for (const auto& other : ListNames()) {
    if (other == name) continue;
    if (auto set = Get(other); set.ok()) others.push_back(*set);
  }
  if (auto overlap = reconcilers::FindPortOverlap(stored, others)) return Status::Invalid(*overlap);
  PGRS_RETURN_IF_ERROR(MakeDirs(SetDir(name), 0755));
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(SetDir(name) + "/object.json", api::EncodeJson(stored, true) + "\n", 0644));
  return stored;
}

Result<api::PostgresReplicaSet> LocalStore::Get(const std::string& name) const {
  auto text = ReadFile(SetDir(name) + "/object.json");
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) {
      return Status::NotFound("postgresreplicaset " + name + " not found in " + stateDir_);
    }
    return text.status();
  }
  auto decoded = api::DecodeReplicaSet(*text);
  if (!decoded.object) {
    std::string message = "postgresreplicaset " + name + ": stored object is unreadable";
    for (const auto& e : decoded.errors) message += "; " + e.ToString();
    return Status::Internal(message);
  }
  api::PostgresReplicaSet object = *decoded.object;
  api::ApplyDefaults(object.spec);
  if (auto status = ReadFile(SetDir(name) + "/status.json"); status.ok()) {
    auto decodedStatus = api::DecodeStatusJson(*status);
    if (decodedStatus.ok()) object.status = *decodedStatus;
  }
  return object;
}

std::vector<std::string> LocalStore::ListNames() const {
  std::vector<std::string> names;
  for (const auto& entry : ListDirectory(stateDir_ + "/sets")) {
    if (PathExists(SetDir(entry) + "/object.json")) names.push_back(entry);
  }
  return names;
}

Status LocalStore::WriteStatus(const std::string& name, const api::ReplicaSetStatus& status) {
  std::string path = SetDir(name) + "/status.json";
  std::string text = api::EncodeStatusJson(status) + "\n";
  if (auto current = ReadFile(path); current.ok() && *current == text) return Status::Ok();
  if (!IsDirectory(SetDir(name))) return Status::NotFound("postgresreplicaset " + name + " was removed");
  return WriteFileAtomic(path, text, 0644);
}

Status LocalStore::RequestDelete(const std::string& name) {
  FileLock lock(stateDir_ + "/apply.lock");
  auto object = Get(name);
  if (!object.ok()) return object.status();
  if (!object->metadata.deletionTimestamp.empty()) return Status::Ok();
  object->metadata.deletionTimestamp = api::FormatTime(std::chrono::system_clock::now());
  object->status = {};
  return WriteFileAtomic(SetDir(name) + "/object.json", api::EncodeJson(*object, true) + "\n", 0644);
}

Status LocalStore::Remove(const std::string& name) { return RemoveTree(SetDir(name)); }

Status LocalStore::WriteControlPlane(const reconcilers::ControlPlaneRecord& record) {
  web::json::value v = web::json::value::object();
  v["pid"] = web::json::value::number(record.pid);
  v["startedTime"] = web::json::value::string(record.startedTime);
  v["lastPassTime"] = web::json::value::string(record.lastPassTime);
  v["stoppedTime"] = web::json::value::string(record.stoppedTime);
  return WriteFileAtomic(stateDir_ + "/control-plane.json", v.serialize() + "\n", 0644);
}

std::optional<reconcilers::ControlPlaneRecord> LocalStore::ReadControlPlane() const {
  auto text = ReadFile(stateDir_ + "/control-plane.json");
  if (!text.ok()) return std::nullopt;
  try {
    auto v = web::json::value::parse(*text);
    reconcilers::ControlPlaneRecord r;
    r.pid = v.at("pid").as_number().to_int64();
    r.startedTime = v.at("startedTime").as_string();
    r.lastPassTime = v.at("lastPassTime").as_string();
    r.stoppedTime = v.at("stoppedTime").as_string();
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

reconcilers::ControlPlaneState LocalStore::AssessControlPlane() const {
  reconcilers::ControlPlaneFacts facts;
  facts.lockHolder = RunLock::Holder(stateDir_);
  facts.lockHeld = facts.lockHolder != 0;
  facts.record = ReadControlPlane();
  return reconcilers::AssessControlPlane(facts, std::chrono::system_clock::now());
}

namespace {

struct flock WholeFile(short type) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = 0;
  lock.l_len = 0;
  return lock;
}

}  // namespace

Result<RunLock> RunLock::Acquire(const std::string& stateDir) {
  PGRS_RETURN_IF_ERROR(MakeDirs(stateDir, 0755));
  std::string path = stateDir + "/run.lock";
  // Readable by all: `get` and `wait` probe it (F_GETLK needs no write access).
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Status::Unavailable(path + ": " + std::strerror(errno));
  struct flock lock = WholeFile(F_WRLCK);
  if (::fcntl(fd, F_SETLK, &lock) != 0) {
    ::close(fd);
    return Status::Conflict("another `pgrs local run` is already running for " + stateDir);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  (void)!::ftruncate(fd, 0);
  (void)!::write(fd, pid.data(), pid.size());
  return RunLock(fd);
}

pid_t RunLock::Holder(const std::string& stateDir) {
  int fd = ::open((stateDir + "/run.lock").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  struct flock lock = WholeFile(F_RDLCK);  // conflicts with run's write lock
  pid_t holder = 0;
  if (::fcntl(fd, F_GETLK, &lock) == 0 && lock.l_type != F_UNLCK) holder = lock.l_pid > 0 ? lock.l_pid : -1;
  ::close(fd);
  return holder;
}

bool RunLock::IsHeld(const std::string& stateDir) { return Holder(stateDir) != 0; }

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace pgrs::local
