#include "operator/agent/agent.h"

#include <signal.h>

#include <chrono>

#include "operator/agent/archiving.h"
#include "operator/agent/bootstrap.h"
#include "operator/agent/configuration.h"
#include "operator/agent/promote.h"
#include "operator/agent/restore.h"
#include "operator/util/files.h"
#include "operator/util/log.h"

namespace pgrs::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

constexpr char kRecoveryTargetMissed[] =
    "spec.bootstrap.recovery.target: the archive ends before the recovery target was reached (a time after the last "
    "archived commit, or a restore point it does not hold); delete the set and restore with another target";

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

InstanceAgent::InstanceAgent(AgentOptions options)
    : options_(std::move(options)),
      layout_{options_.name, options_.instanceDir, options_.pgBinRoot, {}},
      api_(AgentApiCalls{
          .status = [this] { return CurrentStatus(); },
          .setConfig = [this](const AgentConfig& config) { return SetConfig(config); },
          .ready =
              [this] {
                bool running = false;
                {
                  std::lock_guard<std::mutex> lock(mu_);
                  running = status_.postgresRunning;
                }
                return running && probe_.ok();
              },
          .controllerContact = [this] { NoteControllerContact(); },
          .startBackup = [this](const BackupRequest& request) { return StartBackup(request); },
          .backupJob = [this] { return CurrentBackup(); },
      }),
      backups_(options_.name),
      postmaster_(layout_),
      lease_(options_.name),
      fenceMarker_(layout_.FenceMarker()),
      recovery_(layout_),
      stanza_(layout_),
      repository_(layout_),
      backupServer_(layout_),
      probe_([this] {
        std::lock_guard<std::mutex> lock(mu_);
        wake_.notify_all();
      }) {
  status_.name = options_.name;
  status_.state = kStateWaitingForConfig;
}

InstanceAgent::~InstanceAgent() {
  RequestStop();
  Wait();
}

Status InstanceAgent::Start() {
  auto user = PostgresUser();
  if (!user.ok()) return user.status();
  layout_.postgresUser = *user;
  PGRS_RETURN_IF_ERROR(MakeDirs(options_.instanceDir, 0700));
  PGRS_RETURN_IF_ERROR(ChownPath(options_.instanceDir, layout_.postgresUser.uid, layout_.postgresUser.gid));

  // Only what PostgreSQL logs from now on speaks of its current state.
  recovery_.SkipExisting();
  server_ = std::make_unique<HttpServer>(options_.listenAddress, options_.token, options_.tls);
  api_.Register(*server_);
  PGRS_RETURN_IF_ERROR(server_->Start());
  NoteControllerContact();  // silence is counted from the agent's start
  supervisor_ = std::thread([this] { SuperviseLoop(); });
  probe_.Start();
  spdlog::info("agent started instance={} api={} dataDir={}", options_.name, options_.listenAddress,
               layout_.DataDir());
  return Status::Ok();
}

void InstanceAgent::RequestStop() {
  backups_.Cancel();
  std::lock_guard<std::mutex> lock(mu_);
  stopRequested_ = true;
  wake_.notify_all();
}

void InstanceAgent::RequestShutdown() {
  // A running backup is killed, not waited for: asked again, pgBackRest
  // resumes it (on whichever instance is the primary then).
  backups_.Cancel();
  std::lock_guard<std::mutex> lock(mu_);
  shutdownRequested_ = true;
  status_.shuttingDown = true;
  wake_.notify_all();
}

bool InstanceAgent::Stopped() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopped_;
}

void InstanceAgent::Wait() {
  backups_.Stop();
  probe_.Stop();
  if (supervisor_.joinable()) supervisor_.join();
  if (server_) server_->Stop();
}

