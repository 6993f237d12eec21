#include "e2e/local/harness.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <random>
#include <thread>

#include "operator/util/files.h"

namespace pgrs::e2e {

using namespace std::chrono_literals;

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(100ms);
  }
}

namespace {

bool PortFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

int FreePortRange(int count) {
  std::mt19937 rng(static_cast<unsigned>(getpid()) ^ static_cast<unsigned>(time(nullptr)));
  for (int attempt = 0; attempt < 200; ++attempt) {
    int base = 20000 + static_cast<int>(rng() % 20000);
    bool free = true;
    for (int i = 0; i < count && free; ++i) free = PortFree(base + i);
    if (free) return base;
  }
  return 0;
}

std::string Manifest(const std::string& name, int instances, int basePort, const std::string& extraSpec) {
  return "apiVersion: pgrs.dev/v1alpha1\nkind: PostgresReplicaSet\nmetadata:\n  name: " + name +
         "\nspec:\n  instances: " + std::to_string(instances) + "\n  local:\n    basePort: " +
         std::to_string(basePort) + "\n" + extraSpec;
}

LocalCluster::LocalCluster() {
  const char* binary = std::getenv("PGRS_BINARY");
  binary_ = binary != nullptr ? binary : "pgrs";
  char tmpl[] = "/tmp/pgrs-e2e-XXXXXX";
  char* dir = ::mkdtemp(tmpl);
  if (dir == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return;
  }
  stateDir_ = dir;
  ::chmod(dir, 0755);  // PostgreSQL runs as postgres and must traverse it
}

LocalCluster::~LocalCluster() {
  if (runPid_ > 0) StopRun();
  // Anything left (a test that killed `run` on purpose) is stopped by PID.
  for (int round = 0; round < 2; ++round) {
    auto left = ProcessesUsingStateDir();
    if (left.empty()) break;
    for (pid_t pid : left) ::kill(pid, round == 0 ? SIGTERM : SIGKILL);
    Eventually([&] { return ProcessesUsingStateDir().empty(); }, 20s);
  }
  if (!stateDir_.empty() && std::getenv("PGRS_E2E_KEEP") == nullptr) RemoveTree(stateDir_).ok();
}

CommandResult LocalCluster::Pgrs(const std::vector<std::string>& args, std::chrono::seconds timeout) {
  ProcessSpec spec;
  spec.argv = {binary_};
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  auto result = RunCommand(spec, timeout);
  if (!result.ok()) {
    ADD_FAILURE() << "pgrs failed to run: " << result.status().ToString();
    return {};
  }
  return *result;
}

CommandResult LocalCluster::Local(const std::string& verb, const std::vector<std::string>& args,
                                  std::chrono::seconds timeout) {
  std::vector<std::string> all = {"local", verb, "--state-dir", stateDir_};
  all.insert(all.end(), args.begin(), args.end());
  return Pgrs(all, timeout);
}

CommandResult LocalCluster::ApplyText(const std::string& yaml) {
  std::string file = stateDir_ + "/manifest-" + std::to_string(std::rand()) + ".yaml";
  EXPECT_TRUE(WriteFileAtomic(file, yaml).ok());
  auto result = Local("apply", {"-f", file});
  ::unlink(file.c_str());
  return result;
}

void LocalCluster::StartRun() {
  ProcessSpec spec;
  spec.argv = {binary_, "local", "run", "--state-dir", stateDir_};
  spec.outputFile = stateDir_ + "/run.log";
  auto pid = SpawnProcess(spec);
  ASSERT_TRUE(pid.ok()) << pid.status().ToString();
  runPid_ = *pid;
}

int LocalCluster::StopRun() {
  if (runPid_ <= 0) return -1;
  ::kill(runPid_, SIGTERM);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto exited = TryReap(runPid_)) {
      status = *exited;
      runPid_ = 0;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    std::this_thread::sleep_for(50ms);
  }
  ADD_FAILURE() << "pgrs local run did not stop within 120s";
  StopChild(runPid_, SIGKILL, 5s);
  runPid_ = 0;
  return -1;
}

void LocalCluster::KillRun() {
  if (runPid_ <= 0) return;
  StopChild(runPid_, SIGKILL, 0s);
  runPid_ = 0;
}

api::PostgresReplicaSet LocalCluster::Get(const std::string& name) {
  auto result = Local("get", {name, "-o", "json"}, 30s);
  EXPECT_EQ(result.exitCode, 0) << result.output;
  auto decoded = api::DecodeReplicaSet(result.output);
  if (!decoded.object) {
    ADD_FAILURE() << "cannot decode get output: " << result.output;
    return {};
  }
  return *decoded.object;
}

