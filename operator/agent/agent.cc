#include "operator/agent/agent.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <regex>

#include "operator/agent/permissions.h"
#include "operator/lease/lease.h"
#include "operator/postgres/config.h"
#include "operator/util/lsn.h"
#include "operator/pq/pq.h"
#include "operator/util/files.h"
#include "operator/util/log.h"

namespace pgrs::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

postgres::InstanceConfig ToInstanceConfig(const std::string& name, const AgentConfig& c, const std::string& passfile) {
  postgres::InstanceConfig ic;
  ic.majorVersion = c.majorVersion;
  ic.instanceName = name;
  ic.role = c.role == "primary" ? postgres::Role::kPrimary : postgres::Role::kStandby;
  ic.listenAddresses = c.listenAddresses;
  ic.port = c.port;
  ic.userParameters = c.parameters;
  ic.userHbaRules = c.pgHBA;
  if (!c.clientNetworks.empty()) ic.clientNetworks = c.clientNetworks;
  ic.replicationUser = c.replicationUser;
  ic.synchronousStandbyNames = c.synchronousStandbyNames;
  if (ic.role == postgres::Role::kStandby) {
    postgres::UpstreamConfig up;
    up.host = c.upstreamHost;
    up.port = c.upstreamPort;
    up.user = c.replicationUser;
    up.passfile = passfile;
    up.applicationName = name;
    up.slotName = c.slotName;
    ic.upstream = up;
  }
  return ic;
}

pq::ConnectionParams LocalParams(const AgentConfig& c) {
  pq::ConnectionParams p;
  p.host = (c.listenAddresses.empty() || c.listenAddresses == "*" || c.listenAddresses == "0.0.0.0")
               ? "127.0.0.1"
               : c.listenAddresses.substr(0, c.listenAddresses.find(','));
  p.port = c.port;
  p.user = "postgres";
  p.password = c.superuserPassword;
  p.connectTimeoutSeconds = 1;
  p.applicationName = "pgrs-agent";
  return p;
}

}  // namespace

InstanceAgent::InstanceAgent(AgentOptions options) : options_(std::move(options)) {
  status_.name = options_.name;
  status_.state = kStateWaitingForConfig;
}

InstanceAgent::~InstanceAgent() {
  RequestStop();
  Wait();
}

std::string InstanceAgent::DataDir() const { return JoinPath(options_.instanceDir, "data"); }
std::string InstanceAgent::PassfilePath() const { return JoinPath(options_.instanceDir, "replication.pgpass"); }

std::string InstanceAgent::PgBin(int major, const std::string& program) const {
  return options_.pgBinRoot + "/" + std::to_string(major) + "/bin/" + program;
}

Status InstanceAgent::Start() {
  auto user = PostgresUser();
  if (!user.ok()) return user.status();
  postgresUser_ = *user;
  PGRS_RETURN_IF_ERROR(MakeDirs(options_.instanceDir, 0700));
  PGRS_RETURN_IF_ERROR(ChownPath(options_.instanceDir, postgresUser_->uid, postgresUser_->gid));

  // Only what PostgreSQL logs from now on speaks of its current state.
  if (auto log = ReadFile(JoinPath(options_.instanceDir, "postgres.log")); log.ok()) logOffset_ = log->size();
  server_ = std::make_unique<HttpServer>(options_.listenAddress, options_.token);
  server_->Handle("GET", "/healthz", [](const HttpRequest&) { return HttpResponse{200, R"({"ok":true})"}; }, true);
  // The Pod's readinessProbe: PostgreSQL accepts connections, as the
  // prober last found.
  server_->Handle(
      "GET", "/readyz",
      [this](const HttpRequest&) {
        bool running = false;
        {
          std::lock_guard<std::mutex> lock(mu_);
          running = status_.postgresRunning;
        }
        return running && lastPingOk_.load() ? HttpResponse{200, R"({"ready":true})"}
                                              : HttpResponse{503, R"({"ready":false})"};
      },
      true);
  server_->Handle("GET", "/status", [this](const HttpRequest&) {
    NoteControllerContact();
    return HttpResponse{200, EncodeAgentStatus(CurrentStatus())};
  });
  server_->Handle("PUT", "/config", [this](const HttpRequest& req) {
    NoteControllerContact();
    auto config = DecodeAgentConfig(req.body);
    if (!config.ok()) return HttpResponse{400, "{\"error\":\"" + JsonEscape(config.status().message()) + "\"}"};
    Status st = SetConfig(*config);
    if (!st.ok()) return HttpResponse{409, "{\"error\":\"" + JsonEscape(st.message()) + "\"}"};
    return HttpResponse{202, "{\"configHash\":\"" + ConfigHash(*config) + "\"}"};
  });
  PGRS_RETURN_IF_ERROR(server_->Start());
  NoteControllerContact();  // silence is counted from the agent's start
  supervisor_ = std::thread([this] { SuperviseLoop(); });
  prober_ = std::thread([this] { ProbeLoop(); });
  spdlog::info("agent started instance={} api={} dataDir={}", options_.name, options_.listenAddress, DataDir());
  return Status::Ok();
}

