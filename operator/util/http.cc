#include "operator/util/http.h"

#include <cpprest/http_client.h>
#include <cpprest/http_listener.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
// GCC 12 with sanitizers flags a boost::optional in Beast's parser as maybe
// uninitialized (a false positive in Boost's code, fatal with -Werror).
// (clang has no such warning, and -Werror refuses an unknown one.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "operator/util/files.h"

namespace pgrs {

namespace http = web::http;
namespace beast = boost::beast;
namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {

constexpr auto kHandshakeTimeout = std::chrono::seconds(10);
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr std::uint64_t kBodyLimit = 8 * 1024 * 1024;

struct Route {
  std::string method;
  std::string path;
  HttpServer::Handler handler;
  bool open;
};

// What a file looked like, to notice that it was replaced or rewritten
// (a Kubernetes Secret volume swaps a symlink: a new inode).
struct FileStamp {
  bool exists = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtimeNs = 0;
  bool operator==(const FileStamp&) const = default;
};

FileStamp Stamp(const std::string& path) {
  FileStamp s;
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  s.size = st.st_size;
  s.mtimeNs = std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  return s;
}

std::vector<FileStamp> Stamps(const TlsFiles& f) { return {Stamp(f.certFile), Stamp(f.keyFile), Stamp(f.caFile)}; }

// The server's TLS context from the files: TLS 1.2 or later, the
// certificate chain and its key (checked to match), and with a CA file a
// client certificate requested and verified against that CA alone. A client
// that sends none still completes the handshake (peer verification without
// fail-if-no-peer-cert); the routing refuses it on non-open endpoints.
Result<std::shared_ptr<ssl::context>> MakeServerContext(const TlsFiles& f) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::single_dh_use);
  static const unsigned char kSessionContext[] = "pgrs";
  SSL_CTX_set_session_id_context(native, kSessionContext, sizeof(kSessionContext) - 1);
  // No TLS 1.3 session tickets: cpprestsdk's client makes a context per
  // connection and never resumes, and the tickets are written after the
  // handshake, where they only delay the first response.
  SSL_CTX_set_num_tickets(native, 0);
  // The key first: a certificate loaded after a key it does not match
  // drops the key, and the check below then names both files.
  boost::system::error_code ec;
  ctx->use_private_key_file(f.keyFile, ssl::context::pem, ec);
  if (ec) return Status::Invalid("tls: key file " + f.keyFile + ": " + ec.message());
  ctx->use_certificate_chain_file(f.certFile, ec);
  if (ec) return Status::Invalid("tls: certificate file " + f.certFile + ": " + ec.message());
  if (SSL_CTX_check_private_key(native) != 1) {
    return Status::Invalid("tls: key file " + f.keyFile + " does not match certificate file " + f.certFile);
  }
  if (!f.caFile.empty()) {
    ctx->load_verify_file(f.caFile, ec);
    if (ec) return Status::Invalid("tls: client CA file " + f.caFile + ": " + ec.message());
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(f.caFile.c_str())) {
      SSL_CTX_set_client_CA_list(native, names);
    }
    ctx->set_verify_mode(ssl::verify_peer);
  }
  return ctx;
}

// The routes and the bearer token, shared by both transports.
struct Router {
  std::string token;
  std::vector<Route> routes;

  // Routes and authenticates: the handler to run, or nullptr with the
  // refusal in *refusal. `clientVerified`: over mutual TLS, whether the peer
  // presented a certificate that verified (always true otherwise).
  const HttpServer::Handler* Authorize(const std::string& method, const std::string& path,
                                       const std::string* authorization, bool clientVerified,
                                       HttpResponse* refusal) const {
    const Route* route = nullptr;
    bool pathKnown = false;
    for (const auto& r : routes) {
      if (r.path != path) continue;
      pathKnown = true;
      if (r.method == method) route = &r;
    }
    if (route == nullptr) {
      *refusal = {pathKnown ? 405 : 404, R"({"error":"no such endpoint"})"};
      return nullptr;
    }
    if (route->open) return &route->handler;
    if (!clientVerified) {
      *refusal = {403, R"({"error":"a client certificate is required"})"};
      return nullptr;
    }
    if (!token.empty() && (authorization == nullptr || *authorization != "Bearer " + token)) {
      *refusal = {401, R"({"error":"missing or wrong bearer token"})"};
      return nullptr;
    }
    return &route->handler;
  }

