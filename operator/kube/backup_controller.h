// PostgresBackup (pgrs.dev/v1alpha1): one pgBackRest backup of a
// PostgresReplicaSet, asked for by a user or made for a scheduled run of
// the set's spec.backup.schedule. The controller takes it once, through the
// agent of the set's primary (POST /backup with the object's uid as the
// job id, then GET /backup until it ends), and writes what pgBackRest did
// into the object's status. A finished one (Completed, Failed) is never
// taken again; deleting the object leaves the backup in the repository.
//
//   spec:   replicaSet (required), type: full | diff | incr (default full)
//   status: phase Pending | Running | Completed | Failed, message, instance,
//           label, type, startTime, stopTime, startLsn, stopLsn,
//           databaseSize, repositorySize, scheduledTime
//
// Decisions are DecideBackup's (pure, tested by tables); Reconcile reads,
// decides, acts, writes.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "operator/agent/protocol.h"
#include "operator/api/types.h"
#include "operator/kube/controller.h"
#include "operator/kube/events.h"

namespace pgrs::kube {

Resource BackupResource();  // pgrs.dev/v1alpha1 postgresbackups

// Labels and annotation of the PostgresBackups made for scheduled runs.
inline constexpr char kScheduledLabel[] = "pgrs.dev/scheduled";
inline constexpr char kScheduledTimeAnnotation[] = "pgrs.dev/scheduled-time";

// Phases of a PostgresBackup.
inline constexpr char kBackupPending[] = "Pending";
inline constexpr char kBackupRunningPhase[] = "Running";
inline constexpr char kBackupCompletedPhase[] = "Completed";
inline constexpr char kBackupFailedPhase[] = "Failed";

// What one reconcile of a PostgresBackup found.
struct BackupFacts {
  std::string name;          // the PostgresBackup
  std::string phase;         // its status.phase ("" when new)
  std::string replicaSet;    // spec.replicaSet
  std::string type;          // spec.type (defaulted to full)
  bool setFound = false;
  bool setHasBackup = false;  // the set has spec.backup
  std::string primary;        // the set's status.currentPrimary
  bool primarySettled = false;  // no failover or switchover in progress, the primary Running
  // The primary's agent's current or last job (GET /backup); nullopt when
  // it has none (404) or did not answer.
  std::optional<agent::BackupJob> job;
};

enum class BackupStep {
  kNothing,   // finished already
  kFail,      // Failed, with message (bad spec, no spec.backup, pgBackRest failed)
  kWait,      // Pending, with message; look again later
  kStart,     // POST /backup to the primary's agent
  kRunning,   // the job runs: record progress
  kComplete,  // the job finished: record the backup
};
struct BackupDecision {
  BackupStep step = BackupStep::kNothing;
  std::string message;
};
// `id` is the PostgresBackup's uid, the agent job's id.
BackupDecision DecideBackup(const BackupFacts& facts, const std::string& id);

// The name of the PostgresBackup for a scheduled run: SET-TYPE-YYYYMMDDHHMMSS
// of its cron time (UTC).
std::string ScheduledBackupName(const std::string& set, const std::string& type, const std::string& scheduledTime);

// spec.backup.schedule in Kubernetes: before the pass, fires what is due as
// a new PostgresBackup owned by the set, and follows the last one into
// status.backup.lastScheduledBackup (its outcome once it ends). Mutates
// set.status.backup like local mode's scheduler does.
Status RunKubeSchedule(Client* client, api::PostgresReplicaSet& set, std::chrono::system_clock::time_point now);

class BackupController {
 public:
  BackupController(Client* client, EventRecorder* events, ControllerOptions options);

  void StartInformers() { controller_.StartInformers(); }
  bool Synced() const { return controller_.Synced(); }
  void StartWorkers(std::function<bool()> mayAct) { controller_.StartWorkers(std::move(mayAct)); }
  void Stop() { controller_.Stop(); }

 private:
  ReconcileResult Reconcile(const std::string& key);
  // GET /backup or POST /backup on an instance of the set: the job, or
  // nullopt on 404; an error when the agent cannot be reached.
  Result<std::optional<agent::BackupJob>> CallAgent(const std::string& ns, const std::string& set,
                                                    const std::string& instance, const std::string& method,
                                                    const std::string& body, int* httpStatus,
                                                    std::string* responseBody);

  Client* client_;
  EventRecorder* events_;
  Controller controller_;
};

}  // namespace pgrs::kube
