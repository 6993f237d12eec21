// Fencing: PostgreSQL stopped on purpose and kept stopped until the
// controller lifts it. How the postmaster is stopped depends on why: a lost
// primary must not commit one more transaction ("immediate"), a planned
// hand-over must lose nothing ("fast"). The fence outlives the agent as a
// marker file in the instance directory.
#pragma once

#include <string>

#include "operator/agent/postmaster.h"
#include "operator/agent/protocol.h"

namespace pgrs::agent {

// Stops a running postmaster as config.fenceMode says: "fast" is a
// CHECKPOINT while writes still go on (so the shutdown checkpoint has little
// to do and the pause in writes is short), then a fast shutdown of at most
// 30 s; anything else kills the whole process group at once.
void StopForFencing(Postmaster& postmaster, const AgentConfig& config);

// The marker file that keeps a fence across agent restarts.
class FenceMarker {
 public:
  explicit FenceMarker(std::string path) : path_(std::move(path)) {}
  bool Present() const;
  // Records why, unless a fence is recorded already.
  void Set(const std::string& why) const;
  void Lift() const;

 private:
  std::string path_;
};

}  // namespace pgrs::agent