void InstanceAgent::RequestStop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopRequested_ = true;
  wake_.notify_all();
}

void InstanceAgent::RequestShutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdownRequested_ = true;
  status_.shuttingDown = true;
  wake_.notify_all();
}

bool InstanceAgent::Stopped() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopped_;
}

void InstanceAgent::ProbeLoop() {
  // Pinging forks a backend: four times a second is enough to notice a
  // hang; a crash is noticed at once through waitpid.
  while (true) {
    std::optional<pq::ConnectionParams> params;
    {
      std::unique_lock<std::mutex> lock(probeMu_);
      probeWake_.wait_for(lock, 250ms, [this] { return probeStop_; });
      if (probeStop_) return;
      if (probeActive_) params = probeParams_;
    }
    bool ok = params && pq::Ping(*params);
    if (ok != lastPingOk_.load()) {
      lastPingOk_ = ok;
      std::lock_guard<std::mutex> lock(mu_);
      wake_.notify_all();
    }
  }
}

void InstanceAgent::Wait() {
  {
    std::lock_guard<std::mutex> lock(probeMu_);
    probeStop_ = true;
  }
  probeWake_.notify_all();
  if (prober_.joinable()) prober_.join();
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
  retryAfter_ = {};  // a new config deserves a prompt attempt
  wake_.notify_all();
  return Status::Ok();
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

std::string InstanceAgent::DataDirRole() const {
  std::string data = DataDir();
  if (!PathExists(JoinPath(data, "PG_VERSION"))) return "";
  if (PathExists(JoinPath(data, "standby.signal")) || PathExists(JoinPath(data, "recovery.conf"))) return "standby";
  return "primary";
}

void InstanceAgent::SuperviseLoop() {
  StopOrphanPostmaster();
  if (DataDirRole() == "primary") {
    // A primary that was not shut down cleanly crashed while no agent
    // watched (the agent died with it): as after any crash of a primary,
    // the controller decides whether it restarts here or fails over.
    auto version = ReadFile(JoinPath(DataDir(), "PG_VERSION"));
    uint64_t checkpoint = 0;
    int timeline = 0;
    std::string state;
    if (version.ok()) ReadControlData(std::atoi(version->c_str()), &checkpoint, &timeline, &state);
    if (state == "in production") {
      primaryCrashed_ = true;
      spdlog::warn("primary data directory was not shut down cleanly instance={} state=\"{}\"", options_.name, state);
    }
  }
  if (PathExists(FenceMarkerPath())) {
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
  const bool primary = config && config->role == "primary" && DataDirRole() == "primary";
  if (!handingOver_) {
    // Decided once: only a running primary that a standby can replace waits.
    if (!primary || postmasterPid_ == 0 || config->fenced || !config->handoverOnShutdown ||
        options_.shutdownHandover <= 0ms) {
      return true;
    }
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
  int64_t nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  if (nowMs - lastControllerContactMs_.load() > 3000) {
    spdlog::warn("shutting down without a hand-over: no word from the controller for {} ms instance={}",
                 nowMs - lastControllerContactMs_.load(), options_.name);
    return true;
  }
  if (config->fenced) {
    // The controller's part of the hand-over: a fast shutdown, which sends
    // every commit to the standbys. The agent stays until the lease has
    // gone to the new primary, answering with the last checkpoint's LSN,
    // which the controller waits for the new primary to have received.
    if (postmasterPid_ > 0) Fence(*config, "planned hand-over before shutting down");
    auto store = OpenedLease(*config);
    if (!store.ok()) return false;
    auto held = (*store)->Get();
    if (held.ok() && held->holder != options_.name) {
      spdlog::info("shutting down: primary lease handed to {} instance={}", held->holder, options_.name);
      return true;
    }
    return false;
  }
  if (postmasterPid_ == 0) return true;  // it stopped by itself: nothing left to hand over
  // Still the primary while the controller prepares: it keeps the lease.
  Status renewed = RenewLease(*config, false);
  if (!renewed.ok() && (renewed.code() == StatusCode::kConflict || LeaseRenewOverdue(*config))) {
    Fence(*config, renewed.message());
    return true;
  }
  return false;
}

std::string InstanceAgent::FenceMarkerPath() const { return JoinPath(options_.instanceDir, "fenced"); }

void InstanceAgent::NoticePostmasterExit(const std::optional<AgentConfig>& config) {
  if (postmasterPid_ <= 0) return;
  auto waitStatus = TryReap(postmasterPid_);
  if (!waitStatus) return;
  std::string how = DescribeWaitStatus(*waitStatus);
  spdlog::warn("postmaster exited instance={} pid={} how=\"{}\"", options_.name, postmasterPid_, how);
  postmasterPid_ = 0;
  bool primary = config && config->role == "primary" && DataDirRole() == "primary";
  // A crashed primary is the controller's call: fail over, or restart here.
  if (primary && !config->restartOnCrash) primaryCrashed_ = true;
  // A postmaster that dies right after starting would crash-loop: back off.
  if (Clock::now() - postmasterStartedAt_ < 10s) {
    retryAfter_ = Clock::now() + backoff_;
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 10s);
  }
  std::lock_guard<std::mutex> lock(mu_);
  status_.postgresRunning = false;
  status_.postgresReady = false;
  status_.postmasterPid = 0;
  status_.lastExit = how;
  status_.restarts++;
  status_.state = primaryCrashed_ ? kStatePrimaryDown : kStateRestarting;
}

void InstanceAgent::Tick() {
  std::optional<AgentConfig> config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = desired_;
  }
  NoticePostmasterExit(config);
  {
    std::string role = DataDirRole();
    std::string version;
    if (auto v = ReadFile(JoinPath(DataDir(), "PG_VERSION")); v.ok()) version = *v;
    std::lock_guard<std::mutex> lock(mu_);
    status_.dataDirRole = role;
    status_.dataDirExists = !role.empty();
    status_.majorVersion = version.empty() ? 0 : std::atoi(version.c_str());
  }
  if (!config) return;
  if (config->fenced) return Fence(*config, "the controller fenced it");
  if (PathExists(FenceMarkerPath())) {
    ::unlink(FenceMarkerPath().c_str());
    spdlog::info("fence lifted instance={} role={}", options_.name, config->role);
    std::lock_guard<std::mutex> lock(mu_);
    status_.fenced = false;
  }
  if (config->restartOnCrash) primaryCrashed_ = false;
  if (Clock::now() < retryAfter_) return;

  auto fail = [&](const Status& st) {
    SetError(st.message());
    SetState(kStateFailed);
    retryAfter_ = Clock::now() + backoff_;
    backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 10s);
  };

  Status st = EnsureDataDirectory(*config);
  if (!st.ok()) return fail(st);

  std::string dirRole = DataDirRole();
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
    st = RenewLease(*config, postmasterPid_ == 0 && !primaryCrashed_);
    if (!st.ok()) {
      if (postmasterPid_ > 0 && (st.code() == StatusCode::kConflict || LeaseRenewOverdue(*config))) {
        Fence(*config, st.message());
      }
      return fail(st);
    }
  }
  if (postmasterPid_ == 0 && primaryCrashed_) {
    if (!MayRestartWithoutController(*config)) {
      SetState(kStatePrimaryDown);
      return;
    }
    primaryCrashed_ = false;
  }

  bool recoveryConfChanged = false;
  auto changed = WriteConfiguration(*config, &recoveryConfChanged);
  if (!changed.ok()) return fail(changed.status());

  if (postmasterPid_ > 0) {
    if (*changed) ApplyChangedConfiguration(*config, recoveryConfChanged);
  } else {
    st = StartPostgres(*config);
    if (!st.ok()) {
      if (config->role == "standby" && RecoveryCannotContinue()) return Repair(*config, "it cannot start recovery");
      return fail(st);
    }
  }
  if (config->role == "standby" && postmasterPid_ > 0 && RecoveryCannotContinue()) {
    return Repair(*config, "its timeline diverged from its upstream's");
  }
  // The prober thread asks PostgreSQL for new connections; a hang blocks
  // it, never this thread (which must stay free to fence).
  {
    std::lock_guard<std::mutex> lock(probeMu_);
    probeParams_ = LocalParams(*config);
    probeActive_ = postmasterPid_ > 0;
  }
  probeWake_.notify_all();
  bool ready = lastPingOk_.load() && postmasterPid_ > 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.postgresRunning = postmasterPid_ > 0;
    status_.postgresReady = ready;
    status_.postmasterPid = postmasterPid_;
    status_.state = ready ? kStateRunning : kStateStarting;
    if (ready) {
      status_.progress.clear();
      status_.lastError.clear();
    }
  }
  if (ready) backoff_ = 500ms;
  if (ready && repairs_ > 0 && Clock::now() - lastRepair_ > 60s) repairs_ = 0;
}

