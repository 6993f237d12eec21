// HTTP and HTTPS, wrapped so that nothing else in pgrs includes the headers
// of the libraries behind them: the agent's API server and the controller's
// client for it. (The Kubernetes client has its own TLS-capable wrapper.)
//
// Plain HTTP is served by cpprestsdk's listener. HTTPS is served by a small
// Boost.Beast server of our own, because cpprestsdk's listener does not tell
// a handler whether the peer presented a verified client certificate (its
// http_request carries the remote IP only), and the agent must answer the
// kubelet's probes (no client certificate) on the same port that refuses
// everything else without the control plane's certificate. HTTPS calls use
// a Beast client too: cpprestsdk's client parses the system's CA bundle for
// every new connection (~100 ms with OpenSSL 3), and we trust one CA anyway.
//
// Handlers run on a small fixed pool of threads (cpprestsdk's, or the HTTPS
// server's two): they must return quickly and never wait on another request.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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

// PEM files for one end of a TLS connection.
//  - Server: certFile (chain, leaf first) and keyFile are required; caFile,
//    when set, turns on mutual TLS: a client certificate signed by it is
//    required on every endpoint not registered `open`. verifyName unused.
//  - Client: caFile is required and is the only trust anchor (the system's
//    CAs are not trusted); certFile + keyFile, when set, are presented as the
//    client certificate; verifyName, when set, is the name (DNS or IP) the
//    server's certificate must carry instead of the URL's host (dial an IP,
//    verify a DNS name); it is also sent as SNI. insecureSkipVerify: the
//    server is not verified at all (caFile then unused), as the kubelet's
//    HTTPS probes do; for the test kubelet, not for pgrs's own calls.
// Files are read again when they change (modification time, size, inode):
// by the client before its next new connection, by the server before its
// next handshake (see HttpServer::Reload).
struct TlsFiles {
  std::string certFile;
  std::string keyFile;
  std::string caFile;
  std::string verifyName;
  bool insecureSkipVerify = false;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  // `address` is "127.0.0.1:8008". A non-empty `bearerToken` is required
  // on every request except those registered with `open` = true. With
  // `tls`, the server speaks HTTPS only (plain HTTP fails the handshake).
  HttpServer(std::string address, std::string bearerToken, std::optional<TlsFiles> tls = std::nullopt);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a handler for an exact method and path. Before Start only.
  // An `open` endpoint needs neither the bearer token nor, over mutual TLS,
  // a client certificate (a client that presents one must still present a
  // valid one: a certificate that does not verify fails the handshake).
  void Handle(const std::string& method, const std::string& path, Handler handler, bool open = false);
  // Reads the TLS files (an error names the file and nothing is served) and
  // listens.
  Status Start();
  void Stop();
  // After Start: the port listened on. Over HTTPS the address may name port
  // 0 and this is the port chosen; over plain HTTP, the address's port.
  int Port() const;

  // HTTPS only: reads the TLS files again now. New connections use them;
  // connections already open keep the certificates they were made with. On
  // an error (a missing or half-written file, a key that does not match the
  // certificate) the server keeps its current certificates. The server also
  // checks the files' modification time and size on every new connection
  // and reloads by itself when they changed, so a rotation needs no call.
  Status Reload();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A client for one server (scheme, host and port of `baseUrl`) that keeps
// its connections open between calls. Thread-safe. Blocking; call from
// threads of our own, never from a handler. `token` empty = no
// Authorization header. Transport failures (TLS ones included) and timeouts
// are Unavailable; any HTTP status is returned as a response. With `tls`,
// `baseUrl` must be https://, calls share one kept-alive connection (one
// call at a time; when the server had closed it, the request is sent again
// once on a new one, so keep requests idempotent), and files that changed
// are read again for the next new connection. The host is resolved before
// the deadline starts: dial IP addresses.
class HttpClient {
 public:
  HttpClient(const std::string& baseUrl, std::chrono::milliseconds timeout, std::optional<TlsFiles> tls = std::nullopt);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `pathAndQuery` is relative to baseUrl ("/status", "/backup?id=1").
  Result<HttpResponse> Call(const std::string& method, const std::string& pathAndQuery, const std::string& body,
                            const std::string& token);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// One request on a new connection (an HttpClient made for it).
Result<HttpResponse> HttpCall(const std::string& method, const std::string& url, const std::string& body,
                              const std::string& token, std::chrono::milliseconds timeout);
// With `tls` (nullopt: plain HTTP, as above).
Result<HttpResponse> HttpCall(const std::string& method, const std::string& url, const std::string& body,
                              const std::string& token, std::chrono::milliseconds timeout,
                              const std::optional<TlsFiles>& tls);

}  // namespace pgrs
