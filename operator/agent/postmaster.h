// The postmaster the agent supervises as its own child: starting it (after
// putting the data directory's modes right), stopping it, noticing that it
// ended, stopping one an earlier agent left behind, and reading the control
// file with pg_controldata. A crash is seen at once because the postmaster
// is our child; what to do about it is the agent's decision, not this file's.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "operator/agent/instance_layout.h"
#include "operator/agent/protocol.h"
#include "operator/pq/pq.h"
#include "operator/util/status.h"

namespace pgrs::agent {

// How the agent connects to its own PostgreSQL (as the superuser, 1 s
// connect timeout): the first of listen_addresses, or 127.0.0.1 when it
// listens everywhere.
// With TLS on, over TLS, the server verified against the set's CA file.
pq::ConnectionParams LocalParams(const InstanceLayout& layout, const AgentConfig& config);

class Postmaster {
 public:
  explicit Postmaster(const InstanceLayout& layout) : layout_(layout) {}

  const InstanceLayout& layout() const { return layout_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  std::chrono::steady_clock::time_point startedAt() const { return startedAt_; }

  // Makes the data directory's modes what PostgreSQL demands (a kubelet's
  // fsGroup may have changed them), starts the postmaster with its output
  // appended to postgres.log, and waits up to 10 s for it to accept
  // connections; a slower start (crash recovery) goes on while the caller
  // looks again later. A postmaster that exits at once is Unavailable, with
  // how it ended in *exitedHow.
  Status Start(const AgentConfig& config, std::string* exitedHow);
  // Fast shutdown (clients disconnected, a checkpoint written); killed when
  // it takes over 60 s. Nothing when it does not run.
  void Stop();
  // Fast shutdown for a fence: the last WAL reaches the standbys. After
  // `grace` the whole process group is killed.
  void ShutDownFastOrKillGroup(std::chrono::milliseconds grace);
  // Kills the whole process group at once, so no backend commits again.
  void KillGroup();
  // Non-blocking: once the postmaster has ended, how ("killed by signal 9");
  // it then no longer runs.
  std::optional<std::string> Reap();

 private:
  const InstanceLayout& layout_;
  pid_t pid_ = 0;
  std::chrono::steady_clock::time_point startedAt_{};
};

// A postmaster left behind by an earlier agent (killed without a chance to
// stop it) still owns the data directory; it is not our child, so we cannot
// supervise it: it is stopped (fast, then SIGQUIT after 60 s) and the
// supervisor starts it again under us.
void StopOrphanPostmaster(const InstanceLayout& layout);

// What the control file says about the last checkpoint.
struct ControlData {
  uint64_t checkpointLsn = 0;  // "Latest checkpoint location"
  int timeline = 0;            // "Latest checkpoint's TimeLineID"
  std::string state;           // "Database cluster state", e.g. "shut down", "in production"
};

// Parses pg_controldata's output (LC_ALL=C); what it does not find stays zero
// or empty.
ControlData ParseControlData(const std::string& output);
// Runs pg_controldata of `major` on the data directory; all zero when there
// is no control file or the program fails.
ControlData ReadControlData(const InstanceLayout& layout, int major);

}  // namespace pgrs::agent
