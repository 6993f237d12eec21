#include "operator/agent/postmaster.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <regex>
#include <thread>

#include "operator/agent/permissions.h"
#include "operator/util/files.h"
#include "operator/util/log.h"
#include "operator/util/lsn.h"
#include "operator/util/process.h"

namespace pgrs::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

pq::ConnectionParams LocalParams(const InstanceLayout& layout, const AgentConfig& c) {
  pq::ConnectionParams p;
  p.host = (c.listenAddresses.empty() || c.listenAddresses == "*" || c.listenAddresses == "0.0.0.0")
               ? "127.0.0.1"
               : c.listenAddresses.substr(0, c.listenAddresses.find(','));
  p.port = c.port;
  p.user = "postgres";
  p.password = c.superuserPassword;
  p.connectTimeoutSeconds = 1;
  p.applicationName = "pgrs-agent";
  if (c.tls) p.sslRootCert = layout.TlsCaFile();
  return p;
}

Status Postmaster::Start(const AgentConfig& config, std::string* exitedHow) {
  // A volume's fsGroup, applied by the kubelet at mount time, may have made
  // the data directory group-writable: PostgreSQL would refuse to start.
  auto corrected = EnsurePostgresDirectoryModes(layout_.DataDir());
  if (!corrected.ok()) return corrected.status();
  for (const auto& c : *corrected) {
    spdlog::warn("corrected directory permissions instance={} path={} from={:04o} to={:04o}", layout_.name, c.path,
                 static_cast<unsigned>(c.before), static_cast<unsigned>(c.after));
  }
  ProcessSpec spec = layout_.PostgresProgram(config.majorVersion, "postgres", {"-D", layout_.DataDir()});
  spec.env = {"LC_ALL=C.UTF-8", "PGDATA=" + layout_.DataDir()};
  spec.outputFile = layout_.PostgresLog();
  spec.workingDir = layout_.instanceDir;
  spec.deathSignal = SIGINT;  // if the agent dies, the postmaster shuts down fast
  auto pid = SpawnProcess(spec);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  startedAt_ = Clock::now();
  spdlog::info("started postmaster instance={} pid={} role={} port={}", layout_.name, *pid, config.role,
               config.port);
  // Wait briefly for it to accept connections, so status is prompt; a slow
  // start (crash recovery) simply goes on in later ticks.
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    if (auto exited = TryReap(pid_)) {
      pid_ = 0;
      std::string how = DescribeWaitStatus(*exited);
      if (exitedHow != nullptr) *exitedHow = how;
      return Status::Unavailable("postmaster " + how + " at start; see " + spec.outputFile);
    }
    if (pq::Ping(LocalParams(layout_, config))) break;
    std::this_thread::sleep_for(50ms);
  }
  return Status::Ok();
}

void Postmaster::Stop() {
  if (pid_ <= 0) return;
  spdlog::info("stopping postmaster instance={} pid={}", layout_.name, pid_);
  // Fast shutdown (SIGINT): clients disconnected, a checkpoint written.
  if (!StopChild(pid_, SIGINT, 60s)) {
    spdlog::warn("postmaster did not stop in time; killed instance={}", layout_.name);
  }
  pid_ = 0;
}

void Postmaster::ShutDownFastOrKillGroup(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  // Fast shutdown: walsenders send the last WAL (with the shutdown
  // checkpoint) to the standbys before the postmaster exits.
  if (!StopChild(pid_, SIGINT, grace)) ::kill(-pid_, SIGKILL);
  pid_ = 0;
}

void Postmaster::KillGroup() {
  if (pid_ <= 0) return;
  // The whole process group at once: no backend commits again.
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int status;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = 0;
}

std::optional<std::string> Postmaster::Reap() {
  if (pid_ <= 0) return std::nullopt;
  auto waitStatus = TryReap(pid_);
  if (!waitStatus) return std::nullopt;
  pid_ = 0;
  return DescribeWaitStatus(*waitStatus);
}

void StopOrphanPostmaster(const InstanceLayout& layout) {
  auto pidFile = ReadFile(JoinPath(layout.DataDir(), "postmaster.pid"));
  if (!pidFile.ok()) return;
  pid_t pid = std::atoi(pidFile->c_str());
  auto comm = ReadFile("/proc/" + std::to_string(pid) + "/comm");
  if (pid <= 0 || !comm.ok() || comm->rfind("postgres", 0) != 0) return;
  // A stale postmaster.pid may name a process of another instance now
  // (local mode shares one pid namespace): only a postmaster started on
  // this data directory ("postgres -D DIR") is ours to stop.
  auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmdline.ok()) return;
  const std::string dir = layout.DataDir();
  bool ours = false;
  for (size_t at = cmdline->find(dir); at != std::string::npos && !ours; at = cmdline->find(dir, at + 1)) {
    size_t end = at + dir.size();
    ours = end == cmdline->size() || (*cmdline)[end] == '\0' || (*cmdline)[end] == ' ';
  }
  if (!ours) return;
  spdlog::warn("stopping orphaned postmaster instance={} pid={}", layout.name, pid);
  ::kill(pid, SIGINT);
  auto deadline = Clock::now() + 60s;
  while (ProcessExists(pid) && Clock::now() < deadline) std::this_thread::sleep_for(50ms);
  if (ProcessExists(pid)) ::kill(pid, SIGQUIT);
}

ControlData ParseControlData(const std::string& output) {
  static const std::regex kCheckpoint(R"(Latest checkpoint location:\s+([0-9A-F]+/[0-9A-F]+))");
  static const std::regex kTimeline(R"(Latest checkpoint's TimeLineID:\s+(\d+))");
  static const std::regex kState(R"(Database cluster state:\s+([^\n]+))");
  ControlData data;
  std::smatch m;
  if (std::regex_search(output, m, kCheckpoint)) data.checkpointLsn = ParseLsn(m[1].str()).value_or(0);
  if (std::regex_search(output, m, kTimeline)) data.timeline = std::atoi(m[1].str().c_str());
  if (std::regex_search(output, m, kState)) data.state = m[1].str();
  return data;
}

ControlData ReadControlData(const InstanceLayout& layout, int major) {
  if (!PathExists(JoinPath(layout.DataDir(), "global/pg_control"))) return {};
  ProcessSpec spec = layout.PostgresProgram(major, "pg_controldata", {"-D", layout.DataDir()});
  spec.env = {"LC_ALL=C"};
  auto result = RunCommand(spec, 10s);
  if (!result.ok() || !result->ok()) return {};
  return ParseControlData(result->output);
}

}  // namespace pgrs::agent