void InstanceAgent::NoteControllerContact() {
  lastControllerContactMs_ =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
}

bool InstanceAgent::MayRestartWithoutController(const AgentConfig& config) {
  // Without a lease nothing proves that no other instance was promoted.
  if (config.lease.empty()) return false;
  auto silence = options_.controllerSilence;
  if (silence <= 0ms) silence = std::max<std::chrono::milliseconds>(30s, 3 * std::chrono::seconds(config.leaseDurationSeconds));
  int64_t nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
  int64_t silentMs = nowMs - lastControllerContactMs_.load();
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

Result<lease::PrimaryLease*> InstanceAgent::OpenedLease(const AgentConfig& config) {
  if (!lease_ || leaseLocation_ != config.lease) {
    auto opened = lease::OpenLease(config.lease);
    if (!opened.ok()) return opened.status();
    lease_ = std::move(opened.value());
    leaseLocation_ = config.lease;
  }
  return lease_.get();
}

Status InstanceAgent::RenewLease(const AgentConfig& config, bool beforeStart) {
  int64_t now = lease::NowMs();
  if (!beforeStart && now - lastRenewMs_ < int64_t{config.retryPeriodSeconds} * 1000) return Status::Ok();
  auto store = OpenedLease(config);
  if (!store.ok()) return store.status();
  auto renewed = (*store)->Renew(options_.name, config.leaseDurationSeconds);
  if (!renewed.ok()) return renewed.status().WithContext("primary lease");
  lastRenewMs_ = now;
  std::lock_guard<std::mutex> lock(mu_);
  status_.lastRenewMs = now;
  return Status::Ok();
}

bool InstanceAgent::LeaseRenewOverdue(const AgentConfig& config) const {
  return lease::NowMs() - lastRenewMs_ > int64_t{config.renewDeadlineSeconds} * 1000;
}

void InstanceAgent::Fence(const AgentConfig& config, const std::string& why) {
  bool wasRunning = postmasterPid_ > 0;
  if (wasRunning) {
    pid_t pid = postmasterPid_;
    if (config.fenceMode == "fast") {
      // A checkpoint while writes still go on leaves little for the
      // shutdown checkpoint to do, so the pause in writes is short.
      if (auto conn = pq::Connection::Open(LocalParams(config)); conn.ok()) (*conn)->Exec("CHECKPOINT").ok();
      // Fast shutdown: walsenders send the last WAL (with the shutdown
      // checkpoint) to the standbys before the postmaster exits.
      if (!StopChild(pid, SIGINT, 30s)) ::kill(-pid, SIGKILL);
    } else {
      // The whole process group at once: no backend commits again.
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      int status;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    postmasterPid_ = 0;
    spdlog::warn("fenced instance={} pid={} mode={} reason=\"{}\"", options_.name, pid, config.fenceMode, why);
  }
  if (!PathExists(FenceMarkerPath())) WriteFileAtomic(FenceMarkerPath(), why + "\n", 0600).ok();
  uint64_t checkpoint = 0;
  int timeline = 0;
  if (wasRunning || !fenceFactsKnown_) {
    ReadControlData(config.majorVersion, &checkpoint, &timeline, nullptr);
    fenceFactsKnown_ = true;
    std::lock_guard<std::mutex> lock(mu_);
    status_.checkpointLsn = checkpoint;
    status_.timeline = timeline;
  }
  std::lock_guard<std::mutex> lock(mu_);
  status_.fenced = true;
  status_.state = kStateFenced;
  status_.postgresRunning = false;
  status_.postgresReady = false;
  status_.postmasterPid = 0;
}

void InstanceAgent::ReadControlData(int major, uint64_t* checkpoint, int* timeline, std::string* state) {
  if (!PathExists(JoinPath(DataDir(), "global/pg_control"))) return;
  ProcessSpec spec;
  spec.argv = {PgBin(major, "pg_controldata"), "-D", DataDir()};
  spec.env = {"LC_ALL=C"};
  if (RunningAsRoot()) spec.runAs = postgresUser_;
  auto result = RunCommand(spec, 10s);
  if (!result.ok() || !result->ok()) return;
  static const std::regex kCheckpoint(R"(Latest checkpoint location:\s+([0-9A-F]+/[0-9A-F]+))");
  static const std::regex kTimeline(R"(Latest checkpoint's TimeLineID:\s+(\d+))");
  std::smatch m;
  if (std::regex_search(result->output, m, kCheckpoint)) *checkpoint = ParseLsn(m[1].str()).value_or(0);
  if (std::regex_search(result->output, m, kTimeline)) *timeline = std::atoi(m[1].str().c_str());
  static const std::regex kState(R"(Database cluster state:\s+([^\n]+))");
  if (state != nullptr && std::regex_search(result->output, m, kState)) *state = m[1].str();
}

Status InstanceAgent::Promote(const AgentConfig& config) {
  if (postmasterPid_ == 0) {
    // Start it as the standby it is; promotion follows once it runs.
    SetState(kStateStarting);
    return StartPostgres(config);
  }
  if (!config.lease.empty()) {
    auto store = OpenedLease(config);
    if (!store.ok()) return store.status();
    auto held = (*store)->Get();
    if (!held.ok()) return held.status();
    if (held->holder != options_.name) {
      return Status::Unavailable("waiting for the primary lease (held by " + held->holder + ") before promoting");
    }
  }
  SetState(kStatePromoting);
  auto started = Clock::now();
  if (postgres::HasPgPromote(config.majorVersion)) {
    auto conn = pq::Connection::Open(LocalParams(config));
    if (!conn.ok()) return Status::Unavailable("promote: " + conn.status().message());
    // pg_promote(wait => true) looks every 100 ms; asking ourselves every
    // 10 ms shortens the unavailability by tens of milliseconds.
    auto rows = (*conn)->Query("SELECT pg_promote(false)");
    if (!rows.ok()) return Status::Unavailable("pg_promote: " + rows.status().message());
    auto deadline = Clock::now() + 60s;
    while (true) {
      auto inRecovery = (*conn)->Query("SELECT pg_is_in_recovery()");
      if (!inRecovery.ok()) return Status::Unavailable("promote: " + inRecovery.status().message());
      if (!inRecovery->empty() && (*inRecovery)[0][0] == std::optional<std::string>("f")) break;
      if (Clock::now() >= deadline) return Status::Unavailable("promotion did not complete within 60s");
      std::this_thread::sleep_for(10ms);
    }
  } else {
    ProcessSpec spec;
    spec.argv = {PgBin(config.majorVersion, "pg_ctl"), "promote", "-w", "-t", "60", "-D", DataDir()};
    if (RunningAsRoot()) spec.runAs = postgresUser_;
    auto result = RunCommand(spec, 90s);
    if (!result.ok() || !result->ok()) {
      return Status::Unavailable("pg_ctl promote failed: " + (result.ok() ? result->output : result.status().message()));
    }
  }
  std::string lsn, timeline;
  if (auto conn = pq::Connection::Open(LocalParams(config)); conn.ok()) {
    // Writes the new timeline into the control file at once (pg_rewind of
    // the old primary reads it there).
    (*conn)->Exec("CHECKPOINT").ok();
    auto rows = (*conn)->Query(
        "SELECT pg_current_wal_lsn()::text, ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int");
    if (rows.ok() && !rows->empty()) {
      lsn = (*rows)[0][0].value_or("");
      timeline = (*rows)[0][1].value_or("");
    }
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  spdlog::info("promoted instance={} lsn={} timeline={} tookMs={}", options_.name, lsn, timeline, ms);
  lastRenewMs_ = 0;
  RenewLease(config, true).ok();
  return Status::Ok();
}

bool InstanceAgent::RecoveryCannotContinue() {
  // New lines of postgres.log since the last look.
  std::string path = JoinPath(options_.instanceDir, "postgres.log");
  auto text = ReadFile(path);
  if (!text.ok()) return false;
  if (text->size() < logOffset_) logOffset_ = 0;
  std::string fresh = text->substr(logOffset_);
  logOffset_ = text->size();
  for (const char* sign : {"before current recovery point", "does not contain minimum recovery point",
                           "is not a child of this server's history", "could not locate a valid checkpoint record",
                           "has already been removed"}) {
    if (fresh.find(sign) != std::string::npos) {
      spdlog::warn("standby cannot continue recovery instance={} sign=\"{}\"", options_.name, sign);
      return true;
    }
  }
  return false;
}

void InstanceAgent::Repair(const AgentConfig& config, const std::string& why) {
  // A standby whose history diverged or whose WAL is gone: rewind it onto
  // its upstream, and re-clone it when that is not enough.
  spdlog::warn("repairing standby instance={} reason=\"{}\" attempt={}", options_.name, why, repairs_ + 1);
  if (postmasterPid_ > 0) StopPostgres();
  lastRepair_ = Clock::now();
  Status st;
  if (repairs_++ == 0) {
    st = Rejoin(config);
  } else {
    spdlog::warn("re-cloning standby instance={} after a rewind did not help", options_.name);
    st = RemoveTree(DataDir());
    repairs_ = 0;
  }
  if (!st.ok()) SetError(st.message());
}

Status InstanceAgent::Rejoin(const AgentConfig& config) {
  // This data directory was a primary; the set has another one now. It
  // comes back as a standby only after pg_rewind has made its history a
  // prefix of the new primary's, or, when that fails, as a fresh clone.
  if (postmasterPid_ > 0) StopPostgres();
  SetState(kStateRewinding, "rewind starting");
  spdlog::info("rewinding instance={} source={}:{}", options_.name, config.upstreamHost, config.upstreamPort);
  {
    // pg_rewind reads the source's timeline from its control file, which a
    // just-promoted server updates only at its next checkpoint: without
    // this, pg_rewind may see no divergence and leave the target unusable.
    pq::ConnectionParams source;
    source.host = config.upstreamHost;
    source.port = config.upstreamPort;
    source.password = config.superuserPassword;
    source.applicationName = "pgrs-rewind";
    auto conn = pq::Connection::Open(source);
    if (!conn.ok()) return Status::Unavailable("rewind source: " + conn.status().message());
    PGRS_RETURN_IF_ERROR((*conn)->Exec("CHECKPOINT"));
  }
  std::string passfile = JoinPath(options_.instanceDir, "superuser.pgpass");
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(passfile, "*:*:*:postgres:" + config.superuserPassword + "\n", 0600));
  PGRS_RETURN_IF_ERROR(ChownPath(passfile, postgresUser_->uid, postgresUser_->gid));
  ProcessSpec spec;
  spec.argv = {PgBin(config.majorVersion, "pg_rewind"), "--target-pgdata=" + DataDir(),
               "--source-server=host=" + postgres::QuoteConnInfoValue(config.upstreamHost) +
                   " port=" + std::to_string(config.upstreamPort) +
                   " user=postgres dbname=postgres connect_timeout=5 passfile=" +
                   postgres::QuoteConnInfoValue(passfile),
               "--progress"};
  spec.env = {"LC_ALL=C.UTF-8"};
  if (RunningAsRoot()) spec.runAs = postgresUser_;
  spec.workingDir = options_.instanceDir;
  auto started = Clock::now();
  auto result = RunCommand(spec, 1h, [&](const std::string& line) {
    if (line.find("kB") != std::string::npos || line.find("rewind") != std::string::npos) {
      SetState(kStateRewinding, "rewind " + line);
    }
  });
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();
  if (!result.ok() || !result->ok()) {
    std::string why = result.ok() ? result->output : result.status().message();
    if (why.size() > 600) why = why.substr(why.size() - 600);
    // A source that cannot be reached is a reason to try again, not to
    // throw this data directory away.
    for (const char* transient : {"could not connect", "server closed the connection", "connection to server",
                                  "timeout expired", "the database system is"}) {
      if (why.find(transient) != std::string::npos) {
        spdlog::warn("rewind could not reach its source instance={} tookMs={}; retrying output=\"{}\"",
                     options_.name, ms, why);
        return Status::Unavailable("pg_rewind could not reach " + config.upstreamHost + ":" +
                                   std::to_string(config.upstreamPort));
      }
    }
    spdlog::warn("rewind failed instance={} tookMs={}; re-cloning output=\"{}\"", options_.name, ms, why);
    // It must be re-cloned: its data directory is deleted for that.
    PGRS_RETURN_IF_ERROR(RemoveTree(DataDir()));
    return Status::Ok();  // the next tick clones it
  }
  spdlog::info("rewound instance={} tookMs={}", options_.name, ms);
  // Mark it a standby at once, before anything can start it.
  bool recoveryConfChanged = false;
  auto written = WriteConfiguration(config, &recoveryConfChanged);
  if (!written.ok()) return written.status();
  return Status::Ok();
}

Status InstanceAgent::EnsureDataDirectory(const AgentConfig& config) {
  if (PathExists(JoinPath(DataDir(), "PG_VERSION"))) {
    auto version = ReadFile(JoinPath(DataDir(), "PG_VERSION"));
    if (version.ok() && std::atoi(version->c_str()) != config.majorVersion) {
      return Status::Invalid("data directory holds PostgreSQL " + std::to_string(std::atoi(version->c_str())) +
                             " but spec.postgres.version is " + std::to_string(config.majorVersion));
    }
    return Status::Ok();
  }
  if (!PathExists(PgBin(config.majorVersion, "postgres"))) {
    return Status::Unavailable("PostgreSQL " + std::to_string(config.majorVersion) + " is not installed (" +
                               PgBin(config.majorVersion, "postgres") + " not found)");
  }
  return config.role == "primary" ? Initdb(config) : Clone(config);
}

Status InstanceAgent::Initdb(const AgentConfig& config) {
  SetState(kStateInitializing, "initdb");
  spdlog::info("initializing data directory instance={} dir={} major={}", options_.name, DataDir(),
               config.majorVersion);
  std::string tmp = DataDir() + ".initdb";
  PGRS_RETURN_IF_ERROR(RemoveTree(tmp));
  std::string pwfile = JoinPath(options_.instanceDir, "superuser.pw");
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(pwfile, config.superuserPassword + "\n", 0600));
  PGRS_RETURN_IF_ERROR(ChownPath(pwfile, postgresUser_->uid, postgresUser_->gid));
  ProcessSpec spec;
  spec.argv = {PgBin(config.majorVersion, "initdb"), "-D", tmp, "-U", "postgres", "--pwfile=" + pwfile,
               "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"};
  if (config.majorVersion < 14) spec.argv.push_back("--auth-local=scram-sha-256");
  spec.env = {"LC_ALL=C.UTF-8"};
  if (RunningAsRoot()) spec.runAs = postgresUser_;
  spec.workingDir = options_.instanceDir;
  auto result = RunCommand(spec, 300s);
  ::unlink(pwfile.c_str());
  if (!result.ok()) return result.status().WithContext("initdb");
  if (!result->ok()) {
    RemoveTree(tmp).ok();
    return Status::Unavailable("initdb failed: " + result->output.substr(result->output.size() > 2000 ? result->output.size() - 2000 : 0));
  }
  if (::rename(tmp.c_str(), DataDir().c_str()) != 0) return Status::Unavailable("rename " + tmp + ": failed");
  spdlog::info("initialized data directory instance={}", options_.name);
  return Status::Ok();
}

Status InstanceAgent::Clone(const AgentConfig& config) {
  SetState(kStateCloning, "clone starting");
  spdlog::info("cloning data directory instance={} from={}:{} slot={}", options_.name, config.upstreamHost,
               config.upstreamPort, config.slotName);
  std::string tmp = DataDir() + ".clone";
  PGRS_RETURN_IF_ERROR(RemoveTree(tmp));
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(PassfilePath(), "*:*:*:" + config.replicationUser + ":" +
                                                           config.replicationPassword + "\n", 0600));
  PGRS_RETURN_IF_ERROR(ChownPath(PassfilePath(), postgresUser_->uid, postgresUser_->gid));
  ProcessSpec spec;
  spec.argv = {PgBin(config.majorVersion, "pg_basebackup"), "-D", tmp, "-h", config.upstreamHost, "-p",
               std::to_string(config.upstreamPort), "-U", config.replicationUser, "-X", "stream",
               "--checkpoint=fast", "--progress", "--no-password"};
  if (!config.slotName.empty()) {
    spec.argv.push_back("--slot=" + config.slotName);
  }
  spec.env = {"PGPASSFILE=" + PassfilePath(), "PGAPPNAME=" + options_.name, "PGCONNECT_TIMEOUT=5"};
  if (RunningAsRoot()) spec.runAs = postgresUser_;
  spec.workingDir = options_.instanceDir;
  static const std::regex kProgress(R"((\d+)/(\d+) kB \((\d+)%\))");
  std::string lastLogged;
  auto result = RunCommand(spec, 6h, [&](const std::string& line) {
    std::smatch m;
    if (std::regex_search(line, m, kProgress)) {
      std::string progress = "clone " + m[1].str() + "/" + m[2].str() + " kB (" + m[3].str() + "%)";
      SetState(kStateCloning, progress);
      if (m[3].str() != lastLogged) {
        lastLogged = m[3].str();
        spdlog::info("clone progress instance={} copiedKB={} totalKB={} percent={}", options_.name, m[1].str(),
                     m[2].str(), m[3].str());
      }
    }
  });
  if (!result.ok()) return result.status().WithContext("pg_basebackup");
  if (!result->ok()) {
    RemoveTree(tmp).ok();
    std::string out = result->output;
    return Status::Unavailable("pg_basebackup failed: " + out.substr(out.size() > 1000 ? out.size() - 1000 : 0));
  }
  // A standby's data directory is marked as such before it ever starts.
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(tmp, postgres::UsesRecoveryConf(config.majorVersion)
                                                         ? "recovery.conf"
                                                         : "standby.signal"),
                                       "", 0600));
  PGRS_RETURN_IF_ERROR(ChownTree(tmp, postgresUser_->uid, postgresUser_->gid));
  if (::rename(tmp.c_str(), DataDir().c_str()) != 0) return Status::Unavailable("rename " + tmp + ": failed");
  spdlog::info("cloned data directory instance={} from={}:{}", options_.name, config.upstreamHost,
               config.upstreamPort);
  return Status::Ok();
}