  static HttpResponse Run(const HttpServer::Handler& handler, const HttpRequest& req) {
    try {
      return handler(req);
    } catch (const std::exception& e) {
      return {500, R"({"error":"internal error"})"};
    }
  }
};

}  // namespace

struct HttpServer::Impl {
  std::string address;
  Router router;
  std::optional<TlsFiles> tls;
  std::unique_ptr<http::experimental::listener::http_listener> listener;

  // HTTPS: the context new connections use, and the files it was made from.
  std::mutex ctxMu;
  std::shared_ptr<ssl::context> ctx;
  std::vector<FileStamp> ctxStamps;     // of the files ctx was made from
  std::vector<FileStamp> failedStamps;  // of files that last failed to load
  struct TlsListener {
    asio::io_context ioc{2};
    tcp::acceptor acceptor{ioc};
    std::vector<std::thread> threads;
  };
  std::unique_ptr<TlsListener> tlsListener;

  // ---- plain HTTP (cpprestsdk) ----

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

  // The handler runs when the body has arrived, in a continuation (so no
  // pool thread waits for the network).
  void Dispatch(http::http_request request) {
    HttpRequest req;
    req.method = request.method();
    req.path = request.relative_uri().path();
    req.query = request.relative_uri().query();
    auto it = request.headers().find("Authorization");
    HttpResponse refusal;
    const Handler* handler =
        router.Authorize(req.method, req.path, it == request.headers().end() ? nullptr : &it->second, true, &refusal);
    if (handler == nullptr) {
      Reply(request, refusal);
      return;
    }
    request.extract_utf8string(true).then([request, req, handler](pplx::task<std::string> body) mutable {
      HttpResponse response;
      try {
        req.body = body.get();
        response = Router::Run(*handler, req);
      } catch (const std::exception& e) {
        response = {500, R"({"error":"internal error"})"};
      }
      Reply(request, response);
    });
  }

  // ---- HTTPS (Boost.Beast) ----

  Status ReloadContext() {
    auto stamps = Stamps(*tls);
    auto made = MakeServerContext(*tls);
    std::lock_guard<std::mutex> lock(ctxMu);
    if (!made.ok()) {
      failedStamps = stamps;
      return made.status();
    }
    ctx = *made;
    ctxStamps = stamps;
    failedStamps.clear();
    return Status::Ok();
  }

  // The context for a new connection, made again first when the files
  // changed since (and did not already fail to load as they are now).
  std::shared_ptr<ssl::context> ContextForNewConnection() {
    auto stamps = Stamps(*tls);
    {
      std::lock_guard<std::mutex> lock(ctxMu);
      if (stamps == ctxStamps || stamps == failedStamps) return ctx;
    }
    auto status = ReloadContext();
    if (status.ok()) {
      spdlog::info("https server: certificates reloaded address={} cert={}", address, tls->certFile);
    } else {
      spdlog::warn("https server: certificates changed but do not load, keeping the previous ones address={} error={}",
                   address, status.message());
    }
    std::lock_guard<std::mutex> lock(ctxMu);
    return ctx;
  }

  void Accept();
  Status StartTls();
};

