#include "operator/local/runtime.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include <cpprest/json.h>

#include "operator/local/repository_secrets.h"
#include "operator/postgres/config.h"
#include "operator/tls/issuer.h"
#include "operator/util/files.h"
#include "operator/util/http.h"
#include "operator/util/log.h"
#include "operator/util/process.h"
#include "operator/util/random.h"
#include "reconcilers/local_control_plane.h"
#include "reconcilers/replicaset.h"

namespace pgrs::local {

using namespace std::chrono_literals;
using executor::InstanceRecord;

namespace {

constexpr char kHost[] = "127.0.0.1";
// The control plane's client certificate for the agents' API (spec.tls).
constexpr char kControlPlaneCertificate[] = "control-plane";

std::string RecordJson(const InstanceRecord& r) {
  web::json::value v = web::json::value::object();
  v["name"] = web::json::value::string(r.name);
  v["index"] = web::json::value::number(r.index);
  v["host"] = web::json::value::string(r.host);
  v["port"] = web::json::value::number(r.port);
  return v.serialize() + "\n";
}

std::optional<InstanceRecord> ParseRecord(const std::string& text) {
  try {
    auto v = web::json::value::parse(text);
    InstanceRecord r;
    r.name = v.at("name").as_string();
    r.index = v.at("index").as_integer();
    r.host = v.at("host").as_string();
    r.port = v.at("port").as_integer();
    if (r.name.empty() || r.index <= 0 || r.port <= 0) return std::nullopt;
    r.listenAddresses = r.host;
    r.clientNetworks = {r.host + "/32"};
    return r;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

int FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

LocalRuntime::LocalRuntime(const LocalStore& store, std::string pgrsBinary)
    : store_(store), pgrsBinary_(std::move(pgrsBinary)) {}

LocalRuntime::~LocalRuntime() { StopAll(); }

std::string LocalRuntime::InstancesDir(const std::string& set) const { return store_.SetDir(set) + "/instances"; }
std::string LocalRuntime::SecretsDir(const std::string& set) const { return store_.SetDir(set) + "/secrets"; }
std::string LocalRuntime::TlsDir(const std::string& set) const { return store_.SetDir(set) + "/tls"; }
std::string LocalRuntime::InstanceDir(const std::string& set, const std::string& name) const {
  return InstancesDir(set) + "/" + name;
}

std::vector<InstanceRecord> LocalRuntime::ListInstances(const api::PostgresReplicaSet& set) {
  std::vector<InstanceRecord> out;
  for (const auto& entry : ListDirectory(InstancesDir(set.metadata.name))) {
    if (entry.size() < 6 || entry.substr(entry.size() - 5) != ".json") continue;
    auto text = ReadFile(InstancesDir(set.metadata.name) + "/" + entry);
    if (!text.ok()) continue;
    if (auto record = ParseRecord(*text)) out.push_back(*record);
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
  return out;
}

Result<std::string> LocalRuntime::Token(const std::string& set, const std::string& name) {
  std::string path = SecretsDir(set) + "/" + name + ".token";
  if (auto token = ReadFile(path); token.ok()) return *token;
  PGRS_RETURN_IF_ERROR(MakeDirs(SecretsDir(set), 0700));
  std::string token = RandomHex(24);
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(path, token, 0600));
  return token;
}

Result<InstanceRecord> LocalRuntime::CreateInstance(const api::PostgresReplicaSet& set, const std::string& name,
                                                    int index) {
  InstanceRecord r;
  r.name = name;
  r.index = index;
  r.host = kHost;
  r.port = set.spec.local.basePort.value_or(api::kDefaultBasePort) + index - 1;
  r.listenAddresses = r.host;
  r.clientNetworks = {r.host + "/32"};
  PGRS_RETURN_IF_ERROR(MakeDirs(InstancesDir(set.metadata.name), 0755));
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(InstancesDir(set.metadata.name) + "/" + name + ".json", RecordJson(r), 0644));
  PGRS_RETURN_IF_ERROR(StartAgent(set, r));
  return r;
}

Status LocalRuntime::StartAgent(const api::PostgresReplicaSet& object, const InstanceRecord& instance) {
  const std::string& set = object.metadata.name;
  auto token = Token(set, instance.name);
  if (!token.ok()) return token.status();
  std::string dir = InstanceDir(set, instance.name);
  PGRS_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  int port = FreeLoopbackPort();
  if (port == 0) return Status::Unavailable("no free loopback port for the agent of " + instance.name);
  ProcessSpec spec;
  spec.argv = {pgrsBinary_, "instance", "--name", instance.name, "--instance-dir", dir, "--listen",
               std::string(kHost) + ":" + std::to_string(port), "--token-file",
               SecretsDir(set) + "/" + instance.name + ".token", "--log-file", dir + "/agent.log"};
  spec.outputFile = dir + "/agent.log";
  // spec.tls: its API is HTTPS with its server certificate and takes only
  // clients with a certificate of the set's CA (the control plane's).
  std::optional<TlsFiles> clientTls;
  if (object.spec.tls.enabled.value_or(true)) {
    PGRS_RETURN_IF_ERROR(ServerCertificate(object, instance).status());
    auto tls = AgentClientTls(object);
    if (!tls.ok()) return tls.status();
    clientTls = *tls;
    const tls::FileCertificateStore certificates(TlsDir(set));
    spec.argv.insert(spec.argv.end(), {"--tls-cert-file", certificates.CertFile(instance.name), "--tls-key-file",
                                       certificates.KeyFile(instance.name), "--tls-client-ca-file", tls->caFile});
  }
  // The data plane outlives the control plane: an agent keeps its
  // PostgreSQL (and, as primary, its lease) when `run` crashes, and the
  // next `run` adopts it. A clean stop of `run` stops it (StopAll).
  spec.deathSignal = 0;
  auto pid = SpawnProcess(spec);
  if (!pid.ok()) return pid.status();
  agents_[set + "/" + instance.name] = {*pid, port, ProcessStartTime(*pid).value_or(0), true, clientTls.has_value()};
  spdlog::info("started agent set={} instance={} pid={} api={}:{}", set, instance.name, *pid, kHost, port);
  // Its API answers within milliseconds; waiting here lets the executor
  // configure it in the same pass.
  std::string url = std::string(clientTls ? "https://" : "http://") + kHost + ":" + std::to_string(port) + "/healthz";
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto exited = TryReap(*pid)) {
      agents_.erase(set + "/" + instance.name);
      return Status::Unavailable("agent of " + instance.name + " " + DescribeWaitStatus(*exited) + "; see " + dir +
                                 "/agent.log");
    }
    auto response = HttpCall("GET", url, "", "", 500ms, clientTls);
    if (response.ok() && response->status == 200) return Status::Ok();
    std::this_thread::sleep_for(20ms);
  }
  return Status::Unavailable("agent of " + instance.name + " does not answer on " + url);
}

Status LocalRuntime::EnsureAgent(const api::PostgresReplicaSet& set, const InstanceRecord& instance) {
  std::string key = set.metadata.name + "/" + instance.name;
  auto it = agents_.find(key);
  std::string how;
  const bool running = it != agents_.end() && Alive(it->second, &how);
  auto decision = reconcilers::DecideAgent({running, true, true, false});
  if (decision.action != reconcilers::AgentAction::kSpawn) return Status::Ok();
  if (it != agents_.end()) {
    spdlog::warn("agent exited set={} instance={} pid={} how=\"{}\"; starting it again", set.metadata.name,
                 instance.name, it->second.pid, how);
    agents_.erase(it);
  }
  return StartAgent(set, instance);
}

void LocalRuntime::StopAgent(const std::string& key) {
  auto it = agents_.find(key);
  if (it == agents_.end()) return;
  // The agent stops PostgreSQL (fast shutdown) before it exits.
  if (!StopAgentProcess(it->second, SIGTERM, 90s)) spdlog::warn("agent did not stop in time; killed agent={}", key);
  agents_.erase(it);
}

bool LocalRuntime::Alive(const Agent& agent, std::string* how) {
  if (agent.child) {
    auto exited = TryReap(agent.pid);
    if (exited && how != nullptr) *how = DescribeWaitStatus(*exited);
    return !exited;
  }
  if (ProcessStartTime(agent.pid) == agent.startTime) return true;
  if (how != nullptr) *how = "ended (adopted, not our child)";
  return false;
}

bool LocalRuntime::StopAgentProcess(const Agent& agent, int signal, std::chrono::milliseconds grace) {
  if (agent.child) return StopChild(agent.pid, signal, grace);
  return StopProcess(agent.pid, agent.startTime, signal, grace);
}

namespace {

std::optional<FoundAgent> ParseAgentProcess(pid_t pid, const std::string& setsDir) {
  std::vector<std::string> argv = ProcessArguments(pid);
  if (argv.size() < 2 || argv[1] != "instance") return std::nullopt;
  auto flag = [&](const std::string& name) -> std::string {
    for (size_t i = 2; i + 1 < argv.size(); ++i) {
      if (argv[i] == name) return argv[i + 1];
    }
    return "";
  };
  // DIR/sets/SET/instances/NAME
  const std::string dir = flag("--instance-dir");
  if (dir.rfind(setsDir, 0) != 0) return std::nullopt;
  const std::string rest = dir.substr(setsDir.size());
  const size_t slash = rest.find('/');
  if (slash == std::string::npos || rest.compare(slash, 11, "/instances/") != 0) return std::nullopt;
  FoundAgent found;
  found.pid = pid;
  found.set = rest.substr(0, slash);
  found.name = rest.substr(slash + 11);
  const std::string listen = flag("--listen");
  const size_t colon = listen.rfind(':');
  if (found.set.empty() || found.name.empty() || found.name.find('/') != std::string::npos ||
      colon == std::string::npos) {
    return std::nullopt;
  }
  found.apiPort = std::atoi(listen.c_str() + colon + 1);
  found.https = !flag("--tls-cert-file").empty();
  auto startTime = ProcessStartTime(pid);
  if (!startTime || found.apiPort <= 0) return std::nullopt;
  found.startTime = *startTime;
  return found;
}

}  // namespace

std::vector<FoundAgent> FindAgentProcesses(const std::string& stateDir) {
  std::vector<FoundAgent> found;
  for (pid_t pid : ListProcessIds()) {
    if (pid == getpid()) continue;
    if (auto agent = ParseAgentProcess(pid, stateDir + "/sets/")) found.push_back(*agent);
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.startTime < b.startTime; });
  return found;
}

