#include "operator/agent/api.h"

#include "operator/util/log.h"

namespace pgrs::agent {

void AgentApi::Register(HttpServer& server) const {
  server.Handle("GET", "/healthz", [this](const HttpRequest&) { return Healthz(); }, true);
  server.Handle("GET", "/readyz", [this](const HttpRequest&) { return Readyz(); }, true);
  server.Handle("GET", "/status", [this](const HttpRequest&) { return GetStatus(); });
  server.Handle("PUT", "/config", [this](const HttpRequest& req) { return PutConfig(req); });
}

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
  if (!config.ok()) return HttpResponse{400, "{\"error\":\"" + JsonEscape(config.status().message()) + "\"}"};
  Status st = calls_.setConfig(*config);
  if (!st.ok()) return HttpResponse{409, "{\"error\":\"" + JsonEscape(st.message()) + "\"}"};
  return HttpResponse{202, "{\"configHash\":\"" + ConfigHash(*config) + "\"}"};
}

}  // namespace pgrs::agent