namespace {

// One HTTPS connection: handshake, then requests one after another while
// the client keeps the connection alive. All of it on one strand.
class TlsSession : public std::enable_shared_from_this<TlsSession> {
 public:
  TlsSession(tcp::socket socket, std::shared_ptr<ssl::context> ctx, const Router* router, bool mutualTls)
      : ctx_(std::move(ctx)), stream_(std::move(socket), *ctx_), router_(router), mutualTls_(mutualTls) {}

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Handshake(); });
  }

 private:
  void Handshake() {
    beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
    stream_.async_handshake(ssl::stream_base::server, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // plain HTTP, an unknown client CA, a timeout: the connection is dropped
      self->clientVerified_ = !self->mutualTls_ || self->PeerVerified();
      self->Read();
    });
  }

  bool PeerVerified() {
    SSL* ssl = stream_.native_handle();
    X509* peer = SSL_get1_peer_certificate(ssl);
    if (peer == nullptr) return false;
    X509_free(peer);
    return SSL_get_verify_result(ssl) == X509_V_OK;
  }

  void Read() {
    parser_.emplace();
    parser_->body_limit(kBodyLimit);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    beast::http::async_read(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == beast::http::error::end_of_stream) return Close();
    if (ec) return;
    auto& message = parser_->get();
    HttpRequest req;
    req.method = std::string(message.method_string());
    std::string target(message.target());
    auto q = target.find('?');
    req.path = target.substr(0, q);
    if (q != std::string::npos) req.query = target.substr(q + 1);
    std::optional<std::string> authorization;
    auto it = message.find(beast::http::field::authorization);
    if (it != message.end()) authorization = std::string(it->value());
    HttpResponse out;
    const HttpServer::Handler* handler =
        router_->Authorize(req.method, req.path, authorization ? &*authorization : nullptr, clientVerified_, &out);
    if (handler != nullptr) {
      req.body = std::move(message.body());
      out = Router::Run(*handler, req);
    }
    response_ = {};
    response_.version(message.version());
    response_.keep_alive(message.keep_alive());
    response_.result(static_cast<unsigned>(out.status));
    response_.set(beast::http::field::content_type, out.contentType);
    response_.body() = std::move(out.body);
    response_.prepare_payload();
    beast::http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      if (!self->response_.keep_alive()) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
  }

  std::shared_ptr<ssl::context> ctx_;  // before stream_, which uses it
  beast::ssl_stream<beast::tcp_stream> stream_;
  const Router* router_;
  bool mutualTls_;
  bool clientVerified_ = false;
  beast::flat_buffer buffer_;
  std::optional<beast::http::request_parser<beast::http::string_body>> parser_;
  beast::http::response<beast::http::string_body> response_;
};

}  // namespace

void HttpServer::Impl::Accept() {
  tlsListener->acceptor.async_accept(
      asio::make_strand(tlsListener->ioc), [this](beast::error_code ec, tcp::socket socket) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
          // Small request/response exchanges: no Nagle delay
          // between the TLS records of one answer.
          socket.set_option(tcp::no_delay(true), ec);
          std::make_shared<TlsSession>(std::move(socket), ContextForNewConnection(), &router, !tls->caFile.empty())
              ->Start();
        }
        if (tlsListener->acceptor.is_open()) Accept();
      });
}

Status HttpServer::Impl::StartTls() {
  if (tls->certFile.empty() || tls->keyFile.empty()) {
    return Status::Invalid("https server " + address + ": certificate and key files are required");
  }
  PGRS_RETURN_IF_ERROR(ReloadContext());
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return Status::Invalid("https server: address " + address + ": no port");
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto l = std::make_unique<TlsListener>();
  try {
    tcp::resolver resolver(l->ioc);
    tcp::endpoint endpoint = *resolver.resolve(host, port, tcp::resolver::passive).begin();
    l->acceptor.open(endpoint.protocol());
    l->acceptor.set_option(asio::socket_base::reuse_address(true));
    l->acceptor.bind(endpoint);
    l->acceptor.listen(asio::socket_base::max_listen_connections);
  } catch (const std::exception& e) {
    return Status::Unavailable("listen on " + address + ": " + e.what());
  }
  tlsListener = std::move(l);
  Accept();
  for (int i = 0; i < 2; ++i) tlsListener->threads.emplace_back([ioc = &tlsListener->ioc] { ioc->run(); });
  return Status::Ok();
}

