// The Kubernetes mode end to end without a cluster, for tests and
// benchmarks: the in-memory API server of e2e/kube (HTTPS, a bearer token),
// the process kubelet of e2e/kubelet running each instance Pod's
// `pgrs instance` as a local process with real PostgreSQL, and two
// `pgrs operator` replicas electing a leader; plus what tests ask of them
// (sets, Pods, Services, Secrets, SQL on an instance, evictions).
#pragma once

#include <pwd.h>
#include <signal.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "e2e/kube/apiserver.h"
#include "e2e/kube/operator_process.h"
#include "e2e/kube/test_util.h"
#include "e2e/kubelet/kubelet.h"
#include "operator/api/types.h"
#include "operator/kube/backup_controller.h"
#include "operator/kube/objects.h"
#include "operator/pq/pq.h"
#include "operator/util/http.h"
#include "operator/util/process.h"
#include "operator/util/random.h"

namespace pgrs::e2e {

class KubeEnvironment {
 public:
  using Json = kube::Json;
  using milliseconds = std::chrono::milliseconds;
  using seconds = std::chrono::seconds;
  static constexpr char kNs[] = "db";
  static constexpr char kToken[] = "e2e-operator-token";

  static std::string Encode(const std::string& selector) {
    std::string out;
    for (char c : selector) {
      if (c == '=') out += "%3D";
      else if (c == ',') out += "%2C";
      else out += c;
    }
    return out;
  }

  // Starts the API server (HTTPS), the kubelet and two operator replicas.
  Status Start() {
    auto certs = MakeTestCertificates(dir_.path() + "/certs");
    if (!certs.ok()) return certs.status();
    ApiServerOptions options = TlsServerOptions(*certs);
    options.tokens = {kToken};
    server_ = std::make_unique<ApiServer>(options);
    PGRS_RETURN_IF_ERROR(server_->Start());
    PGRS_RETURN_IF_ERROR(WriteFileAtomic(dir_.path() + "/kubeconfig",
                                         TestKubeconfig(server_->url(), kToken, certs->caFile, "pgrs-system"), 0600));
    auto config = kube::LoadKubeconfig(dir_.path() + "/kubeconfig");
    if (!config.ok()) return config.status();

    KubeletOptions kubelet;
    kubelet.config = *config;
    kubelet.root = dir_.path() + "/node";
    const char* binary = std::getenv("PGRS_BINARY");
    if (binary == nullptr) return Status::Invalid("PGRS_BINARY must name the pgrs binary");
    kubelet.commandMap["/usr/local/bin/pgrs"] = binary;
    // The instance Pod runs as 999:999 (fsGroup 999), the image's postgres
    // user; here that is the host's postgres user.
    struct passwd* postgres = getpwnam("postgres");
    if (postgres == nullptr) return Status::Unavailable("the OS user postgres is needed (install postgresql)");
    kubelet.uidMap[999] = postgres->pw_uid;
    kubelet.gidMap[999] = postgres->pw_gid;
    // Pod addresses of their own, so that two runs on one machine (two
    // worktrees) do not meet: 127.0.X.1 with X in 20..219.
    kubelet.ipBase = "127.0." + std::to_string(20 + std::stoul(RandomHex(1), nullptr, 16) % 200) + ".1";
    kubelet.maxGrace = seconds(5);
    kubelet_ = std::make_unique<ProcessKubelet>(kubelet);
    PGRS_RETURN_IF_ERROR(kubelet_->Start());
    StartOperator("op-1");
    StartOperator("op-2");
    return Status::Ok();
  }