AgentStatus InstanceAgent::CurrentStatus() {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

Status InstanceAgent::SetConfig(const AgentConfig& config) {
  std::lock_guard<std::mutex> lock(mu_);
  if (desired_ && desired_->majorVersion != config.majorVersion && status_.dataDirExists) {
    return Status::Conflict("major version change " + std::to_string(desired_->majorVersion) + " -> " +
                            std::to_string(config.majorVersion) + " needs an upgrade, which pgrs does not do");
  }
  std::string hash = ConfigHash(config);
  if (status_.configHash != hash) {
    spdlog::info("received config instance={} role={} port={} upstream={}:{} hash={}", options_.name, config.role,
                 config.port, config.upstreamHost, config.upstreamPort, hash);
  }
  desired_ = config;
  // The hash stays the one of what the controller sent: it compares them.
  if (!options_.postgresListen.empty()) desired_->listenAddresses = options_.postgresListen;
  status_.role = config.role;
  status_.configHash = hash;
  configArrived_ = true;  // a new config deserves a prompt attempt
  wake_.notify_all();
  return Status::Ok();
}

Result<BackupJob> InstanceAgent::StartBackup(const BackupRequest& request) {
  return backups_.Start(request, [this](const BackupRequest& r) { return PrepareBackup(r); });
}

Result<BackupJobs::Plan> InstanceAgent::PrepareBackup(const BackupRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string instance = "instance " + options_.name;
  if (stopRequested_ || shutdownRequested_) return Status::Unavailable(instance + " is shutting down");
  if (!desired_) return Status::Unavailable(instance + " has no configuration yet");
  if (!BackupConfigured(*desired_)) {
    return Status::Unavailable(instance + ": its set has no spec.backup, nothing to back up to");
  }
  if (desired_->role != "primary" || status_.dataDirRole != "primary") {
    return Status::Unavailable(instance + " is not the primary (role " + desired_->role +
                               "): only the primary's agent takes backups");
  }
  if (status_.state != kStateRunning || !status_.postgresReady) {
    return Status::Unavailable(instance + " is not running (state " + status_.state + ")");
  }
  if (!stanzaCreated_) return Status::Unavailable(instance + ": the pgBackRest stanza is not created yet");
  BackupCommand command;
  command.host = LocalParams(layout_, *desired_).host;
  command.stanza = desired_->stanza;
  command.type = request.type;
  command.lockWait = kBackupLockWait;
  command.timeout = kBackupTimeout;
  BackupJobs::Plan plan;
  plan.progress = "backing up " + desired_->stanza + " from primary " + options_.name + " (" + request.type + ")";
  if (!request.standbyHost.empty()) {
    if (!desired_->tls || desired_->backupServerPort <= 0) {
      return Status::Invalid(instance + ": a backup from standby " + request.standby +
                             " needs TLS and a pgBackRest server (Kubernetes with spec.tls)");
    }
    // Its files come through its pgBackRest server, reached with the
    // replication client certificate (on the command line: pg2 options in
    // pgbackrest.conf would make every other command expect a pg2). Pods
    // share one layout, so its data directory and configuration are where
    // this one has its own.
    command.extraArgs = {"--backup-standby",
                         "--pg2-host=" + request.standbyHost,
                         "--pg2-host-type=tls",
                         "--pg2-host-cert-file=" + layout_.TlsReplicationCertFile(),
                         "--pg2-host-key-file=" + layout_.TlsReplicationKeyFile(),
                         "--pg2-host-ca-file=" + layout_.TlsCaFile(),
                         "--pg2-host-port=" + std::to_string(request.standbyServerPort),
                         "--pg2-host-config=" + layout_.PgBackRestConfigFile(),
                         "--pg2-path=" + layout_.DataDir(),
                         "--pg2-port=" + std::to_string(request.standbyPort),
                         "--pg2-user=postgres"};
    plan.progress = "backing up " + desired_->stanza + " from standby " + request.standby + " (" + request.type +
                    "), started and stopped on primary " + options_.name;
  }
  plan.run = [this, command, instance](const std::function<void(const std::string&)>& progress,
                                       const std::atomic<bool>& cancelled) -> Result<BackupInfo> {
    BackupCommand run = command;
    run.cancelled = &cancelled;
    auto backup = RunPgBackRestBackup(layout_, run, progress);
    if (!backup.ok()) return Status(backup.status().code(), instance + ": " + backup.status().message());
    return backup;
  };
  return plan;
}

void InstanceAgent::SetState(const std::string& state, const std::string& progress) {
  std::lock_guard<std::mutex> lock(mu_);
  status_.state = state;
  status_.progress = progress;
}

void InstanceAgent::SetError(const std::string& error) {
  std::lock_guard<std::mutex> lock(mu_);
  if (status_.lastError != error && !error.empty()) spdlog::warn("instance={} error={}", options_.name, error);
  status_.lastError = error;
}

void InstanceAgent::NoticeUncleanPrimary() {
  if (layout_.DataDirRole() != "primary") return;
  // A primary that was not shut down cleanly crashed while no agent
  // watched (the agent died with it): as after any crash of a primary,
  // the controller decides whether it restarts here or fails over.
  auto major = layout_.DataDirMajorVersion();
  if (!major) return;
  std::string state = ReadControlData(layout_, *major).state;
  if (state == "in production") {
    primaryCrashed_ = true;
    spdlog::warn("primary data directory was not shut down cleanly instance={} state=\"{}\"", options_.name, state);
  }
}

void InstanceAgent::SuperviseLoop() {
  StopOrphanPostmaster(layout_);
  NoticeUncleanPrimary();
  if (fenceMarker_.Present()) {
    // Fenced before this agent started: stays stopped until told otherwise.
    std::lock_guard<std::mutex> lock(mu_);
    status_.fenced = true;
    status_.state = kStateFenced;
  }
  while (true) {
    bool shuttingDown = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, 100ms, [this] { return stopRequested_; });
      if (stopRequested_) break;
      shuttingDown = shutdownRequested_;
    }
    if (shuttingDown) {
      if (ShutdownStep()) break;
      continue;
    }
    Tick();
  }
  SetState(kStateStopping);
  StopPostgres();
  std::lock_guard<std::mutex> lock(mu_);
  stopped_ = true;
  status_.postgresRunning = false;
  status_.postgresReady = false;
}