HttpServer::HttpServer(std::string address, std::string bearerToken, std::optional<TlsFiles> tls)
    : impl_(std::make_unique<Impl>()) {
  impl_->address = std::move(address);
  impl_->router.token = std::move(bearerToken);
  impl_->tls = std::move(tls);
}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(const std::string& method, const std::string& path, Handler handler, bool open) {
  impl_->router.routes.push_back({method, path, std::move(handler), open});
}

Status HttpServer::Start() {
  if (impl_->tls) return impl_->StartTls();
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
  if (!impl_) return;
  if (impl_->tlsListener) {
    // Stopping the io_context ends every connection: their pending
    // operations are dropped with the context.
    impl_->tlsListener->ioc.stop();
    for (auto& t : impl_->tlsListener->threads) t.join();
    impl_->tlsListener.reset();
  }
  if (!impl_->listener) return;
  try {
    impl_->listener->close().wait();
  } catch (...) {
  }
  impl_->listener.reset();
}

int HttpServer::Port() const {
  if (impl_->tlsListener) {
    boost::system::error_code ec;
    auto endpoint = impl_->tlsListener->acceptor.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
  }
  auto colon = impl_->address.rfind(':');
  return colon == std::string::npos ? 0 : std::atoi(impl_->address.c_str() + colon + 1);
}

Status HttpServer::Reload() {
  if (!impl_->tls) return Status::Invalid("http server " + impl_->address + ": not serving HTTPS");
  return impl_->ReloadContext();
}

namespace {

// The client's TLS context: TLS 1.2 or later, the CA file as the only trust
// anchor (the system's bundle is not read: OpenSSL 3 takes ~100 ms to parse
// it, which is why cpprestsdk's client, that reads it for every new
// connection, is not used for HTTPS), the client certificate if any.
Result<std::shared_ptr<ssl::context>> MakeClientContext(const TlsFiles& f) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (!f.insecureSkipVerify) {
    ctx->load_verify_file(f.caFile, ec);
    if (ec) return Status::Unavailable("tls: CA file " + f.caFile + ": " + ec.message());
    ctx->set_verify_mode(ssl::verify_peer);
  }
  if (!f.certFile.empty()) {
    ctx->use_private_key_file(f.keyFile, ssl::context::pem, ec);
    if (ec) return Status::Unavailable("tls: key file " + f.keyFile + ": " + ec.message());
    ctx->use_certificate_chain_file(f.certFile, ec);
    if (ec) return Status::Unavailable("tls: certificate file " + f.certFile + ": " + ec.message());
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
      return Status::Unavailable("tls: key file " + f.keyFile + " does not match certificate file " + f.certFile);
    }
  }
  return ctx;
}

