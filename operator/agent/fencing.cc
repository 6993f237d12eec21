#include "operator/agent/fencing.h"

#include <unistd.h>

#include <chrono>

#include "operator/pq/pq.h"
#include "operator/util/files.h"

namespace pgrs::agent {

using namespace std::chrono_literals;

void StopForFencing(Postmaster& postmaster, const AgentConfig& config) {
  if (!postmaster.running()) return;
  if (config.fenceMode == "fast") {
    // A checkpoint while writes still go on leaves little for the
    // shutdown checkpoint to do, so the pause in writes is short.
    if (auto conn = pq::Connection::Open(LocalParams(postmaster.layout(), config)); conn.ok()) (*conn)->Exec("CHECKPOINT").ok();
    postmaster.ShutDownFastOrKillGroup(30s);
  } else {
    postmaster.KillGroup();
  }
}

bool FenceMarker::Present() const { return PathExists(path_); }

void FenceMarker::Set(const std::string& why) const {
  if (!Present()) WriteFileAtomic(path_, why + "\n", 0600).ok();
}

void FenceMarker::Lift() const { ::unlink(path_.c_str()); }

}  // namespace pgrs::agent