  // Stops everything; after a failure, prints the sets and the Pods' logs
  // and keeps the logs in /tmp/pgrs-kube-e2e-failure.
  void Stop(bool failed) {
    if (failed) {
      std::fprintf(stderr, "---- replica sets ----\n%s\n",
                   server_->CallJson("GET", kube::ReplicaSetResource().Path(kNs)).serialize().c_str());
      for (const auto& pod : Pods("")) {
        std::string dir = kubelet_->PodDir(kNs, kube::NameOf(pod));
        auto log = ReadFile(dir + "/container.log");
        std::string text = log.ok() ? log->substr(log->size() > 3000 ? log->size() - 3000 : 0) : "(no log)";
        std::fprintf(stderr, "---- pod %s (%s) ----\n%s\n", kube::NameOf(pod).c_str(), dir.c_str(), text.c_str());
      }
    }
    // Pods first (they run PostgreSQL), then the operators, then the server.
    if (kubelet_) kubelet_->Stop();
    if (failed) {
      // Logs of the operators and the Pods, kept for a look after the run.
      std::string keep = "/tmp/pgrs-kube-e2e-failure";
      ProcessSpec copy;
      copy.argv = {"/bin/sh", "-c", "rm -rf " + keep + " && mkdir -p " + keep + " && cp " + dir_.path() +
                                       "/*.log " + keep + "/ ; for d in " + dir_.path() +
                                       "/node/pods/*; do cp $d/container.log " + keep +
                                       "/$(basename $d).log 2>/dev/null; done; true"};
      (void)RunCommand(copy, seconds(30));
      std::fprintf(stderr, "logs kept in %s\n", keep.c_str());
    }
    operators_.clear();
    if (server_) server_->Stop();
  }

  void StartOperator(const std::string& identity) {
    std::vector<std::string> args{"--leader-election-namespace", "pgrs-system", "--leader-elect-lease-duration", "4s",
                                  "--leader-elect-renew-deadline", "3s", "--leader-elect-retry-period", "500ms",
                                  "--instance-image", "pgrs:test"};
    args.insert(args.end(), operatorArgs.begin(), operatorArgs.end());
    operators_[identity] = std::make_unique<OperatorProcess>(dir_.path(), identity, args);
  }

  // More flags for `pgrs operator`, set before Start().
  std::vector<std::string> operatorArgs;

  std::string Leader() {
    auto lease = server_->CallJson("GET", kube::LeaseResource().Path("pgrs-system", "pgrs-operator"));
    return kube::GetString(lease, {"spec", "holderIdentity"});
  }

  bool Apply(const std::string& name, int instances, const Json& replication = Json::null()) {
    Json rs = ReplicaSetObject(name, instances);
    rs["metadata"]["namespace"] = Json::string(kNs);
    if (!replication.is_null()) rs["spec"]["replication"] = replication;
    return !server_->CallJson("POST", kube::ReplicaSetResource().Path(kNs), rs).is_null();
  }
  Json Set(const std::string& name) { return server_->CallJson("GET", kube::ReplicaSetResource().Path(kNs, name)); }

  std::vector<Json> List(const kube::Resource& r, const std::string& selector) {
    std::string path = r.Path(kNs) + (selector.empty() ? "" : "?labelSelector=" + Encode(selector));
    Json list = server_->CallJson("GET", path);
    std::vector<Json> out;
    if (list.has_array_field("items")) {
      for (const auto& item : list.at("items").as_array()) out.push_back(item);
    }
    return out;
  }
  std::vector<Json> Pods(const std::string& selector) { return List(kube::PodResource(), selector); }

  // Names of the Pods a Service selects (what its Endpoints would hold,
  // readiness aside).
  std::set<std::string> Selected(const std::string& service) {
    Json svc = server_->CallJson("GET", kube::ServiceResource().Path(kNs, service));
    const Json* selector = kube::GetField(svc, {"spec", "selector"});
    if (selector == nullptr || !selector->is_object() || selector->size() == 0) return {"<no selector>"};
    std::string text;
    for (const auto& [k, v] : selector->as_object()) text += (text.empty() ? "" : ",") + k + "=" + v.as_string();
    std::set<std::string> names;
    for (const auto& pod : Pods(text)) names.insert(kube::NameOf(pod));
    return names;
  }