bool IsIpAddress(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

// HTTPS on one kept-alive connection, made again when it is gone. Blocking:
// each call runs its asynchronous operations on a private io_context, under
// a deadline (the stream closes the socket when it passes).
class TlsClient {
 public:
  TlsClient(std::string host, std::string port, std::string basePath, TlsFiles files, std::chrono::milliseconds timeout)
      : host_(std::move(host)),
        port_(std::move(port)),
        basePath_(std::move(basePath)),
        files_(std::move(files)),
        timeout_(timeout) {
    name_ = files_.verifyName.empty() ? host_ : files_.verifyName;
  }

  Result<HttpResponse> Call(const std::string& method, const std::string& pathAndQuery, const std::string& body,
                            const std::string& token) {
    std::lock_guard<std::mutex> lock(mu_);
    auto stamps = Stamps(files_);
    if (ctx_ == nullptr || stamps != stamps_) {
      // New files serve the next connection; an open one keeps its own.
      auto made = MakeClientContext(files_);
      if (!made.ok()) return made.status();
      ctx_ = *made;
      stamps_ = stamps;
    }
    beast::http::request<beast::http::string_body> request;
    request.method_string(method);
    std::string target = basePath_ + pathAndQuery;
    request.target(target.empty() ? "/" : target);
    request.version(11);
    request.set(beast::http::field::host, name_);
    if (!token.empty()) request.set(beast::http::field::authorization, "Bearer " + token);
    if (!body.empty()) {
      request.set(beast::http::field::content_type, "application/json");
      request.body() = body;
    }
    request.prepare_payload();
    // A kept-alive connection the server closed meanwhile fails at once:
    // then once more on a new one.
    auto result = Exchange(request);
    if (!result.ok() && closedByPeer_) result = Exchange(request);
    return result;
  }

 private:
  Result<HttpResponse> Exchange(const beast::http::request<beast::http::string_body>& request) {
    bool fresh = !stream_.has_value();
    if (fresh) {
      stream_.emplace(ioc_, *ctx_);
      SSL* ssl = stream_->native_handle();
      if (!files_.insecureSkipVerify) {
        X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        int set = IsIpAddress(name_) ? X509_VERIFY_PARAM_set1_ip_asc(param, name_.c_str())
                                     : X509_VERIFY_PARAM_set1_host(param, name_.c_str(), 0);
        if (set != 1) {
          stream_.reset();
          return Status::Invalid("tls: cannot verify the server's certificate against " + name_);
        }
      }
      if (!IsIpAddress(name_)) SSL_set_tlsext_host_name(ssl, name_.c_str());
    }
    beast::http::response<beast::http::string_body> response;
    beast::error_code failure;
    std::string step;
    auto& lowest = beast::get_lowest_layer(*stream_);
    lowest.expires_after(timeout_);
    auto exchange = [&] {
      step = "write";
      beast::http::async_write(*stream_, request, [&](beast::error_code ec, std::size_t) {
        if (ec) {
          failure = ec;
          return;
        }
        step = "read";
        beast::http::async_read(*stream_, buffer_, response, [&](beast::error_code ec, std::size_t) { failure = ec; });
      });
    };
    if (fresh) {
      step = "resolve";
      tcp::resolver resolver(ioc_);
      boost::system::error_code ec;
      auto endpoints = resolver.resolve(host_, port_, ec);
      if (ec) {
        stream_.reset();
        return Status::Unavailable("resolve " + host_ + ": " + ec.message());
      }
      step = "connect";
      lowest.async_connect(endpoints, [&](beast::error_code ec, const tcp::endpoint&) {
        if (ec) {
          failure = ec;
          return;
        }
        lowest.socket().set_option(tcp::no_delay(true), ec);
        step = "TLS handshake";
        stream_->async_handshake(ssl::stream_base::client, [&](beast::error_code ec) {
          if (ec) {
            failure = ec;
            return;
          }
          exchange();
        });
      });
    } else {
      exchange();
    }
    ioc_.restart();
    ioc_.run();
    closedByPeer_ = false;
    if (failure) {
      std::string why = failure == beast::error::timeout ? "timed out" : failure.message();
      if (step == "TLS handshake") {
        long verify = SSL_get_verify_result(stream_->native_handle());
        if (verify != X509_V_OK)
          why += " (server certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
      }
      closedByPeer_ = !fresh && (failure == beast::http::error::end_of_stream || failure == asio::error::eof ||
                                 failure == asio::error::connection_reset || failure == asio::error::broken_pipe ||
                                 failure == ssl::error::stream_truncated);
      stream_.reset();
      buffer_.clear();
      return Status::Unavailable(step + ": " + why);
    }
    lowest.expires_never();
    HttpResponse out;
    out.status = static_cast<int>(response.result_int());
    out.body = std::move(response.body());
    auto type = response.find(beast::http::field::content_type);
    if (type != response.end()) out.contentType = std::string(type->value());
    if (!response.keep_alive()) {
      stream_.reset();
      buffer_.clear();
    }
    return out;
  }

  std::string host_, port_, basePath_;
  TlsFiles files_;
  std::chrono::milliseconds timeout_;
  std::string name_;  // the name verified and sent as SNI and Host
  std::mutex mu_;
  asio::io_context ioc_{1};
  std::shared_ptr<ssl::context> ctx_;
  std::vector<FileStamp> stamps_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;  // the kept-alive connection
  beast::flat_buffer buffer_;
  bool closedByPeer_ = false;  // the last exchange met a kept-alive connection the server had closed
};

}  // namespace