bool InstanceAgent::ShutdownStep() {
  std::optional<AgentConfig> config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = desired_;
  }
  NoticePostmasterExit(config);
  const bool primary = config && config->role == "primary" && layout_.DataDirRole() == "primary";
  if (!handingOver_) {
    // Decided once: only a running primary that a standby can replace
    // waits, or one whose planned hand-over (a fast fence) has begun: the
    // controller, which sees its Pod terminating, may be first. Leaving
    // before the controller has read the shutdown checkpoint would make it
    // wait out the lease instead.
    const bool handoverBegun = primary && config->fenced && config->fenceMode == "fast";
    const bool mayHandOver = primary && postmaster_.running() && !config->fenced && config->handoverOnShutdown;
    if (options_.shutdownHandover <= 0ms || !(mayHandOver || handoverBegun)) return true;
    handingOver_ = true;
    handoverDeadline_ = Clock::now() + options_.shutdownHandover;
    spdlog::info("shutting down: waiting for the controller to hand the primary over instance={} budgetMs={}",
                 options_.name, options_.shutdownHandover.count());
  }
  if (!primary) {
    spdlog::info("shutting down: the primary was handed over instance={}", options_.name);
    return true;
  }
  if (Clock::now() >= handoverDeadline_) {
    spdlog::warn("shutting down without a hand-over: none within {} ms instance={}", options_.shutdownHandover.count(),
                 options_.name);
    return true;
  }
  if (int64_t silentMs = MsSinceControllerContact(); silentMs > 3000) {
    spdlog::warn("shutting down without a hand-over: no word from the controller for {} ms instance={}", silentMs,
                 options_.name);
    return true;
  }
  if (config->fenced) {
    // The controller's part of the hand-over: a fast shutdown, which sends
    // every commit to the standbys. The agent stays until the lease has
    // gone to the new primary, answering with the last checkpoint's LSN,
    // which the controller waits for the new primary to have received.
    if (postmaster_.running()) Fence(*config, "planned hand-over before shutting down");
    auto store = lease_.Open(*config);
    if (!store.ok()) return false;
    auto held = (*store)->Get();
    if (held.ok() && held->holder != options_.name) {
      spdlog::info("shutting down: primary lease handed to {} instance={}", held->holder, options_.name);
      return true;
    }
    return false;
  }
  if (!postmaster_.running()) return true;  // it stopped by itself: nothing left to hand over
  // Still the primary while the controller prepares: it keeps the lease.
  Status renewed = RenewLease(*config, false);
  if (!renewed.ok() && (renewed.code() == StatusCode::kConflict || lease_.RenewOverdue(*config))) {
    Fence(*config, renewed.message());
    return true;
  }
  return false;
}