Result<bool> InstanceAgent::WriteConfiguration(const AgentConfig& config, bool* recoveryConfChanged) {
  bool changed = false;
  *recoveryConfChanged = false;
  if (config.role == "standby") {
    std::string passfile = "*:*:*:" + config.replicationUser + ":" + config.replicationPassword + "\n";
    auto current = ReadFile(PassfilePath());
    // libpq ignores a passfile its group may read, which a volume's fsGroup
    // applied at mount time makes of it: rewritten then too.
    if (!current.ok() || *current != passfile || !HasMode(PassfilePath(), 0600)) {
      PGRS_RETURN_IF_ERROR(WriteFileAtomic(PassfilePath(), passfile, 0600));
      PGRS_RETURN_IF_ERROR(ChownPath(PassfilePath(), postgresUser_->uid, postgresUser_->gid));
    }
  }
  auto generated = postgres::GenerateConfig(ToInstanceConfig(options_.name, config, PassfilePath()));
  for (const auto& file : generated.files) {
    std::string path = JoinPath(DataDir(), file.name);
    auto current = ReadFile(path);
    if (current.ok() && *current == file.content) continue;
    PGRS_RETURN_IF_ERROR(WriteFileAtomic(path, file.content, 0600));
    PGRS_RETURN_IF_ERROR(ChownPath(path, postgresUser_->uid, postgresUser_->gid));
    if (file.name == "recovery.conf") *recoveryConfChanged = true;
    changed = true;
  }
  for (const auto& name : generated.removeFiles) {
    std::string path = JoinPath(DataDir(), name);
    if (PathExists(path)) {
      ::unlink(path.c_str());
      changed = true;
    }
  }
  return changed;
}

