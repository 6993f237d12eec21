// Plain HTTP on loopback, wrapped around cpprestsdk so that nothing else in
// pgrs includes its headers: the agent's API server and the controller's
// client for it. (The Kubernetes client has its own TLS-capable wrapper.)
// Handlers run on cpprestsdk's fixed thread pool: they must return quickly
// and never wait on another request.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "operator/util/status.h"

namespace pgrs {

struct HttpRequest {
  std::string method;  // "GET", "PUT", ...
  std::string path;    // without the query
  std::string query;
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string body;
  std::string contentType = "application/json";
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // `address` is "127.0.0.1:8008". A non-empty `bearerToken` is required
  // on every request except those registered with `open` = true.
  HttpServer(std::string address, std::string bearerToken);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for an exact method and path. Before Start only.
  void Handle(const std::string& method, const std::string& path, Handler handler, bool open = false);
  Status Start();
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Blocking request; call from threads of our own, never from a handler.
// `token` empty = no Authorization header. Transport failures and timeouts
// are Unavailable; any HTTP status is returned as a response.
Result<HttpResponse> HttpCall(const std::string& method, const std::string& url, const std::string& body,
                              const std::string& token, std::chrono::milliseconds timeout);

}  // namespace pgrs