void InstanceAgent::NoticePostmasterExit(const std::optional<AgentConfig>& config) {
  pid_t pid = postmaster_.pid();
  auto how = postmaster_.Reap();
  if (!how) return;
  spdlog::warn("postmaster exited instance={} pid={} how=\"{}\"", options_.name, pid, *how);
  bool primary = config && config->role == "primary" && layout_.DataDirRole() == "primary";
  // A crashed primary is the controller's call: fail over, or restart here.
  if (primary && !config->restartOnCrash) primaryCrashed_ = true;
  // A postmaster that dies right after starting would crash-loop: back off.
  if (Clock::now() - postmaster_.startedAt() < 10s) {
    retryAfter_ = Clock::now() + backoff_;
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 10s);
  }
  // A restore whose target the archive does not reach: PostgreSQL stops
  // with a FATAL error every time it gets to the end of the archive.
  const bool targetMissed = RestoreTargetMissed(layout_);
  if (targetMissed) SetError(kRecoveryTargetMissed);
  std::lock_guard<std::mutex> lock(mu_);
  status_.postgresRunning = false;
  status_.postgresReady = false;
  status_.postmasterPid = 0;
  status_.lastExit = *how;
  status_.restarts++;
  status_.state = targetMissed ? kStateFailed : primaryCrashed_ ? kStatePrimaryDown : kStateRestarting;
}

void InstanceAgent::Tick() {
  std::optional<AgentConfig> config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = desired_;
  }
  NoticePostmasterExit(config);
  {
    std::string role = layout_.DataDirRole();
    int major = layout_.DataDirMajorVersion().value_or(0);
    std::lock_guard<std::mutex> lock(mu_);
    status_.dataDirRole = role;
    status_.dataDirExists = !role.empty();
    status_.majorVersion = major;
  }
  if (!config) return;
  if (config->fenced) return Fence(*config, "the controller fenced it");
  if (fenceMarker_.Present()) {
    fenceMarker_.Lift();
    spdlog::info("fence lifted instance={} role={}", options_.name, config->role);
    std::lock_guard<std::mutex> lock(mu_);
    status_.fenced = false;
  }
  if (config->restartOnCrash) primaryCrashed_ = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (configArrived_) retryAfter_ = {};
    configArrived_ = false;
  }
  if (Clock::now() < retryAfter_) return;

  auto fail = [&](const Status& st) {
    SetError(st.message());
    SetState(kStateFailed);
    retryAfter_ = Clock::now() + backoff_;
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 10s);
  };

  // Before a clone or a rewind, which connect with them.
  auto tlsWritten = WriteTlsFiles(layout_, *config);
  if (!tlsWritten.ok()) return fail(tlsWritten.status());
  tlsChanged_ = tlsChanged_ || *tlsWritten;

  Status st = EnsureDataDirectory(layout_, *config, [this](const std::string& state, const std::string& progress) {
    SetState(state, progress);
  });
  if (!st.ok()) return fail(st);
  if (config->role == "primary" && RestorePromoted(layout_)) {
    // A restored primary promoted itself at its target: the last step of
    // the restore, with PostgreSQL stopped for a moment.
    StopPostgres();
    SetState(kStateRestoring, "setting this set's passwords after the promotion");
    st = FinishRestore(layout_, *config);
    if (!st.ok()) return fail(st);
  }

  std::string dirRole = layout_.DataDirRole();
  if (dirRole == "standby" && config->role == "primary") {
    st = Promote(*config);
    if (!st.ok() && st.code() != StatusCode::kUnavailable) return fail(st);
    if (!st.ok()) SetError(st.message());
    return;
  }
  if (dirRole == "primary" && config->role == "standby") {
    st = Rejoin(*config);
    if (!st.ok()) return fail(st);
    return;
  }
  if (config->role == "primary" && !config->lease.empty()) {
    // A primary runs only while it holds the lease. A crashed one waiting
    // for the controller renews at the usual pace, not every tick.
    st = RenewLease(*config, !postmaster_.running() && !primaryCrashed_);
    if (!st.ok()) {
      if (postmaster_.running() && (st.code() == StatusCode::kConflict || lease_.RenewOverdue(*config))) {
        Fence(*config, st.message());
      }
      return fail(st);
    }
  }
  if (!postmaster_.running() && primaryCrashed_) {
    if (!MayRestartWithoutController(*config)) {
      SetState(kStatePrimaryDown);
      return;
    }
    primaryCrashed_ = false;
  }

  auto written = WriteConfiguration(layout_, *config);
  if (!written.ok()) return fail(written.status());

  if (postmaster_.running()) {
    // A renewed certificate takes a reload too.
    if (written->changed || tlsChanged_) ApplyChangedConfiguration(*config, written->recoveryConfChanged);
    tlsChanged_ = false;
  } else {
    tlsChanged_ = false;
    st = StartPostgres(*config);
    if (!st.ok()) {
      if (config->role == "standby") {
        if (std::string sign = recovery_.CannotContinue(BackupConfigured(*config)); !sign.empty()) {
          return Repair(*config, sign, "it cannot start recovery");
        }
      }
      if (RestoreTargetMissed(layout_)) return fail(Status::Invalid(kRecoveryTargetMissed));
      return fail(st);
    }
  }
  if (config->role == "standby" && postmaster_.running()) {
    if (std::string sign = recovery_.CannotContinue(BackupConfigured(*config)); !sign.empty()) {
      return Repair(*config, sign, sign == kWalRemovedSign ? "its upstream no longer has the WAL it needs"
                                                           : "its timeline diverged from its upstream's");
    }
  }
  // The prober thread asks PostgreSQL for new connections; a hang blocks
  // it, never this thread (which must stay free to fence).
  probe_.Aim(LocalParams(layout_, *config), postmaster_.running());
  bool ready = probe_.ok() && postmaster_.running();
  // A restored primary replays the archive up to its target before it is one.
  const bool restoring = config->role == "primary" && RestoreInProgress(layout_);
  // Once archiving is configured. A failure is reported, never a reason to
  // stop PostgreSQL: the primary keeps serving, WAL waits in pg_wal.
  const bool createsStanza = ready && config->role == "primary" && BackupConfigured(*config) && !restoring;
  if (createsStanza) stanza_.Poll(*config, LocalParams(layout_, *config).host);
  const std::string stanzaError = createsStanza ? stanza_.error() : "";
  if (createsStanza && stanza_.TakeJustCreated() && postmaster_.pid() > 0) {
    ::kill(static_cast<pid_t>(postmaster_.pid()), SIGHUP);  // the archiver retries now
  }
  stanzaCreated_ = createsStanza && stanza_.created();
  // Every instance, so that a standby serves its files to the primary's
  // backups (and a primary is ready once it is a standby).
  backupServer_.Poll(*config, LocalParams(layout_, *config).host, postmaster_.running());
  if (createsStanza && stanza_.created()) {
    repository_.Poll(*config, LocalParams(layout_, *config).host);
  } else if (config->role != "primary" || !BackupConfigured(*config)) {
    repository_.Reset();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.postgresRunning = postmaster_.running();
    status_.postgresReady = ready;
    status_.postmasterPid = postmaster_.pid();
    status_.state = restoring ? kStateRestoring : ready ? kStateRunning : kStateStarting;
    if (restoring) status_.progress = "replaying WAL from the archive up to the recovery target";
    status_.repository = repository_.info();
    if (ready && !restoring) {
      status_.progress.clear();
      if (!stanzaError.empty() && status_.lastError != stanzaError) {
        spdlog::warn("instance={} error={}", options_.name, stanzaError);
      }
      status_.lastError = stanzaError;
    }
  }
  if (ready) backoff_ = 500ms;
  if (ready && repairs_ > 0 && Clock::now() - lastRepair_ > 60s) repairs_ = 0;
}

