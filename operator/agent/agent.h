// The instance agent (`pgrs instance`): the one process that owns a data
// directory. It bootstraps it (initdb for a primary, pg_basebackup for a
// standby), writes its configuration, starts the postmaster as its own child
// and supervises it, and serves its status over authenticated HTTP. The
// controller only ever tells it the desired state (PUT /config); the agent
// converges to it on its own, so that it keeps PostgreSQL running while the
// control plane is away.
//
// Safety: a data directory is never started as primary unless the config
// says so, and the agent never turns a standby into a primary (or back) by
// rewriting files: promotion and rejoin are explicit operations.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "operator/agent/api.h"
#include "operator/agent/archiving.h"
#include "operator/agent/backup.h"
#include "operator/agent/fencing.h"
#include "operator/agent/instance_layout.h"
#include "operator/agent/lease_keeper.h"
#include "operator/agent/postmaster.h"
#include "operator/agent/probe.h"
#include "operator/agent/protocol.h"
#include "operator/agent/rejoin.h"
#include "operator/util/http.h"

namespace pgrs::agent {

struct AgentOptions {
  std::string name;           // instance name, e.g. demo-2
  std::string instanceDir;    // holds data/, the passfile and postgres.log
  std::string listenAddress;  // the API, e.g. 127.0.0.1:18001
  std::string token;          // bearer token for the API
  // Set: the API is HTTPS with this certificate and requires client
  // certificates signed by tls->caFile (the control plane's) on every
  // endpoint but /healthz and /readyz. Unset: plain HTTP.
  std::optional<TlsFiles> tls;
  std::string pgBinRoot = "/usr/lib/postgresql";  // <root>/<major>/bin
  // When set, PostgreSQL's listen_addresses, whatever the config says (in a
  // Pod: its IP, which the operator does not know in advance); the agent's
  // own connections go there too.
  std::string postgresListen;
  // A crashed primary waiting for the controller (PrimaryDown) restarts in
  // place after hearing nothing from it (no PUT /config, no GET /status)
  // for this long, if it can still renew the lease. 0 = max(30 s, 3 x
  // leaseDurationSeconds).
  std::chrono::milliseconds controllerSilence{0};
  // Told to shut down (RequestShutdown, SIGTERM) while it runs a primary the
  // controller would hand over (config.handoverOnShutdown), the agent keeps
  // PostgreSQL running for at most this long, until the controller has
  // stopped it with a fast shutdown and handed the lease to the new primary:
  // a Pod deleted, evicted or drained loses no commit and hardly any write
  // time. 0 = stop at once (local mode, where the whole set stops).
  std::chrono::milliseconds shutdownHandover{0};
};

// The agent wires its parts together and keeps the state machine: the
// supervisor (Tick) decides what to do next from the desired config and
// what the data directory and the postmaster say; each job is in a file of
// its own: bootstrap.h (initdb, clone), configuration.h, postmaster.h,
// promote.h, rejoin.h (pg_rewind, a standby that cannot continue),
// fencing.h, lease_keeper.h, probe.h, backup.h (POST /backup's job) and
// api.h (the HTTP API).
class InstanceAgent {
 public:
  explicit InstanceAgent(AgentOptions options);
  ~InstanceAgent();

  // Starts the API and the supervisor. Fails if the API cannot listen.
  Status Start();
  // Asks the agent to stop PostgreSQL and return from Wait(). Signal-safe
  // callers use RequestStop from a normal thread.
  void RequestStop();
  // A planned stop: a primary is handed over first (see
  // AgentOptions::shutdownHandover), then PostgreSQL stops and Wait()
  // returns. RequestStop() during it stops at once.
  void RequestShutdown();
  // True once the supervisor has stopped PostgreSQL for good.
  bool Stopped();
  void Wait();

  AgentStatus CurrentStatus();
  // Applies a new desired config (what PUT /config does).
  Status SetConfig(const AgentConfig& config);
  // POST /backup and GET /backup (see api.h).
  Result<BackupJob> StartBackup(const BackupRequest& request);
  std::optional<BackupJob> CurrentBackup() const { return backups_.Current(); }

