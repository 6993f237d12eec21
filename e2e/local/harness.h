// Test harness for end-to-end tests of the local mode: a temporary state
// directory, a `pgrs local run` process, the CLI verbs, and SQL through
// libpq. Everything started here is stopped and removed in the destructor,
// by PID, also when a test fails.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "operator/api/types.h"
#include "operator/pq/pq.h"
#include "operator/util/http.h"
#include "operator/util/process.h"

namespace pgrs::e2e {

// Polls `condition` every 100 ms until it holds or `timeout` passes.
bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// A base port with `count` consecutive free ports on 127.0.0.1.
int FreePortRange(int count);

class LocalCluster {
 public:
  LocalCluster();
  ~LocalCluster();

  const std::string& stateDir() const { return stateDir_; }
  // Runs `pgrs ARGS...` to completion (state dir not added).
  CommandResult Pgrs(const std::vector<std::string>& args, std::chrono::seconds timeout = std::chrono::seconds(180));
  // `pgrs local VERB --state-dir DIR ARGS...`
  CommandResult Local(const std::string& verb, const std::vector<std::string>& args = {},
                      std::chrono::seconds timeout = std::chrono::seconds(180));
  CommandResult ApplyText(const std::string& yaml);

  void StartRun();
  // SIGTERM, then waits for `run` to exit; returns its exit code.
  int StopRun();
  // SIGKILL (a crash of the control plane), reaped. Its agents and
  // PostgreSQL keep running; the destructor stops them by PID.
  void KillRun();
  pid_t runPid() const { return runPid_; }

  // The stored object with its status (`pgrs local get -o json`).
  api::PostgresReplicaSet Get(const std::string& name);
  bool WaitReady(const std::string& name, std::chrono::seconds timeout = std::chrono::seconds(120));

  // SQL as the superuser on one instance (host 127.0.0.1).
  pq::ConnectionParams Params(const std::string& set, int port);
  Result<std::vector<pq::Row>> Sql(const std::string& set, int port, const std::string& sql);
  // SQL through a libpq connection string (status.connection.*).
  Result<std::vector<pq::Row>> SqlConnInfo(const std::string& conninfo, const std::string& sql);

  // PIDs of live processes whose command line mentions the state directory
  // (agents and the postgres processes they start).
  std::vector<pid_t> ProcessesUsingStateDir() const;
  std::string InstanceDir(const std::string& set, const std::string& instance) const;
  // The PID of the instance's agent (`pgrs instance --name INSTANCE`), 0 if none.
  pid_t AgentPid(const std::string& instance) const;
  // The postmaster PID from the instance's postmaster.pid (0 if none).
  pid_t PostmasterPid(const std::string& set, const std::string& instance) const;
  // The instance agent's API as `pgrs local run` reaches it: its --listen
  // address (from the agent's command line) and its bearer token.
  struct AgentApi {
    std::string url;  // http(s)://127.0.0.1:PORT; "" when no agent runs
    std::string token;
    // With spec.tls (--tls-cert-file on its command line): the control
    // plane's client certificate and the set's CA, as `run` calls it.
    std::optional<TlsFiles> tls;
    // One request; `token` (not the agent's) for tests that try others.
    Result<HttpResponse> Call(const std::string& method, const std::string& path, const std::string& body,
                              const std::string& token) const;
  };
  AgentApi AgentEndpoint(const std::string& set, const std::string& instance) const;

 private:
  std::string stateDir_;
  pid_t runPid_ = 0;
  std::string binary_;
};

// A manifest for tests: NAME with INSTANCES on BASEPORT, plus extra spec lines.
std::string Manifest(const std::string& name, int instances, int basePort, const std::string& extraSpec = "");

}  // namespace pgrs::e2e
