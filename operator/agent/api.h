// The agent's HTTP API (see protocol.h for the messages):
//   PUT /config   bearer token; the desired AgentConfig. 202 with its hash,
//                 400 when it does not decode, 409 when it cannot be taken
//                 (a major version change on an existing data directory).
//   GET /status   bearer token; the AgentStatus.
//   GET /healthz  no token; liveness (the Pod's livenessProbe).
//   GET /readyz   no token; 200 while PostgreSQL accepts connections as the
//                 probe last found (the Pod's readinessProbe), else 503.
// PUT /config and GET /status count as the controller's contact, which a
// crashed primary waiting for the controller measures silence by.
#pragma once

#include <functional>

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
};

class AgentApi {
 public:
  explicit AgentApi(AgentApiCalls calls) : calls_(std::move(calls)) {}
  // Registers the four endpoints; before server.Start().
  void Register(HttpServer& server) const;

  HttpResponse Healthz() const;
  HttpResponse Readyz() const;
  HttpResponse GetStatus() const;
  HttpResponse PutConfig(const HttpRequest& request) const;

 private:
  AgentApiCalls calls_;
};

}  // namespace pgrs::agent