void InstanceAgent::StopOrphanPostmaster() {
  // A postmaster left behind by an earlier agent (killed without a chance
  // to stop it) still owns the data directory; we cannot supervise what is
  // not our child, so it is stopped and started again under us.
  auto pidFile = ReadFile(JoinPath(DataDir(), "postmaster.pid"));
  if (!pidFile.ok()) return;
  pid_t pid = std::atoi(pidFile->c_str());
  auto comm = ReadFile("/proc/" + std::to_string(pid) + "/comm");
  if (pid <= 0 || !comm.ok() || comm->rfind("postgres", 0) != 0) return;
  spdlog::warn("stopping orphaned postmaster instance={} pid={}", options_.name, pid);
  ::kill(pid, SIGINT);
  auto deadline = Clock::now() + 60s;
  while (ProcessExists(pid) && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  if (ProcessExists(pid)) ::kill(pid, SIGQUIT);
}

Status InstanceAgent::StartPostgres(const AgentConfig& config) {
  SetState(kStateStarting);
  // A volume's fsGroup, applied by the kubelet at mount time, may have made
  // the data directory group-writable: PostgreSQL would refuse to start.
  auto corrected = EnsurePostgresDirectoryModes(DataDir());
  if (!corrected.ok()) return corrected.status();
  for (const auto& c : *corrected) {
    spdlog::warn("corrected directory permissions instance={} path={} from={:04o} to={:04o}", options_.name, c.path,
                 static_cast<unsigned>(c.before), static_cast<unsigned>(c.after));
  }
  ProcessSpec spec;
  spec.argv = {PgBin(config.majorVersion, "postgres"), "-D", DataDir()};
  spec.env = {"LC_ALL=C.UTF-8", "PGDATA=" + DataDir()};
  if (RunningAsRoot()) spec.runAs = postgresUser_;
  spec.outputFile = JoinPath(options_.instanceDir, "postgres.log");
  spec.workingDir = options_.instanceDir;
  spec.deathSignal = SIGINT;  // if the agent dies, the postmaster shuts down fast
  auto pid = SpawnProcess(spec);
  if (!pid.ok()) return pid.status();
  postmasterPid_ = *pid;
  postmasterStartedAt_ = Clock::now();
  spdlog::info("started postmaster instance={} pid={} role={} port={}", options_.name, *pid, config.role,
               config.port);
  // Wait briefly for it to accept connections, so status is prompt; a slow
  // start (crash recovery) simply goes on in later ticks.
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    if (auto exited = TryReap(postmasterPid_)) {
      postmasterPid_ = 0;
      std::string how = DescribeWaitStatus(*exited);
      std::lock_guard<std::mutex> lock(mu_);
      status_.lastExit = how;
      return Status::Unavailable("postmaster " + how + " at start; see " + spec.outputFile);
    }
    if (pq::Ping(LocalParams(config))) break;
    std::this_thread::sleep_for(50ms);
  }
  return Status::Ok();
}