void InstanceAgent::NoteControllerContact() { lastControllerContactMs_ = SteadyNowMs(); }

int64_t InstanceAgent::MsSinceControllerContact() const { return SteadyNowMs() - lastControllerContactMs_.load(); }

bool InstanceAgent::MayRestartWithoutController(const AgentConfig& config) {
  // Without a lease nothing proves that no other instance was promoted.
  if (config.lease.empty()) return false;
  auto silence = options_.controllerSilence;
  if (silence <= 0ms) silence = std::max<std::chrono::milliseconds>(30s, 3 * std::chrono::seconds(config.leaseDurationSeconds));
  int64_t silentMs = MsSinceControllerContact();
  if (silentMs < silence.count()) return false;
  // Still the holder means nobody took over: a renewal now (not the one of
  // a second ago) is the proof, and keeps it ours while PostgreSQL starts.
  Status renewed = RenewLease(config, /*beforeStart=*/true);
  if (!renewed.ok()) {
    SetError("not restarting the crashed primary without the controller: " + renewed.message());
    return false;
  }
  spdlog::warn("restarting crashed primary in place: no word from the controller instance={} silentMs={} lease={}",
               options_.name, silentMs, config.lease);
  return true;
}

Status InstanceAgent::RenewLease(const AgentConfig& config, bool beforeStart) {
  PGRS_RETURN_IF_ERROR(lease_.Renew(config, beforeStart));
  std::lock_guard<std::mutex> lock(mu_);
  status_.lastRenewMs = lease_.lastRenewMs();
  return Status::Ok();
}

