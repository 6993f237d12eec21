// Taking a pgBackRest backup with an instance's own pgbackrest.conf, and the
// agent's backup job (POST /backup). One piece of code runs `pgbackrest
// backup` for everyone: `pgrs local backup` and spec.backup.schedule
// (operator/local/backup.h, which may add --backup-standby) and the agent's
// job, which backs up its own primary (pg1 is local: in Kubernetes a
// standby's data directory is in another Pod).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "operator/agent/instance_layout.h"
#include "operator/agent/protocol.h"
#include "operator/util/status.h"

namespace pgrs::agent {

struct BackupCommand {
  std::string host;    // PGHOST for pg1 (the instance's PostgreSQL)
  std::string stanza;  // the set's name
  std::string type;    // full | diff | incr
  std::vector<std::string> extraArgs;  // e.g. --backup-standby --pg2-path=...
  // pgBackRest's lock error (50: another command holds the stanza's backup
  // lock, e.g. the stanza-create a new primary's agent runs after a
  // failover) is retried for this long, within the timeout.
  std::chrono::milliseconds lockWait{0};
  std::chrono::milliseconds timeout{0};
  // Set: the backup is killed within a second (the agent is stopping).
  const std::atomic<bool>* cancelled = nullptr;
};

// pgBackRest's exit code when the stanza's backup lock is held.
inline constexpr int kPgBackRestLockError = 50;

// Runs `pgbackrest backup --type=T` to its end, retrying the lock error,
// then reads `pgbackrest info` and returns the backup just taken (the
// newest: pgBackRest holds the stanza's backup lock while it runs, so no
// other finished in between). `progress` hears when it waits for the lock.
// Failures are Unavailable and say which step failed; the caller names the
// set or instance.
Result<BackupInfo> RunPgBackRestBackup(const InstanceLayout& layout, const BackupCommand& command,
                                       const std::function<void(const std::string&)>& progress = {});

// The agent's backups, one at a time, each on a thread of its own so the
// HTTP handlers return at once. State lives in memory only.
class BackupJobs {
 public:
  // Runs one backup to its end; `progress` updates the job's progress,
  // `cancelled` becomes true when the jobs are stopped.
  using Run = std::function<Result<BackupInfo>(const std::function<void(const std::string&)>& progress,
                                               const std::atomic<bool>& cancelled)>;
  // Checks that a backup can start now (Unavailable when not) and returns
  // how to run it, with the progress line it starts with.
  struct Plan {
    Run run;
    std::string progress;
  };
  using Prepare = std::function<Result<Plan>(const BackupRequest&)>;

  // `instance` names the logs' lines.
  explicit BackupJobs(std::string instance) : instance_(std::move(instance)) {}
  ~BackupJobs() { Stop(); }
  BackupJobs(const BackupJobs&) = delete;
  BackupJobs& operator=(const BackupJobs&) = delete;

  // The job with the request's id when it is the running or the last one
  // (nothing started); Conflict when another job runs; else prepare's
  // failure, or the new job, started. Unavailable once stopping.
  Result<BackupJob> Start(const BackupRequest& request, const Prepare& prepare);
  // The running or the last job; none before the first.
  std::optional<BackupJob> Current() const;
  // Cancels the running job (its pgbackrest is killed); returns at once.
  void Cancel();
  // Cancel, and waits for the job's thread.
  void Stop();

 private:
  void Finish(const std::string& id, const Result<BackupInfo>& result);

  const std::string instance_;
  mutable std::mutex mu_;
  std::optional<BackupJob> job_;  // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  std::atomic<bool> cancelled_{false};
  std::thread thread_;  // the running or the last job's; joined before the next
};

}  // namespace pgrs::agent
