#include "operator/agent/api.h"

#include "operator/util/log.h"

namespace pgrs::agent {

void AgentApi::Register(HttpServer& server) const {
  server.Handle("GET", "/healthz", [this](const HttpRequest&) { return Healthz(); }, true);
  server.Handle("GET", "/readyz", [this](const HttpRequest&) { return Readyz(); }, true);
  server.Handle("GET", "/status", [this](const HttpRequest&) { return GetStatus(); });
  server.Handle("PUT", "/config", [this](const HttpRequest& req) { return PutConfig(req); });
  server.Handle("POST", "/backup", [this](const HttpRequest& req) { return PostBackup(req); });
  server.Handle("GET", "/backup", [this](const HttpRequest&) { return GetBackup(); });
}

namespace {

HttpResponse Error(int code, const std::string& message) {
  return HttpResponse{code, "{\"error\":\"" + JsonEscape(message) + "\"}"};
}

}  // namespace

HttpResponse AgentApi::Healthz() const { return HttpResponse{200, R"({"ok":true})"}; }

HttpResponse AgentApi::Readyz() const {
  return calls_.ready() ? HttpResponse{200, R"({"ready":true})"} : HttpResponse{503, R"({"ready":false})"};
}

HttpResponse AgentApi::GetStatus() const {
  calls_.controllerContact();
  return HttpResponse{200, EncodeAgentStatus(calls_.status())};
}

HttpResponse AgentApi::PutConfig(const HttpRequest& req) const {
  calls_.controllerContact();
  auto config = DecodeAgentConfig(req.body);
  if (!config.ok()) return Error(400, config.status().message());
  Status st = calls_.setConfig(*config);
  if (!st.ok()) return Error(409, st.message());
  return HttpResponse{202, "{\"configHash\":\"" + ConfigHash(*config) + "\"}"};
}

HttpResponse AgentApi::PostBackup(const HttpRequest& req) const {
  auto request = DecodeBackupRequest(req.body);
  if (!request.ok()) return Error(400, request.status().message());
  auto job = calls_.startBackup(*request);
  if (!job.ok()) {
    switch (job.status().code()) {
      case StatusCode::kConflict: return Error(409, job.status().message());
      case StatusCode::kUnavailable: return Error(503, job.status().message());
      case StatusCode::kInvalid: return Error(400, job.status().message());
      default: return Error(500, job.status().message());
    }
  }
  return HttpResponse{202, EncodeBackupJob(*job)};
}

HttpResponse AgentApi::GetBackup() const {
  auto job = calls_.backupJob();
  if (!job) return Error(404, "no backup was asked of this agent since it started");
  return HttpResponse{200, EncodeBackupJob(*job)};
}

}  // namespace pgrs::agent