void InstanceAgent::Fence(const AgentConfig& config, const std::string& why) {
  bool wasRunning = postmaster_.running();
  if (wasRunning) {
    pid_t pid = postmaster_.pid();
    StopForFencing(postmaster_, config);
    spdlog::warn("fenced instance={} pid={} mode={} reason=\"{}\"", options_.name, pid, config.fenceMode, why);
  }
  fenceMarker_.Set(why);
  if (wasRunning || !fenceFactsKnown_) {
    ControlData control = ReadControlData(layout_, config.majorVersion);
    fenceFactsKnown_ = true;
    std::lock_guard<std::mutex> lock(mu_);
    status_.checkpointLsn = control.checkpointLsn;
    status_.timeline = control.timeline;
  }
  std::lock_guard<std::mutex> lock(mu_);
  status_.fenced = true;
  status_.state = kStateFenced;
  status_.postgresRunning = false;
  status_.postgresReady = false;
  status_.postmasterPid = 0;
}

Status InstanceAgent::Promote(const AgentConfig& config) {
  if (!postmaster_.running()) {
    // Start it as the standby it is; promotion follows once it runs.
    SetState(kStateStarting);
    return StartPostgres(config);
  }
  if (!config.lease.empty()) {
    auto store = lease_.Open(config);
    if (!store.ok()) return store.status();
    auto held = (*store)->Get();
    if (!held.ok()) return held.status();
    if (held->holder != options_.name) {
      return Status::Unavailable("waiting for the primary lease (held by " + held->holder + ") before promoting");
    }
  }
  SetState(kStatePromoting);
  PGRS_RETURN_IF_ERROR(PromoteStandby(layout_, config));
  lease_.ForgetRenewal();
  RenewLease(config, true).ok();
  return Status::Ok();
}

void InstanceAgent::Repair(const AgentConfig& config, const std::string& sign, const std::string& why) {
  // A standby whose history diverged: rewind it onto its upstream, and
  // re-clone it when that is not enough. One whose WAL is gone upstream (its
  // slot was invalidated): a rewind cannot bring WAL back, re-cloned at once.
  spdlog::warn("repairing standby instance={} reason=\"{}\" sign=\"{}\" attempt={}", options_.name, why, sign,
               repairs_ + 1);
  if (postmaster_.running()) StopPostgres();
  lastRepair_ = Clock::now();
  // Said in status until it runs again: the clone or rewind shows as its
  // state, this as its message.
  SetError("repairing: " + why);
  Status st;
  if (repairs_++ == 0 && sign != kWalRemovedSign) {
    st = Rejoin(config);
  } else {
    spdlog::warn("re-cloning standby instance={} reason=\"{}\"", options_.name,
                 sign == kWalRemovedSign ? why : "a rewind did not help");
    st = RemoveTree(layout_.DataDir());
    repairs_ = 0;
  }
  if (!st.ok()) SetError(st.message());
}

Status InstanceAgent::Rejoin(const AgentConfig& config) {
  // This data directory was a primary; the set has another one now. It
  // comes back as a standby only after pg_rewind has made its history a
  // prefix of the new primary's, or, when that fails, as a fresh clone.
  if (postmaster_.running()) StopPostgres();
  SetState(kStateRewinding, "rewind starting");
  return Rewind(layout_, config, [this](const std::string& line) { SetState(kStateRewinding, "rewind " + line); });
}

Status InstanceAgent::StartPostgres(const AgentConfig& config) {
  SetState(kStateStarting);
  std::string exitedHow;
  Status st = postmaster_.Start(config, &exitedHow);
  if (!exitedHow.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    status_.lastExit = exitedHow;
  }
  return st;
}

void InstanceAgent::StopPostgres() {
  if (!postmaster_.running()) return;
  postmaster_.Stop();
  std::lock_guard<std::mutex> lock(mu_);
  status_.postgresRunning = false;
  status_.postgresReady = false;
  status_.postmasterPid = 0;
}

void InstanceAgent::ApplyChangedConfiguration(const AgentConfig& config, bool recoveryConfChanged) {
  if (!NeedsRestartForConfiguration(layout_, config, postmaster_.pid(), recoveryConfChanged)) {
    spdlog::info("reloaded configuration instance={}", options_.name);
    return;
  }
  spdlog::info("restarting postmaster for a configuration change instance={}", options_.name);
  SetState(kStateRestarting);
  StopPostgres();
  Status st = StartPostgres(config);
  if (!st.ok()) SetError(st.message());
}

}  // namespace pgrs::agent