  // A Secret of the test namespace with these keys (values in clear).
  bool MakeSecret(const std::string& name, const std::vector<std::pair<std::string, std::string>>& data) {
    Json secret = Json::object();
    secret["apiVersion"] = Json::string("v1");
    secret["kind"] = Json::string("Secret");
    secret["metadata"]["name"] = Json::string(name);
    secret["metadata"]["namespace"] = Json::string(kNs);
    for (const auto& [k, v] : data) secret["data"][k] = Json::string(kube::Base64(v));
    return !server_->CallJson("POST", kube::SecretResource().Path(kNs), secret).is_null();
  }

  // A PostgresBackup of `set`; `type` "" leaves spec.type to its default.
  bool MakeBackup(const std::string& name, const std::string& set, const std::string& type = "") {
    Json b = Json::object();
    b["apiVersion"] = Json::string("pgrs.dev/v1alpha1");
    b["kind"] = Json::string("PostgresBackup");
    b["metadata"]["name"] = Json::string(name);
    b["metadata"]["namespace"] = Json::string(kNs);
    b["spec"]["replicaSet"] = Json::string(set);
    if (!type.empty()) b["spec"]["type"] = Json::string(type);
    return !server_->CallJson("POST", kube::BackupResource().Path(kNs), b).is_null();
  }
  Json Backup(const std::string& name) { return server_->CallJson("GET", kube::BackupResource().Path(kNs, name)); }
  std::string BackupPhase(const std::string& name) { return kube::GetString(Backup(name), {"status", "phase"}); }

  std::string SecretValue(const std::string& secret, const std::string& key) {
    return kube::SecretValue(server_->CallJson("GET", kube::SecretResource().Path(kNs, secret)), key);
  }
  std::string PodIp(const std::string& pod) {
    return kube::GetString(server_->CallJson("GET", kube::PodResource().Path(kNs, pod)), {"status", "podIP"});
  }

  bool WaitHealthy(const std::string& name, int instances, seconds timeout) {
    return WaitFor([&] {
      Json rs = Set(name);
      return kube::GetString(rs, {"status", "phase"}) == "Healthy" &&
             kube::GetInt(rs, {"status", "readyInstances"}).value_or(0) == instances &&
             static_cast<int>(Pods(kube::PodSelector(name)).size()) == instances;
    }, timeout);
  }

  Result<std::unique_ptr<pq::Connection>> Connect(const std::string& pod, bool app) {
    pq::ConnectionParams params;
    params.host = PodIp(pod);
    params.port = kube::kPostgresPort;
    params.user = app ? "app" : "postgres";
    params.dbname = app ? "app" : "postgres";
    params.password = SecretValue(SetOf(pod) + (app ? "-app" : "-superuser"), "password");
    // As a client in the cluster would: the server verified (verify-full
    // against its Pod IP) with ca.crt of the set's CA Secret.
    params.sslRootCert = CaFile(SetOf(pod));
    return pq::Connection::Open(params);
  }

  // ca.crt of the Secret NAME-ca in a file for libpq ("" while there is none).
  std::string CaFile(const std::string& set) {
    const std::string ca = SecretValue(set + "-ca", "ca.crt");
    if (ca.empty()) return "";
    const std::string path = dir_.path() + "/" + set + "-ca.crt";
    if (!WriteFileAtomic(path, ca, 0644).ok()) return "";
    return path;
  }
  static std::string SetOf(const std::string& pod) { return pod.substr(0, pod.rfind('-')); }

  // The postmaster's pid, from the agent's status (bearer token from the
  // set's agent Secret).
  int64_t PostmasterPid(const std::string& pod) {
    auto response = HttpCall("GET", "http://" + PodIp(pod) + ":8000/status", "",
                             SecretValue(SetOf(pod) + "-agent", "token"), milliseconds(1000));
    if (!response.ok() || response->status != 200) return 0;
    auto status = kube::ParseJson(response->body);
    return status ? kube::GetInt(*status, {"postmasterPid"}).value_or(0) : 0;
  }

