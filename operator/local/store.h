// The local file store: the embedded stand-in for the Kubernetes API.
//   DIR/sets/<name>/object.json   metadata + spec, written by `pgrs local apply`
//   DIR/sets/<name>/status.json   status, written by `pgrs local run`
//   DIR/control-plane.json        pgrs local run's pid, start, last pass, clean stop
// Each file has one writer and is replaced atomically, so `apply` works
// whether or not `run` is running, and readers never see half a file.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "operator/api/types.h"
#include "reconcilers/local_control_plane.h"
#include "operator/util/status.h"

namespace pgrs::local {

class LocalStore {
 public:
  explicit LocalStore(std::string stateDir);

  const std::string& stateDir() const { return stateDir_; }
  std::string SetDir(const std::string& name) const;

  // Stores metadata and spec; keeps uid and creationTimestamp of an existing
  // object and bumps generation when the spec changed. `outcome` is
  // "created", "configured" or "unchanged". Refuses (Invalid, nothing
  // stored) a set whose ports overlap another stored set's.
  Result<api::PostgresReplicaSet> Apply(const api::PostgresReplicaSet& object, std::string* outcome);
  // The object with its status (NotFound if absent).
  Result<api::PostgresReplicaSet> Get(const std::string& name) const;
  std::vector<std::string> ListNames() const;
  // Replaces status.json unless it already holds exactly this status.
  Status WriteStatus(const std::string& name, const api::ReplicaSetStatus& status);
  // Marks the object for deletion (run tears it down and calls Remove).
  Status RequestDelete(const std::string& name);
  Status Remove(const std::string& name);

  // DIR/control-plane.json (reconcilers/local_control_plane.h).
  Status WriteControlPlane(const reconcilers::ControlPlaneRecord& record);
  std::optional<reconcilers::ControlPlaneRecord> ReadControlPlane() const;
  // The control plane as the client verbs see it: the run lock and the record.
  reconcilers::ControlPlaneState AssessControlPlane() const;

 private:
  std::string stateDir_;
};

// Held by `pgrs local run` for its lifetime: one control plane per state
// directory. Released when the process exits, however it exits, and not
// inherited by the agents it starts (a POSIX record lock on DIR/run.lock).
class RunLock {
 public:
  static Result<RunLock> Acquire(const std::string& stateDir);
  // Asks without taking the lock, so a `run` starting meanwhile is not
  // turned away. Never from the process that holds it: closing any
  // descriptor of the file drops a POSIX lock.
  static bool IsHeld(const std::string& stateDir);
  // The pid of the process that holds it; 0 when none does.
  static pid_t Holder(const std::string& stateDir);
  RunLock(RunLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  ~RunLock();

 private:
  explicit RunLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace pgrs::local