int LocalRuntime::AdoptRunningAgents() {
  // Oldest first: the oldest agent of an instance is the one whose
  // PostgreSQL runs.
  std::vector<FoundAgent> found = FindAgentProcesses(store_.stateDir());
  std::vector<Agent> orphans;
  int adopted = 0;
  for (const auto& f : found) {
    const std::string key = f.set + "/" + f.name;
    reconcilers::AgentFacts facts;
    facts.running = true;
    facts.setStored = PathExists(store_.SetDir(f.set) + "/object.json");
    facts.instanceRecorded = PathExists(InstancesDir(f.set) + "/" + f.name + ".json");
    facts.duplicate = agents_.count(key) > 0;
    auto decision = reconcilers::DecideAgent(facts);
    if (decision.action == reconcilers::AgentAction::kAdopt) {
      agents_[key] = {f.pid, f.apiPort, f.startTime, false, f.https};
      adopted++;
      spdlog::info("adopted running agent set={} instance={} pid={} api={}:{}", f.set, f.name, f.pid, kHost,
                   f.apiPort);
    } else if (decision.action == reconcilers::AgentAction::kStopOrphan) {
      spdlog::warn("stopping orphan agent set={} instance={} pid={} reason=\"{}\"", f.set, f.name, f.pid,
                   decision.reason);
      orphans.push_back({f.pid, f.apiPort, f.startTime, false, f.https});
      ::kill(f.pid, SIGTERM);  // all at once, so their PostgreSQL stop in parallel
    }
  }
  for (const auto& orphan : orphans) {
    bool inTime = StopAgentProcess(orphan, SIGTERM, 90s);
    spdlog::info("stopped orphan agent pid={}{}", orphan.pid, inTime ? "" : " (killed: it did not stop in time)");
  }
  return adopted;
}

