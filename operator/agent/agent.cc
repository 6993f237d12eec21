#include "operator/agent/agent.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <regex>

#include "operator/postgres/config.h"
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
  p.connectTimeoutSeconds = 2;
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

  server_ = std::make_unique<HttpServer>(options_.listenAddress, options_.token);
  server_->Handle("GET", "/healthz", [](const HttpRequest&) { return HttpResponse{200, R"({"ok":true})"}; }, true);
  server_->Handle("GET", "/status", [this](const HttpRequest&) {
    return HttpResponse{200, EncodeAgentStatus(CurrentStatus())};
  });
  server_->Handle("PUT", "/config", [this](const HttpRequest& req) {
    auto config = DecodeAgentConfig(req.body);
    if (!config.ok()) return HttpResponse{400, "{\"error\":\"" + JsonEscape(config.status().message()) + "\"}"};
    Status st = SetConfig(*config);
    if (!st.ok()) return HttpResponse{409, "{\"error\":\"" + JsonEscape(st.message()) + "\"}"};
    return HttpResponse{202, "{\"configHash\":\"" + ConfigHash(*config) + "\"}"};
  });
  PGRS_RETURN_IF_ERROR(server_->Start());
  supervisor_ = std::thread([this] { SuperviseLoop(); });
  spdlog::info("agent started instance={} api={} dataDir={}", options_.name, options_.listenAddress, DataDir());
  return Status::Ok();
}

void InstanceAgent::RequestStop() {
  std::lock_guard<std::mutex> lock(mu_);
  stopRequested_ = true;
  wake_.notify_all();
}

void InstanceAgent::Wait() {
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
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait_for(lock, 200ms, [this] { return stopRequested_; });
      if (stopRequested_) break;
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

void InstanceAgent::Tick() {
  std::optional<AgentConfig> config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = desired_;
  }
  // Notice a postmaster that has exited, whatever the config says.
  if (postmasterPid_ > 0) {
    if (auto waitStatus = TryReap(postmasterPid_)) {
      std::string how = DescribeWaitStatus(*waitStatus);
      // A postmaster that dies right after starting would crash-loop: back off.
      if (Clock::now() - postmasterStartedAt_ < 10s) {
        retryAfter_ = Clock::now() + backoff_;
        backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, 10s);
      }
      spdlog::warn("postmaster exited instance={} pid={} how=\"{}\"", options_.name, postmasterPid_, how);
      postmasterPid_ = 0;
      std::lock_guard<std::mutex> lock(mu_);
      status_.postgresRunning = false;
      status_.postgresReady = false;
      status_.postmasterPid = 0;
      status_.lastExit = how;
      status_.restarts++;
      status_.state = kStateRestarting;
    }
  }
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
  if (dirRole != config->role) {
    // Turning a standby into a primary is a promotion, and a primary into a
    // standby a rejoin (pg_rewind): explicit operations, never a side
    // effect of rewriting files.
    return fail(Status::Conflict("data directory is a " + dirRole + " but the config asks for a " + config->role +
                                 "; refusing to change roles by rewriting configuration"));
  }

  bool recoveryConfChanged = false;
  auto changed = WriteConfiguration(*config, &recoveryConfChanged);
  if (!changed.ok()) return fail(changed.status());

  if (postmasterPid_ > 0) {
    if (*changed) ApplyChangedConfiguration(*config, recoveryConfChanged);
  } else {
    st = StartPostgres(*config);
    if (!st.ok()) return fail(st);
  }
  bool ready = pq::Ping(LocalParams(*config));
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
    if (!current.ok() || *current != passfile) {
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
