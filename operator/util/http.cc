#include "operator/util/http.h"

#include <cpprest/http_client.h>
#include <cpprest/http_listener.h>

#include <mutex>
#include <vector>

namespace pgrs {

namespace http = web::http;

struct HttpServer::Impl {
  std::string address;
  std::string token;
  struct Route {
    std::string method;
    std::string path;
    Handler handler;
    bool open;
  };
  std::vector<Route> routes;
  std::unique_ptr<http::experimental::listener::http_listener> listener;

  static void Reply(http::http_request request, const HttpResponse& response) {
    http::http_response reply(static_cast<http::status_code>(response.status));
    reply.set_body(response.body, response.contentType);
    request.reply(reply).then([](pplx::task<void> t) {
      try {
        t.get();
      } catch (...) {
        // The client went away; nothing to do.
      }
    });
  }

  // Routes and authenticates at once; the handler runs when the body has
  // arrived, in a continuation (so no pool thread waits for the network).
  void Dispatch(http::http_request request) {
    HttpRequest req;
    req.method = request.method();
    req.path = request.relative_uri().path();
    req.query = request.relative_uri().query();
    const Route* route = nullptr;
    bool pathKnown = false;
    for (const auto& r : routes) {
      if (r.path != req.path) continue;
      pathKnown = true;
      if (r.method == req.method) route = &r;
    }
    if (route == nullptr) {
      Reply(request, {pathKnown ? 405 : 404, R"({"error":"no such endpoint"})"});
      return;
    }
    if (!route->open && !token.empty()) {
      auto it = request.headers().find("Authorization");
      if (it == request.headers().end() || it->second != "Bearer " + token) {
        Reply(request, {401, R"({"error":"missing or wrong bearer token"})"});
        return;
      }
    }
    const Handler* handler = &route->handler;
    request.extract_utf8string(true).then([request, req, handler](pplx::task<std::string> body) mutable {
      HttpResponse response;
      try {
        req.body = body.get();
        response = (*handler)(req);
      } catch (const std::exception& e) {
        response = {500, R"({"error":"internal error"})"};
      }
      Reply(request, response);
    });
  }
};

HttpServer::HttpServer(std::string address, std::string bearerToken) : impl_(std::make_unique<Impl>()) {
  impl_->address = std::move(address);
  impl_->token = std::move(bearerToken);
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& method, const std::string& path, Handler handler, bool open) {
  impl_->routes.push_back({method, path, std::move(handler), open});
}

Status HttpServer::Start() {
  try {
    impl_->listener = std::make_unique<http::experimental::listener::http_listener>("http://" + impl_->address);
    impl_->listener->support([impl = impl_.get()](http::http_request request) { impl->Dispatch(request); });
    impl_->listener->open().wait();
  } catch (const std::exception& e) {
    impl_->listener.reset();
    return Status::Unavailable("listen on " + impl_->address + ": " + e.what());
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  if (!impl_ || !impl_->listener) return;
  try {
    impl_->listener->close().wait();
  } catch (...) {
  }
  impl_->listener.reset();
}

Result<HttpResponse> HttpCall(const std::string& method, const std::string& url, const std::string& body,
                              const std::string& token, std::chrono::milliseconds timeout) {
  try {
    http::client::http_client_config config;
    config.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    http::client::http_client client(url, config);
    http::http_request request(method);
    if (!token.empty()) request.headers().add("Authorization", "Bearer " + token);
    if (!body.empty()) request.set_body(body, "application/json");
    auto response = client.request(request).get();
    HttpResponse out;
    out.status = response.status_code();
    out.body = response.extract_utf8string(true).get();
    return out;
  } catch (const std::exception& e) {
    return Status::Unavailable(method + " " + url + ": " + e.what());
  }
}

}  // namespace pgrs