Status LocalRuntime::DeleteInstance(const api::PostgresReplicaSet& set, const std::string& name) {
  StopAgent(set.metadata.name + "/" + name);
  PGRS_RETURN_IF_ERROR(RemoveTree(InstanceDir(set.metadata.name, name)));
  ::unlink((InstancesDir(set.metadata.name) + "/" + name + ".json").c_str());
  ::unlink((SecretsDir(set.metadata.name) + "/" + name + ".token").c_str());
  return Status::Ok();
}

Result<executor::AgentEndpoint> LocalRuntime::Endpoint(const api::PostgresReplicaSet& set, const std::string& name) {
  auto it = agents_.find(set.metadata.name + "/" + name);
  if (it == agents_.end()) return Status::Unavailable("no agent runs for " + name);
  auto token = Token(set.metadata.name, name);
  if (!token.ok()) return token.status();
  executor::AgentEndpoint endpoint;
  endpoint.url = std::string(it->second.https ? "https://" : "http://") + kHost + ":" +
                 std::to_string(it->second.apiPort);
  endpoint.token = *token;
  if (it->second.https) {
    auto tls = AgentClientTls(set);
    if (!tls.ok()) return tls.status();
    endpoint.tls = *tls;
  }
  return endpoint;
}

Result<tls::KeyPair> LocalRuntime::Certificate(const api::PostgresReplicaSet& set, const std::string& name,
                                               const tls::Subject& subject, tls::Usage usage) {
  tls::FileCertificateStore certificates(TlsDir(set.metadata.name));
  return tls::EnsureSetCertificate(certificates, certificates, set.metadata.name, api::kCertificateAuthorityValidity,
                                   name, subject, usage, api::CertificateValidity(set.spec),
                                   std::chrono::system_clock::now());
}