  // A backup job waits this long for the stanza's lock, and may run this long.
  static constexpr std::chrono::minutes kBackupLockWait{2};
  static constexpr std::chrono::hours kBackupTimeout{24};

 private:
  void SuperviseLoop();
  // A primary data directory found not shut down cleanly when the agent
  // starts crashed while no agent watched.
  void NoticeUncleanPrimary();
  void Tick();
  // One look while shutting down; true when PostgreSQL may be stopped now.
  bool ShutdownStep();
  void NoticePostmasterExit(const std::optional<AgentConfig>& config);
  // Stops PostgreSQL (as config.fenceMode says) and keeps it stopped.
  void Fence(const AgentConfig& config, const std::string& why);
  // Starts a stopped standby, or promotes a running one once it holds the lease.
  Status Promote(const AgentConfig& config);
  Status Rejoin(const AgentConfig& config);
  void Repair(const AgentConfig& config, const std::string& sign, const std::string& why);
  // Renews through lease_ and reports the renewal in status.
  Status RenewLease(const AgentConfig& config, bool beforeStart);
  // PrimaryDown and the controller silent for long: restart in place if the
  // lease is still ours (nobody was promoted). True when it may start.
  bool MayRestartWithoutController(const AgentConfig& config);
  void NoteControllerContact();
  int64_t MsSinceControllerContact() const;
  Status StartPostgres(const AgentConfig& config);
  void StopPostgres();
  void ApplyChangedConfiguration(const AgentConfig& config, bool recoveryConfChanged);
  void SetState(const std::string& state, const std::string& progress = "");
  void SetError(const std::string& error);
  // Whether this instance can take a backup now, and how (BackupJobs::Prepare).
  Result<BackupJobs::Plan> PrepareBackup(const BackupRequest& request);

  AgentOptions options_;
  InstanceLayout layout_;  // postgresUser filled in by Start
  AgentApi api_;           // outlives server_, whose handlers call it
  std::unique_ptr<HttpServer> server_;
  BackupJobs backups_;  // POST /backup: one at a time, each on its own thread
  // The supervisor's word that the primary's stanza exists (a backup needs it).
  std::atomic<bool> stanzaCreated_{false};

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopRequested_ = false;
  bool shutdownRequested_ = false;  // guarded by mu_
  bool stopped_ = false;
  std::optional<AgentConfig> desired_;  // guarded by mu_
  AgentStatus status_;                  // guarded by mu_
  std::thread supervisor_;

  // Supervisor-thread state.
  Postmaster postmaster_;
  LeaseKeeper lease_;
  FenceMarker fenceMarker_;
  RecoveryWatch recovery_;
  StanzaCreator stanza_;  // spec.backup: the primary creates the stanza
  RepositoryWatcher repository_;  // ... and reports the repository's backups
  BackupServer backupServer_;  // Kubernetes: `pgbackrest server` for backups from a standby
  std::chrono::steady_clock::time_point retryAfter_{};
  bool configArrived_ = false;  // guarded by mu_: SetConfig asks the supervisor not to back off
  std::chrono::milliseconds backoff_{500};
  bool primaryCrashed_ = false;  // waiting for the controller's decision
  bool tlsChanged_ = false;      // TLS files rewritten since the server last reloaded
  bool handingOver_ = false;     // shutting down: waiting for the controller to move the primary
  std::chrono::steady_clock::time_point handoverDeadline_{};
  bool fenceFactsKnown_ = false;
  int repairs_ = 0;       // rewinds tried on this standby since it last ran well
  std::chrono::steady_clock::time_point lastRepair_{};
  // When the controller last spoke to us (steady clock, ms since epoch).
  std::atomic<int64_t> lastControllerContactMs_{0};
  // The readiness probe, on a thread of its own (a hung server blocks it).
  ReadinessProbe probe_;
};

// `pgrs instance` command line.
int RunAgentMain(const std::vector<std::string>& args);

}  // namespace pgrs::agent