  Json Pod(const std::string& name) { return server_->CallJson("GET", kube::PodResource().Path(kNs, name)); }
  std::string Primary(const std::string& set) { return kube::GetString(Set(set), {"status", "currentPrimary"}); }

  // A multi-host connection string over the set's Pods as they are now.
  std::string PodConninfo(const std::string& set, const std::string& password) {
    std::string hosts, ports;
    for (const auto& pod : Pods(kube::PodSelector(set))) {
      std::string ip = kube::GetString(pod, {"status", "podIP"});
      if (ip.empty()) continue;
      hosts += (hosts.empty() ? "" : ",") + ip;
      ports += (ports.empty() ? "" : ",") + std::to_string(kube::kPostgresPort);
    }
    return "host=" + (hosts.empty() ? std::string("127.0.0.1") : hosts) + " port=" +
           (ports.empty() ? std::string("1") : ports) + " user=app dbname=app password=" + password +
           " target_session_attrs=read-write";
  }

  // The agent's log of the Pod's current incarnation (kept across in-place
  // container restarts, new for a Pod made again).
  std::string ContainerLog(const std::string& pod) {
    auto log = ReadFile(kubelet_->PodDir(kNs, pod) + "/container.log");
    return log.ok() ? *log : "";
  }
  static int Count(const std::string& text, const std::string& needle) {
    int n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) n++;
    return n;
  }

  int64_t RestartCount(const std::string& pod) {
    const Json object = Pod(pod);
    const Json* statuses = kube::GetField(object, {"status", "containerStatuses"});
    if (statuses == nullptr || !statuses->is_array() || statuses->size() == 0) return -1;
    return kube::GetInt(statuses->as_array().at(0), {"restartCount"}).value_or(0);
  }

  // Waits until the Pod exists under another uid than `oldUid`.
  bool WaitReplaced(const std::string& pod, const std::string& oldUid, seconds timeout) {
    return WaitFor([&] {
      std::string uid = kube::UidOf(Pod(pod));
      return !uid.empty() && uid != oldUid;
    }, timeout);
  }

  // The rows of `table` as `pod`'s PostgreSQL has them.
  std::set<int64_t> Rows(const std::string& pod, const std::string& table) {
    std::set<int64_t> out;
    auto conn = Connect(pod, true);
    if (!conn.ok()) return out;
    auto rows = (*conn)->Query("SELECT id FROM " + table);
    if (rows.ok()) {
      for (const auto& r : *rows) out.insert(std::atoll(r[0]->c_str()));
    }
    return out;
  }

  // Failovers in status.failovers, planned ones (switchover, shutdown) apart.
  void CountFailovers(const std::string& set, int* planned, int* unplanned) {
    *planned = *unplanned = 0;
    const Json object = Set(set);
    const Json* failovers = kube::GetField(object, {"status", "failovers"});
    if (failovers == nullptr || !failovers->is_array()) return;
    for (const auto& f : failovers->as_array()) {
      (api::IsPlannedPromotion(kube::GetString(f, {"reason"})) ? *planned : *unplanned) += 1;
    }
  }

  // POST pods/NAME/eviction: the HTTP status (201 evicted, 429 refused by
  // the PodDisruptionBudget).
  int Evict(const std::string& pod) {
    Json eviction = Json::object();
    eviction["apiVersion"] = Json::string("policy/v1");
    eviction["kind"] = Json::string("Eviction");
    eviction["metadata"]["name"] = Json::string(pod);
    eviction["metadata"]["namespace"] = Json::string(kNs);
    return server_->Call("POST", kube::PodResource().Path(kNs, pod) + "/eviction", eviction.serialize()).status;
  }

  TempDir dir_;
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<ProcessKubelet> kubelet_;
  std::map<std::string, std::unique_ptr<OperatorProcess>> operators_;};

}  // namespace pgrs::e2e