Result<TlsFiles> LocalRuntime::AgentClientTls(const api::PostgresReplicaSet& set) {
  auto client = Certificate(set, kControlPlaneCertificate, {kControlPlaneCertificate, {}, {}}, tls::Usage::kClient);
  if (!client.ok()) return client.status();
  const tls::FileCertificateStore certificates(TlsDir(set.metadata.name));
  TlsFiles files;
  files.certFile = certificates.CertFile(kControlPlaneCertificate);
  files.keyFile = certificates.KeyFile(kControlPlaneCertificate);
  files.caFile = certificates.CertFile("ca");
  files.verifyName = kHost;  // the agents listen there, and their certificates name it
  return files;
}

Result<executor::SetSecrets> LocalRuntime::Secrets(const api::PostgresReplicaSet& set) {
  const std::string& name = set.metadata.name;
  auto secret = [&](const std::string& file) -> Result<std::string> {
    std::string path = SecretsDir(name) + "/" + file;
    if (auto value = ReadFile(path); value.ok()) return *value;
    PGRS_RETURN_IF_ERROR(MakeDirs(SecretsDir(name), 0700));
    std::string value = RandomHex(16);
    PGRS_RETURN_IF_ERROR(WriteFileAtomic(path, value, 0600));
    return value;
  };
  auto superuser = secret("superuser-password");
  if (!superuser.ok()) return superuser.status();
  auto replication = secret("replication-password");
  if (!replication.ok()) return replication.status();
  // The passfile that status.connection names: for psql and applications.
  std::string pgpass = std::string(kHost) + ":*:*:postgres:" + *superuser + "\n";
  std::string pgpassPath = store_.SetDir(name) + "/pgpass";
  if (auto current = ReadFile(pgpassPath); !current.ok() || *current != pgpass) {
    PGRS_RETURN_IF_ERROR(WriteFileAtomic(pgpassPath, pgpass, 0600));
  }
  executor::SetSecrets secrets;
  secrets.superuserPassword = *superuser;
  secrets.replicationPassword = *replication;
  const std::string context = "postgresreplicaset " + name;
  PGRS_RETURN_IF_ERROR(
      ReadRepositorySecrets(set, store_.stateDir(), reconcilers::RestoreForNewSet(set).has_value(), secrets)
          .WithContext(context));
  if (set.spec.backup && set.spec.backup->encryption.value_or(false)) {
    auto key = EnsureBackupKey(store_.stateDir(), name);
    if (!key.ok()) return key.status().WithContext(context + ": spec.backup.encryption");
    secrets.backupCipherPass = *key;
  }
  if (set.spec.tls.enabled.value_or(true)) {
    auto ca = Certificate(set, "ca", {}, tls::Usage::kServer);
    if (!ca.ok()) return ca.status().WithContext(context + ": spec.tls");
    auto replication = Certificate(set, "replication", {reconcilers::kReplicationUser, {}, {}}, tls::Usage::kClient);
    if (!replication.ok()) return replication.status().WithContext(context + ": spec.tls");
    secrets.tlsCA = ca->certPem;
    secrets.tlsCAFile = tls::FileCertificateStore(TlsDir(name)).CertFile("ca");
    secrets.replicationCertificate = *replication;
  }
  return secrets;
}