bool LocalCluster::WaitReady(const std::string& name, std::chrono::seconds timeout) {
  auto result = Local("wait", {name, "--for", "condition=Ready", "--timeout", std::to_string(timeout.count()) + "s"},
                      timeout + 30s);
  if (result.exitCode != 0) {
    auto get = Local("get", {name}, 30s);
    ADD_FAILURE() << "replica set " << name << " not Ready: " << result.output << "\n" << get.output;
    return false;
  }
  return true;
}

pq::ConnectionParams LocalCluster::Params(const std::string& set, int port) {
  pq::ConnectionParams p;
  p.host = "127.0.0.1";
  p.port = port;
  auto password = ReadFile(stateDir_ + "/sets/" + set + "/secrets/superuser-password");
  p.password = password.ok() ? *password : "";
  p.applicationName = "pgrs-e2e";
  return p;
}

Result<std::vector<pq::Row>> LocalCluster::Sql(const std::string& set, int port, const std::string& sql) {
  auto conn = pq::Connection::Open(Params(set, port));
  if (!conn.ok()) return conn.status();
  return (*conn)->Query(sql);
}

Result<std::vector<pq::Row>> LocalCluster::SqlConnInfo(const std::string& conninfo, const std::string& sql) {
  auto conn = pq::Connection::OpenConnInfo(conninfo, "connection string");
  if (!conn.ok()) return conn.status();
  return (*conn)->Query(sql);
}

std::vector<pid_t> LocalCluster::ProcessesUsingStateDir() const {
  std::vector<pid_t> out;
  if (stateDir_.empty()) return out;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* entry = ::readdir(proc)) {
    pid_t pid = std::atoi(entry->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    if (!cmdline.ok()) continue;
    auto stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    if (stat.ok()) {
      auto close = stat->rfind(')');
      if (close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z') continue;  // zombie
    }
    if (cmdline->find(stateDir_) != std::string::npos) out.push_back(pid);
  }
  ::closedir(proc);
  return out;
}

pid_t LocalCluster::AgentPid(const std::string& instance) const {
  const std::string needle = std::string("--name") + '\0' + instance + '\0';
  for (pid_t pid : ProcessesUsingStateDir()) {
    auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
    if (cmdline.ok() && cmdline->find(needle) != std::string::npos) return pid;
  }
  return 0;
}

LocalCluster::AgentApi LocalCluster::AgentEndpoint(const std::string& set, const std::string& instance) const {
  AgentApi api;
  const pid_t pid = AgentPid(instance);
  if (pid <= 0) return api;
  auto cmdline = ReadFile("/proc/" + std::to_string(pid) + "/cmdline");
  const std::string flag = std::string("--listen") + '\0';
  if (cmdline.ok()) {
    const bool https = cmdline->find(std::string("--tls-cert-file") + '\0') != std::string::npos;
    if (size_t at = cmdline->find(flag); at != std::string::npos) {
      const size_t start = at + flag.size();
      api.url = (https ? "https://" : "http://") + cmdline->substr(start, cmdline->find('\0', start) - start);
    }
    if (https) {
      const std::string tlsDir = stateDir_ + "/sets/" + set + "/tls/";
      api.tls = TlsFiles{tlsDir + "control-plane.crt", tlsDir + "control-plane.key", tlsDir + "ca.crt", "127.0.0.1"};
    }
  }
  auto token = ReadFile(stateDir_ + "/sets/" + set + "/secrets/" + instance + ".token");
  if (token.ok()) api.token = *token;
  return api;
}

Result<HttpResponse> LocalCluster::AgentApi::Call(const std::string& method, const std::string& path,
                                                  const std::string& body, const std::string& withToken) const {
  using namespace std::chrono_literals;
  return HttpCall(method, url + path, body, withToken, 10s, tls);
}

std::string LocalCluster::InstanceDir(const std::string& set, const std::string& instance) const {
  return stateDir_ + "/sets/" + set + "/instances/" + instance;
}

pid_t LocalCluster::PostmasterPid(const std::string& set, const std::string& instance) const {
  auto text = ReadFile(InstanceDir(set, instance) + "/data/postmaster.pid");
  return text.ok() ? std::atoi(text->c_str()) : 0;
}

}  // namespace pgrs::e2e