struct HttpClient::Impl {
  std::string baseUrl;
  Status error;                                       // a bad URL, TLS files for plain HTTP
  std::unique_ptr<http::client::http_client> client;  // plain HTTP
  std::unique_ptr<TlsClient> tlsClient;               // HTTPS with TlsFiles
};

HttpClient::HttpClient(const std::string& baseUrl, std::chrono::milliseconds timeout, std::optional<TlsFiles> tls)
    : impl_(std::make_unique<Impl>()) {
  impl_->baseUrl = baseUrl;
  try {
    web::uri uri(baseUrl);
    if (tls) {
      if (uri.scheme() != "https") {
        impl_->error = Status::Invalid(baseUrl + ": TLS files given for a URL that is not https://");
        return;
      }
      if (tls->caFile.empty() && !tls->insecureSkipVerify) {
        impl_->error = Status::Invalid(baseUrl + ": a CA file is required to verify the server");
        return;
      }
      std::string host = uri.host();
      if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      std::string base = uri.path() == "/" ? "" : uri.path();
      if (!uri.query().empty()) base += "?" + uri.query();
      impl_->tlsClient =
          std::make_unique<TlsClient>(host, std::to_string(uri.port() > 0 ? uri.port() : 443), base, *tls, timeout);
      return;
    }
    http::client::http_client_config config;
    config.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    impl_->client = std::make_unique<http::client::http_client>(uri, config);
  } catch (const std::exception& e) {
    impl_->error = Status::Invalid(baseUrl + ": " + e.what());
  }
}

HttpClient::~HttpClient() = default;

Result<HttpResponse> HttpClient::Call(const std::string& method, const std::string& pathAndQuery,
                                      const std::string& body, const std::string& token) {
  const std::string what = method + " " + impl_->baseUrl + pathAndQuery;
  if (!impl_->error.ok()) return impl_->error;
  if (impl_->tlsClient) {
    auto result = impl_->tlsClient->Call(method, pathAndQuery, body, token);
    if (!result.ok()) return Status(result.status().code(), what + ": " + result.status().message());
    return result;
  }
  try {
    http::http_request request(method);
    if (!pathAndQuery.empty()) request.set_request_uri(web::uri(pathAndQuery));
    if (!token.empty()) request.headers().add("Authorization", "Bearer " + token);
    if (!body.empty()) request.set_body(body, "application/json");
    auto response = impl_->client->request(request).get();
    HttpResponse out;
    out.status = response.status_code();
    out.body = response.extract_utf8string(true).get();
    auto type = response.headers().find("Content-Type");
    if (type != response.headers().end()) out.contentType = type->second;
    return out;
  } catch (const std::exception& e) {
    return Status::Unavailable(what + ": " + e.what());
  }
}

Result<HttpResponse> HttpCall(const std::string& method, const std::string& url, const std::string& body,
                              const std::string& token, std::chrono::milliseconds timeout) {
  return HttpClient(url, timeout).Call(method, "", body, token);
}

Result<HttpResponse> HttpCall(const std::string& method, const std::string& url, const std::string& body,
                              const std::string& token, std::chrono::milliseconds timeout,
                              const std::optional<TlsFiles>& tls) {
  return HttpClient(url, timeout, tls).Call(method, "", body, token);
}

}  // namespace pgrs