Result<tls::KeyPair> LocalRuntime::ServerCertificate(const api::PostgresReplicaSet& set,
                                                     const InstanceRecord& instance) {
  // Clients reach an instance at its address, or as localhost.
  return Certificate(set, instance.name, {instance.name, {"localhost"}, {instance.host}}, tls::Usage::kServer);
}

api::ConnectionStatus LocalRuntime::Connection(const api::PostgresReplicaSet& set,
                                               const std::vector<InstanceRecord>& instances) {
  api::ConnectionStatus c;
  if (instances.empty()) return c;
  std::string hosts, ports;
  for (const auto& r : instances) {
    hosts += (hosts.empty() ? "" : ",") + r.host;
    ports += (ports.empty() ? "" : ",") + std::to_string(r.port);
  }
  std::string base = "host=" + hosts + " port=" + ports + " user=postgres dbname=postgres passfile=" +
                     postgres::QuoteConnInfoValue(store_.SetDir(set.metadata.name) + "/pgpass") + " connect_timeout=5";
  if (set.spec.tls.enabled.value_or(true)) {
    c.caFile = tls::FileCertificateStore(TlsDir(set.metadata.name)).CertFile("ca");
    base += " sslmode=verify-full sslrootcert=" + postgres::QuoteConnInfoValue(c.caFile);
  }
  c.readWrite = base + " target_session_attrs=read-write";
  c.readOnly = base + " target_session_attrs=prefer-standby";
  return c;
}

std::string LocalRuntime::LeaseLocation(const api::PostgresReplicaSet& set) {
  return "file:" + store_.SetDir(set.metadata.name) + "/primary-lease.json";
}

Status LocalRuntime::FenceFromOutside(const api::PostgresReplicaSet& set, const std::string& name) {
  // On this machine "outside" is the process table, as the kubelet's is in
  // a cluster: the postmaster's whole process group is killed (it is the
  // group leader), then the frozen agent. The marker keeps the next agent
  // from starting PostgreSQL again.
  std::string dir = InstanceDir(set.metadata.name, name);
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(dir + "/fenced", "fenced from outside: its agent did not answer\n", 0600));
  if (auto pidFile = ReadFile(dir + "/data/postmaster.pid"); pidFile.ok()) {
    pid_t pid = std::atoi(pidFile->c_str());
    auto comm = ReadFile("/proc/" + std::to_string(pid) + "/comm");
    if (pid > 0 && comm.ok() && comm->rfind("postgres", 0) == 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      spdlog::warn("killed postmaster process group set={} instance={} pid={}", set.metadata.name, name, pid);
    }
  }
  auto it = agents_.find(set.metadata.name + "/" + name);
  if (it != agents_.end()) {
    StopAgentProcess(it->second, SIGKILL, 10s);
    agents_.erase(it);
    spdlog::warn("killed unresponsive agent set={} instance={}", set.metadata.name, name);
  }
  return Status::Ok();
}

void LocalRuntime::StopAll() {
  // Signal every agent first, so that the PostgreSQL instances stop in
  // parallel, then wait for each.
  for (const auto& [key, agent] : agents_) {
    // An adopted agent's pid may have been reused once it ended.
    if (agent.child || ProcessStartTime(agent.pid) == agent.startTime) ::kill(agent.pid, SIGTERM);
  }
  while (!agents_.empty()) StopAgent(agents_.begin()->first);
}

}  // namespace pgrs::local
