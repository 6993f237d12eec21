// The agent's HTTP API (see protocol.h for the messages):
//   PUT /config   bearer token; the desired AgentConfig. 202 with its hash,
//                 400 when it does not decode, 409 when it cannot be taken
//                 (a major version change on an existing data directory).
//   GET /status   bearer token; the AgentStatus.
//   GET /healthz  no token; liveness (the Pod's livenessProbe).
//   GET /readyz   no token; 200 while PostgreSQL accepts connections as the
//                 probe last found (the Pod's readinessProbe), else 503.
//   POST /backup  bearer token; body BackupRequest {id, type: full|diff|incr}.
//                 Starts `pgbackrest backup` of this instance (a running
//                 primary with spec.backup) on a thread of the agent and
//                 answers 202 with the BackupJob (state Running). Idempotent
//                 by id: when the running or the last job has that id, 202
//                 with it, nothing started. 409 while a job with another id
//                 runs (one at a time), 400 when the body or type is bad, 503
//                 when this instance cannot take a backup now (no
//                 spec.backup, not a running primary, restoring, its stanza
//                 not created yet, the agent stopping): ask again later or
//                 ask the primary.
//   GET /backup   bearer token; 200 with the running or the last BackupJob
//                 (Running | Completed with label and backup | Failed with
//                 error), 404 when none was asked for since the agent started
//                 (jobs live in memory only: ask again with the same id, and
//                 pgBackRest resumes what it had copied).
// PUT /config and GET /status count as the controller's contact, which a
// crashed primary waiting for the controller measures silence by; the backup
// endpoints do not.
#pragma once

#include <functional>
#include <optional>

#include "operator/agent/protocol.h"
#include "operator/util/http.h"
#include "operator/util/status.h"

namespace pgrs::agent {

// What the API asks of the agent. Each call must return quickly (handlers
// run on the HTTP server's small thread pool).
struct AgentApiCalls {
  std::function<AgentStatus()> status;
  std::function<Status(const AgentConfig&)> setConfig;
  std::function<bool()> ready;
  std::function<void()> controllerContact;
  // POST /backup: the job (Conflict, Unavailable or Invalid when none).
  std::function<Result<BackupJob>(const BackupRequest&)> startBackup;
  std::function<std::optional<BackupJob>()> backupJob;
};

class AgentApi {
 public:
  explicit AgentApi(AgentApiCalls calls) : calls_(std::move(calls)) {}
  // Registers the endpoints; before server.Start().
  void Register(HttpServer& server) const;

  HttpResponse Healthz() const;
  HttpResponse Readyz() const;
  HttpResponse GetStatus() const;
  HttpResponse PutConfig(const HttpRequest& request) const;
  HttpResponse PostBackup(const HttpRequest& request) const;
  HttpResponse GetBackup() const;

 private:
  AgentApiCalls calls_;
};

}  // namespace pgrs::agent