void InstanceAgent::StopPostgres() {
  if (postmasterPid_ <= 0) return;
  spdlog::info("stopping postmaster instance={} pid={}", options_.name, postmasterPid_);
  // Fast shutdown (SIGINT): clients disconnected, a checkpoint written.
  if (!StopChild(postmasterPid_, SIGINT, 60s)) {
    spdlog::warn("postmaster did not stop in time; killed instance={}", options_.name);
  }
  postmasterPid_ = 0;
  std::lock_guard<std::mutex> lock(mu_);
  status_.postgresRunning = false;
  status_.postgresReady = false;
  status_.postmasterPid = 0;
}

void InstanceAgent::ApplyChangedConfiguration(const AgentConfig& config, bool recoveryConfChanged) {
  bool restart = recoveryConfChanged;  // recovery.conf (11) is read at start only
  if (!restart) {
    // Reload, then ask the server itself whether a setting it just read
    // waits for a restart; pg_conf_load_time tells when it has reloaded.
    auto conn = pq::Connection::Open(LocalParams(config));
    if (!conn.ok()) {
      restart = true;
    } else {
      auto t0 = (*conn)->Query("SELECT extract(epoch FROM clock_timestamp())::float8");
      ::kill(postmasterPid_, SIGHUP);
      auto deadline = Clock::now() + 5s;
      bool reloaded = false;
      while (Clock::now() < deadline && t0.ok()) {
        auto fresh = pq::Connection::Open(LocalParams(config));
        if (fresh.ok()) {
          auto rows = (*fresh)->Query(
              "SELECT extract(epoch FROM pg_conf_load_time())::float8 >= $1::float8, "
              "(SELECT count(*) FROM pg_settings WHERE pending_restart)",
              {*(*t0)[0][0]});
          if (rows.ok() && !rows->empty() && (*rows)[0][0] == std::optional<std::string>("t")) {
            reloaded = true;
            restart = (*rows)[0][1] != std::optional<std::string>("0");
            break;
          }
        }
        std::this_thread::sleep_for(50ms);
      }
      if (!reloaded) restart = true;
    }
  }
  if (!restart) {
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
