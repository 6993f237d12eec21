#include "e2e/kube/apiserver.h"
#include "e2e/kube/apiserver_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <sstream>

#include "operator/kube/meta.h"
#include "operator/util/files.h"
#include "operator/util/process.h"
#include "operator/util/random.h"

namespace pgrs::e2e {

using kube::GetString;

namespace apiserver_internal {

std::string UrlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out += ' ';
    } else if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

const char* ReasonPhrase(int code) {
  switch (code) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Status";
  }
}

Json StatusJson(int code, const std::string& reason, const std::string& message, const Json& details) {
  Json s = Json::object();
  s["kind"] = Json::string("Status");
  s["apiVersion"] = Json::string("v1");
  s["metadata"] = Json::object();
  s["status"] = Json::string("Failure");
  s["message"] = Json::string(message);
  s["reason"] = Json::string(reason);
  if (!details.is_null()) s["details"] = details;
  s["code"] = Json::number(code);
  return s;
}

ApiResponse Error(int code, const std::string& reason, const std::string& message, const Json& details) {
  return {code, StatusJson(code, reason, message, details).serialize(), 0};
}

ApiResponse Ok(const Json& body, int code) { return {code, body.serialize(), 0}; }

Json MergePatch(const Json& target, const Json& patch) {
  if (!patch.is_object()) return patch;
  Json result = target.is_object() ? target : Json::object();
  for (const auto& [key, value] : patch.as_object()) {
    if (value.is_null()) {
      if (result.has_field(key)) result.erase(key);
    } else {
      result[key] = MergePatch(result.has_field(key) ? result.at(key) : Json::null(), value);
    }
  }
  return result;
}

// Label selectors: k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k.
bool MatchesSelector(const Json& object, const std::string& selector) {
  if (selector.empty()) return true;
  std::map<std::string, std::string> labels;
  if (const Json* l = kube::GetField(object, {"metadata", "labels"}); l != nullptr && l->is_object()) {
    for (const auto& [k, v] : l->as_object()) labels[k] = v.is_string() ? v.as_string() : "";
  }
  std::vector<std::string> requirements;
  int depth = 0;
  std::string cur;
  for (char c : selector) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      requirements.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  requirements.push_back(cur);
  for (std::string req : requirements) {
    req = Trim(req);
    if (req.empty()) continue;
    auto setOf = [](const std::string& text) {
      std::set<std::string> values;
      auto open = text.find('('), close = text.rfind(')');
      if (open == std::string::npos || close == std::string::npos) return values;
      for (auto& v : Split(text.substr(open + 1, close - open - 1), ',')) values.insert(Trim(v));
      return values;
    };
    size_t pos;
    if ((pos = req.find(" notin ")) != std::string::npos) {
      auto key = Trim(req.substr(0, pos));
      auto values = setOf(req.substr(pos));
      if (labels.count(key) && values.count(labels[key])) return false;
    } else if ((pos = req.find(" in ")) != std::string::npos) {
      auto key = Trim(req.substr(0, pos));
      auto values = setOf(req.substr(pos));
      if (!labels.count(key) || !values.count(labels[key])) return false;
    } else if ((pos = req.find("!=")) != std::string::npos) {
      auto key = Trim(req.substr(0, pos));
      if (labels.count(key) && labels[key] == Trim(req.substr(pos + 2))) return false;
    } else if ((pos = req.find('=')) != std::string::npos) {
      auto key = Trim(req.substr(0, pos));
      size_t valueAt = req.compare(pos, 2, "==") == 0 ? pos + 2 : pos + 1;
      if (!labels.count(key) || labels[key] != Trim(req.substr(valueAt))) return false;
    } else if (req[0] == '!') {
      if (labels.count(Trim(req.substr(1)))) return false;
    } else {
      if (!labels.count(req)) return false;
    }
  }
  return true;
}

ApiResponse Success(int code) {
  Json s = Json::object();
  s["kind"] = Json::string("Status");
  s["apiVersion"] = Json::string("v1");
  s["metadata"] = Json::object();
  s["status"] = Json::string("Success");
  s["code"] = Json::number(code);
  return {code, s.serialize(), 0};
}

ApiResponse NotFound(const std::string& plural, const std::string& name) {
  Json details = Json::object();
  details["name"] = Json::string(name);
  details["kind"] = Json::string(plural);
  return Error(404, "NotFound", plural + " \"" + name + "\" not found", details);
}

ApiResponse Conflict(const std::string& resource, const std::string& name, const std::string& why) {
  Json details = Json::object();
  details["name"] = Json::string(name);
  details["kind"] = Json::string(resource);
  return Error(409, "Conflict", "Operation cannot be fulfilled on " + resource + " \"" + name + "\": " + why, details);
}

bool MatchesLabelSelector(const Json& object, const Json& selector) {
  if (!selector.is_object()) return false;
  const Json* labels = kube::GetField(object, {"metadata", "labels"});
  auto label = [&](const std::string& key) -> std::optional<std::string> {
    if (labels == nullptr || !labels->is_object() || !labels->has_field(key)) return std::nullopt;
    const Json& v = labels->at(key);
    return v.is_string() ? v.as_string() : v.serialize();
  };
  if (const Json* match = kube::GetField(selector, {"matchLabels"}); match != nullptr && match->is_object()) {
    for (const auto& [k, v] : match->as_object()) {
      auto have = label(k);
      if (!have || !v.is_string() || *have != v.as_string()) return false;
    }
  }
  if (const Json* exprs = kube::GetField(selector, {"matchExpressions"}); exprs != nullptr && exprs->is_array()) {
    for (const auto& e : exprs->as_array()) {
      auto have = label(kube::GetString(e, {"key"}));
      std::string op = kube::GetString(e, {"operator"});
      bool listed = false;
      if (const Json* values = kube::GetField(e, {"values"}); values != nullptr && values->is_array() && have) {
        for (const auto& v : values->as_array()) listed = listed || (v.is_string() && v.as_string() == *have);
      }
      if (op == "In" && !listed) return false;
      if (op == "NotIn" && listed) return false;
      if (op == "Exists" && !have) return false;
      if (op == "DoesNotExist" && have) return false;
    }
  }
  return true;
}

std::string NowRfc3339() { return kube::FormatRfc3339(std::chrono::system_clock::now()); }

}  // namespace apiserver_internal

using namespace apiserver_internal;

ApiServer::Parsed ApiServer::Parsed::From(const std::string& method, const std::string& pathAndQuery) {
  Parsed p;
  p.method = method;
  auto qpos = pathAndQuery.find('?');
  p.path = pathAndQuery.substr(0, qpos);
  if (qpos != std::string::npos) {
    for (const auto& pair : Split(pathAndQuery.substr(qpos + 1), '&')) {
      if (pair.empty()) continue;
      auto eq = pair.find('=');
      p.query[UrlDecode(pair.substr(0, eq))] = eq == std::string::npos ? "" : UrlDecode(pair.substr(eq + 1));
    }
  }
  auto parts = Split(p.path, '/');  // "", "api"|"apis", ...
  size_t i;
  std::string prefix;
  if (parts.size() >= 3 && parts[1] == "api") {
    prefix = "/api/" + parts[2];
    i = 3;
  } else if (parts.size() >= 4 && parts[1] == "apis") {
    prefix = "/apis/" + parts[2] + "/" + parts[3];
    i = 4;
  } else {
    return p;
  }
  std::vector<std::string> rest(parts.begin() + static_cast<long>(i), parts.end());
  if (rest.size() >= 3 && rest[0] == "namespaces") {
    p.ns = rest[1];
    rest.erase(rest.begin(), rest.begin() + 2);
  }
  if (rest.empty() || rest.size() > 3 || rest[0].empty()) return p;
  p.plural = rest[0];
  if (rest.size() >= 2) p.name = rest[1];
  if (rest.size() == 3) p.subresource = rest[2];
  p.base = prefix + "/" + p.plural;
  p.valid = true;
  return p;
}

// One client connection, plain or TLS.
struct ApiServer::Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string buffer;

  ssize_t Read(char* data, size_t n) {
    if (ssl != nullptr) {
      int r = SSL_read(ssl, data, static_cast<int>(n));
      return r > 0 ? r : -1;
    }
    ssize_t r = recv(fd, data, n, 0);
    return r > 0 ? r : -1;
  }
  bool Write(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t r;
      if (ssl != nullptr) {
        r = SSL_write(ssl, data.data() + off, static_cast<int>(data.size() - off));
      } else {
        r = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      }
      if (r <= 0) return false;
      off += static_cast<size_t>(r);
    }
    return true;
  }
  // True while the peer has not closed its end (nothing else is expected
  // from it during a watch).
  bool PeerOpen() {
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return true;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) == 0;
  }
};

ApiServer::ApiServer(ApiServerOptions options) : options_(std::move(options)) {
  tokens_ = options_.tokens;
  janitor_ = std::thread([this] { Janitor(); });
}

ApiServer::~ApiServer() {
  Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    janitorStop_ = true;
    janitorCv_.notify_all();
  }
  if (janitor_.joinable()) janitor_.join();
  if (sslCtx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(sslCtx_));
}

std::string ApiServer::url() const {
  std::string host = options_.bindAddress.find(':') != std::string::npos ? "[" + options_.bindAddress + "]"
                                                                           : options_.bindAddress;
  return std::string(options_.tls ? "https" : "http") + "://" + host + ":" + std::to_string(port_);
}

Status ApiServer::Start() {
  signal(SIGPIPE, SIG_IGN);
  if (options_.tls && sslCtx_ == nullptr) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (SSL_CTX_use_certificate_chain_file(ctx, options_.certFile.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, options_.keyFile.c_str(), SSL_FILETYPE_PEM) != 1) {
      SSL_CTX_free(ctx);
      return Status::Invalid("test api server: cannot load server certificate " + options_.certFile);
    }
    if (!options_.clientCaFile.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, options_.clientCaFile.c_str(), nullptr) != 1) {
        SSL_CTX_free(ctx);
        return Status::Invalid("test api server: cannot load client CA " + options_.clientCaFile);
      }
      SSL_CTX_set_client_CA_list(ctx, SSL_load_client_CA_file(options_.clientCaFile.c_str()));
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    sslCtx_ = ctx;
  }
  bool v6 = options_.bindAddress.find(':') != std::string::npos;
  int fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage storage{};
  socklen_t len;
  uint16_t wantPort = static_cast<uint16_t>(port_ != 0 ? port_ : options_.port);
  if (v6) {
    auto* addr = reinterpret_cast<sockaddr_in6*>(&storage);
    addr->sin6_family = AF_INET6;
    inet_pton(AF_INET6, options_.bindAddress.c_str(), &addr->sin6_addr);
    addr->sin6_port = htons(wantPort);
    len = sizeof(sockaddr_in6);
  } else {
    auto* addr = reinterpret_cast<sockaddr_in*>(&storage);
    addr->sin_family = AF_INET;
    inet_pton(AF_INET, options_.bindAddress.c_str(), &addr->sin_addr);
    addr->sin_port = htons(wantPort);
    len = sizeof(sockaddr_in);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&storage), len) != 0 || listen(fd, 128) != 0) {
    std::string err = strerror(errno);
    close(fd);
    return Status::Unavailable("test api server: listen on " + options_.bindAddress + ": " + err);
  }
  getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &len);
  port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  std::lock_guard<std::mutex> lock(connMu_);
  running_ = true;
  listenFd_ = fd;
  acceptThread_ = std::thread([this, fd] { AcceptLoop(fd); });
  return Status::Ok();
}

void ApiServer::Stop() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(connMu_);
    if (!running_) return;
    running_ = false;
    generationOfServer_.fetch_add(1);
    shutdown(listenFd_, SHUT_RDWR);
    for (int fd : connFds_) shutdown(fd, SHUT_RDWR);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed_.notify_all();
  }
  if (acceptThread_.joinable()) acceptThread_.join();
  {
    std::lock_guard<std::mutex> lock(connMu_);
    threads.swap(connThreads_);
  }
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> lock(connMu_);
  close(listenFd_);
  listenFd_ = -1;
}

Status ApiServer::Restart(bool compact) {
  Stop();
  if (compact) Compact();
  return Start();
}

void ApiServer::AcceptLoop(int listenFd) {
  while (true) {
    int fd = accept4(listenFd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(connMu_);
    if (!running_) {
      close(fd);
      return;
    }
    connFds_.push_back(fd);
    connThreads_.emplace_back([this, fd] { ServeConnection(fd); });
  }
}

void ApiServer::ServeConnection(int fd) {
  Conn conn;
  conn.fd = fd;
  bool certAuthenticated = false;
  auto finish = [&] {
    if (conn.ssl != nullptr) {
      SSL_shutdown(conn.ssl);
      SSL_free(conn.ssl);
    }
    std::lock_guard<std::mutex> lock(connMu_);
    connFds_.erase(std::remove(connFds_.begin(), connFds_.end(), fd), connFds_.end());
    close(fd);
  };
  if (sslCtx_ != nullptr) {
    conn.ssl = SSL_new(static_cast<SSL_CTX*>(sslCtx_));
    SSL_set_fd(conn.ssl, fd);
    if (SSL_accept(conn.ssl) != 1) {
      ERR_clear_error();
      finish();
      return;
    }
    X509* peer = SSL_get1_peer_certificate(conn.ssl);
    certAuthenticated = peer != nullptr && SSL_get_verify_result(conn.ssl) == X509_V_OK;
    X509_free(peer);
  }
  char chunk[16384];
  while (true) {
    // Headers.
    size_t headerEnd;
    while ((headerEnd = conn.buffer.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = conn.Read(chunk, sizeof(chunk));
      if (n <= 0) return finish();
      conn.buffer.append(chunk, static_cast<size_t>(n));
    }
    std::string head = conn.buffer.substr(0, headerEnd);
    conn.buffer.erase(0, headerEnd + 4);
    auto lines = Split(head, '\n');
    std::istringstream requestLine(lines[0]);
    std::string method, target;
    requestLine >> method >> target;
    std::map<std::string, std::string> headers;
    for (size_t i = 1; i < lines.size(); ++i) {
      auto colon = lines[i].find(':');
      if (colon == std::string::npos) continue;
      std::string key = lines[i].substr(0, colon);
      std::transform(key.begin(), key.end(), key.begin(), ::tolower);
      std::string value = Trim(lines[i].substr(colon + 1));
      if (!value.empty() && value.back() == '\r') value.pop_back();
      headers[key] = value;
    }
    size_t length = headers.count("content-length") ? std::stoul(headers["content-length"]) : 0;
    while (conn.buffer.size() < length) {
      ssize_t n = conn.Read(chunk, sizeof(chunk));
      if (n <= 0) return finish();
      conn.buffer.append(chunk, static_cast<size_t>(n));
    }
    std::string body = conn.buffer.substr(0, length);
    conn.buffer.erase(0, length);

    {
      std::lock_guard<std::mutex> lock(mu_);
      requestLog_.push_back(method + " " + target);
      if (requestLog_.size() > 20000) requestLog_.pop_front();
    }

    // Faults first: they stand for a sick server, before authentication.
    std::optional<Fault> fault;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = faults_.begin(); it != faults_.end(); ++it) {
        if (!it->method.empty() && it->method != method) continue;
        if (!it->pathContains.empty() && target.find(it->pathContains) == std::string::npos) continue;
        fault = *it;
        if (it->count > 0 && --it->count == 0) faults_.erase(it);
        break;
      }
    }
    ApiResponse response;
    bool answered = false;
    if (fault) {
      if (fault->kind == Fault::Kind::kClose) return finish();
      if (fault->kind == Fault::Kind::kDelay) {
        std::this_thread::sleep_for(fault->delay);
      } else {
        response = Error(fault->status, fault->status == 429 ? "TooManyRequests" : "InternalError",
                         "injected fault");
        response.retryAfterSeconds = fault->retryAfterSeconds;
        answered = true;
      }
    }
    if (!answered) {
      bool authRequired;
      bool tokenOk = false;
      bool tokenRejected = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        authRequired = !tokens_.empty() || !options_.clientCaFile.empty();
        auto auth = headers.find("authorization");
        if (auth != headers.end() && auth->second.rfind("Bearer ", 0) == 0) {
          std::string token = auth->second.substr(7);
          tokenOk = std::find(tokens_.begin(), tokens_.end(), token) != tokens_.end();
          // An issued token that expired or whose Pod is gone fails even
          // where anonymous requests pass: a real server answers 401 to a
          // bearer token it cannot authenticate.
          TokenCheck issued = tokenOk ? TokenCheck::kNotIssued : CheckTokenLocked(token);
          tokenOk = tokenOk || issued == TokenCheck::kValid;
          tokenRejected = issued == TokenCheck::kInvalid;
        }
      }
      if ((authRequired && !certAuthenticated && !tokenOk) || tokenRejected) {
        response = Error(401, "Unauthorized", "Unauthorized");
        answered = true;
      }
    }
    if (!answered) {
      Parsed req = Parsed::From(method, target);
      if (req.valid && req.IsWatch()) {
        StreamWatch(conn, req);
        return finish();
      }
      response = Dispatch(method, target, body);
    }
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " + ReasonPhrase(response.status) +
                      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(response.body.size()) +
                      "\r\n";
    if (response.retryAfterSeconds > 0) out += "Retry-After: " + std::to_string(response.retryAfterSeconds) + "\r\n";
    out += "\r\n" + response.body;
    if (!conn.Write(out)) return finish();
    auto connection = headers.find("connection");
    if (connection != headers.end() && connection->second == "close") return finish();
  }
}

void ApiServer::StreamWatch(Conn& conn, const Parsed& req) {
  activeWatches_.fetch_add(1);
  struct Leave {
    std::atomic<int>& n;
    ~Leave() { n.fetch_sub(1); }
  } leave{activeWatches_};
  uint64_t serverGeneration = generationOfServer_.load();
  bool bookmarks = req.Q("allowWatchBookmarks") == "true";
  int timeoutSeconds = req.Q("timeoutSeconds").empty() ? 1800 : std::stoi(req.Q("timeoutSeconds"));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeoutSeconds);
  std::string selector = req.Q("labelSelector");
  std::string rvText = req.Q("resourceVersion");

  if (!conn.Write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
  auto sendLine = [&](const std::string& type, const Json& object) {
    Json event = Json::object();
    event["type"] = Json::string(type);
    event["object"] = object;
    std::string line = event.serialize() + "\n";
    size_t step = options_.splitWatchChunks ? 16 : line.size();
    std::string out;
    for (size_t off = 0; off < line.size(); off += step) {
      std::string piece = line.substr(off, step);
      char size[32];
      std::snprintf(size, sizeof(size), "%zx\r\n", piece.size());
      out += size + piece + "\r\n";
    }
    return conn.Write(out);
  };

  std::vector<std::pair<std::string, Json>> batch;
  int64_t cursor = 0;
  std::string kind;
  {
    std::lock_guard<std::mutex> lock(mu_);
    kind = kinds_[req.base];
    if (rvText.empty() || rvText == "0") {
      auto it = store_.find(req.base);
      if (it != store_.end()) {
        for (const auto& [key, object] : it->second) {
          if (!req.ns.empty() && kube::NamespaceOf(object) != req.ns) continue;
          if (!MatchesSelector(object, selector)) continue;
          batch.emplace_back("ADDED", object);
        }
      }
      cursor = rv_;
    } else {
      cursor = std::stoll(rvText);
      if (cursor < compactedRv_) {
        batch.emplace_back("ERROR", StatusJson(410, "Expired", "too old resource version: " + rvText + " (" +
                                                                   std::to_string(compactedRv_) + ")"));
      }
    }
  }
  auto nextBookmark = std::chrono::steady_clock::now() + options_.bookmarkInterval;
  while (true) {
    for (const auto& [type, object] : batch) {
      if (!sendLine(type, object)) return;
      if (type == "ERROR") {
        conn.Write("0\r\n\r\n");
        return;
      }
    }
    batch.clear();
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (bookmarks && now >= nextBookmark) {
      Json object = Json::object();
      object["kind"] = Json::string(kind);
      object["metadata"]["resourceVersion"] = Json::string(std::to_string(cursor));
      if (!sendLine("BOOKMARK", object)) return;
      nextBookmark = now + options_.bookmarkInterval;
    }
    if (!conn.PeerOpen()) return;
    std::unique_lock<std::mutex> lock(mu_);
    auto wakeAt = std::min({deadline, bookmarks ? nextBookmark : deadline, now + std::chrono::milliseconds(200)});
    changed_.wait_until(lock, wakeAt, [&] {
      return generationOfServer_.load() != serverGeneration || (!history_.empty() && history_.back().rv > cursor);
    });
    if (generationOfServer_.load() != serverGeneration) return;  // restarted: drop without a goodbye
    if (cursor < compactedRv_) {
      batch.emplace_back("ERROR", StatusJson(410, "Expired", "too old resource version"));
      continue;
    }
    auto it = std::lower_bound(history_.begin(), history_.end(), cursor + 1,
                               [](const WatchEventRecord& e, int64_t rv) { return e.rv < rv; });
    for (; it != history_.end(); ++it) {
      cursor = it->rv;
      if (it->resourceBase != req.base) continue;
      if (!req.ns.empty() && it->ns != req.ns) continue;
      bool matches = MatchesSelector(it->object, selector);
      if (it->type == "MODIFIED" && !selector.empty() && !it->previous.is_null()) {
        bool matched = MatchesSelector(it->previous, selector);
        if (matches && !matched) batch.emplace_back("ADDED", it->object);
        else if (!matches && matched) batch.emplace_back("DELETED", it->object);
        else if (matches) batch.emplace_back("MODIFIED", it->object);
        continue;
      }
      if (!matches) continue;
      batch.emplace_back(it->type, it->object);
    }
  }
  conn.Write("0\r\n\r\n");
}

bool ApiServer::HasStatusSubresource(const std::string& plural) const {
  static const std::set<std::string> without = {"leases", "events", "configmaps", "secrets", "serviceaccounts",
                                                "endpoints", "namespaces"};
  return without.count(plural) == 0;
}

void ApiServer::AddFault(const Fault& fault) {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.push_back(fault);
}

void ApiServer::ClearFaults() {
  std::lock_guard<std::mutex> lock(mu_);
  faults_.clear();
}

void ApiServer::SetTokens(const std::vector<std::string>& tokens) {
  std::lock_guard<std::mutex> lock(mu_);
  tokens_ = tokens;
}

void ApiServer::Compact() {
  std::lock_guard<std::mutex> lock(mu_);
  compactedRv_ = rv_;
  history_.clear();
  changed_.notify_all();
}

int64_t ApiServer::resourceVersion() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

int ApiServer::CountRequests(const std::string& needle) const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(std::count_if(requestLog_.begin(), requestLog_.end(),
                                        [&](const std::string& line) { return line.find(needle) != std::string::npos; }));
}

std::vector<std::string> ApiServer::RequestLog() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {requestLog_.begin(), requestLog_.end()};
}

ApiResponse ApiServer::Call(const std::string& method, const std::string& pathAndQuery, const std::string& body) {
  return Dispatch(method, pathAndQuery, body);
}

Json ApiServer::CallJson(const std::string& method, const std::string& pathAndQuery, const Json& body) {
  auto response = Dispatch(method, pathAndQuery, body.is_null() ? "" : body.serialize());
  if (response.status >= 300) return Json::null();
  return kube::ParseJson(response.body).value_or(Json::null());
}

ApiResponse ApiServer::Dispatch(const std::string& method, const std::string& pathAndQuery, const std::string& body) {
  Parsed req = Parsed::From(method, pathAndQuery);
  if (!req.valid) return Error(404, "NotFound", "the server could not find the requested resource");
  std::lock_guard<std::mutex> lock(mu_);
  ApiResponse response = HandleLocked(req, body);
  SyncBudgetsLocked();
  return response;
}

void ApiServer::RecordLocked(const std::string& base, const std::string& ns, const std::string& type,
                             const Json& object, const Json& previous) {
  NoteChangeForBudgetsLocked(base, object, previous);
  history_.push_back({rv_, base, ns, type, object, previous});
  while (history_.size() > options_.historyLimit) {
    compactedRv_ = history_.front().rv;
    history_.pop_front();
  }
  changed_.notify_all();
}

ApiResponse ApiServer::HandleLocked(const Parsed& req, const std::string& bodyText) {
  Json body = Json::null();
  if (!bodyText.empty()) {
    auto parsed = kube::ParseJson(bodyText);
    if (!parsed) return Error(400, "BadRequest", "request body is not JSON");
    body = *parsed;
  }
  auto& objects = store_[req.base];
  if (req.method == "GET" && req.name.empty()) {
    std::string selector = req.Q("labelSelector");
    std::string fieldSelector = req.Q("fieldSelector");
    int64_t limit = req.Q("limit").empty() ? 0 : std::stoll(req.Q("limit"));
    std::string after = req.Q("continue");
    Json items = Json::array();
    size_t count = 0;
    std::string lastKey;
    bool more = false;
    for (auto it = after.empty() ? objects.begin() : objects.upper_bound(after); it != objects.end(); ++it) {
      const Json& object = it->second;
      if (!req.ns.empty() && kube::NamespaceOf(object) != req.ns) continue;
      if (!MatchesSelector(object, selector)) continue;
      if (!fieldSelector.empty()) {
        auto eq = fieldSelector.find('=');
        std::string field = fieldSelector.substr(0, eq), value = fieldSelector.substr(eq + 1);
        if (field == "metadata.name" && kube::NameOf(object) != value) continue;
        if (field == "metadata.namespace" && kube::NamespaceOf(object) != value) continue;
      }
      if (limit > 0 && static_cast<int64_t>(count) == limit) {
        more = true;
        break;
      }
      items[count++] = object;
      lastKey = it->first;
    }
    Json list = Json::object();
    std::string kind = kinds_[req.base];
    list["kind"] = Json::string(kind + "List");
    std::string apiVersion = req.base.substr(req.base.rfind("/apis/", 0) == 0 ? 6 : 5);
    list["apiVersion"] = Json::string(apiVersion.substr(0, apiVersion.rfind('/')));
    list["metadata"]["resourceVersion"] = Json::string(std::to_string(rv_));
    if (more) list["metadata"]["continue"] = Json::string(lastKey);
    list["items"] = items;
    return Ok(list);
  }
  if (req.method == "POST" && req.name.empty()) return WriteLocked(req, "POST", body);
  if (req.name.empty()) return Error(405, "MethodNotAllowed", "method not allowed on a collection");
  if (req.method == "POST" && req.base == kPodsBase && req.subresource == "binding") return BindLocked(req, body);
  if (req.method == "POST" && req.base == kPodsBase && req.subresource == "eviction") return EvictLocked(req, body);
  if (req.method == "POST" && req.base == kServiceAccountsBase && req.subresource == "token") {
    return CreateTokenLocked(req, body);
  }

  auto it = objects.find(req.Key());
  if (req.method == "GET") {
    if (it == objects.end()) return NotFound(req.plural, req.name);
    if (req.subresource == "scale") {
      const Json& o = it->second;
      bool instances = kube::GetField(o, {"spec", "instances"}) != nullptr;
      Json scale = Json::object();
      scale["kind"] = Json::string("Scale");
      scale["apiVersion"] = Json::string("autoscaling/v1");
      scale["metadata"]["name"] = Json::string(req.name);
      scale["metadata"]["namespace"] = Json::string(req.ns);
      scale["metadata"]["resourceVersion"] = Json::string(kube::ResourceVersionOf(o));
      scale["spec"]["replicas"] =
          Json::number(kube::GetInt(o, {"spec", instances ? "instances" : "replicas"}).value_or(0));
      scale["status"]["replicas"] = Json::number(
          kube::GetInt(o, {"status", instances ? "readyInstances" : "replicas"}).value_or(0));
      return Ok(scale);
    }
    return Ok(it->second);
  }
  if (req.method == "PUT" || req.method == "PATCH") return WriteLocked(req, req.method, body);
  if (req.method == "DELETE") return DeleteLocked(req, body);
  return Error(405, "MethodNotAllowed", "method not allowed");
}

ApiResponse ApiServer::WriteLocked(const Parsed& req, const std::string& method, const Json& body) {
  auto& objects = store_[req.base];
  bool statusSub = HasStatusSubresource(req.plural);
  if (!body.is_object()) return Error(400, "BadRequest", "body must be a JSON object");
  if (method == "POST") {
    Json object = body;
    std::string name = kube::NameOf(object);
    if (name.empty()) {
      std::string prefix = GetString(object, {"metadata", "generateName"});
      if (prefix.empty()) return Error(422, "Invalid", "metadata.name: Required value");
      name = prefix + RandomHex(3).substr(0, 5);
    }
    std::string bodyNs = kube::NamespaceOf(object);
    if (!bodyNs.empty() && bodyNs != req.ns) {
      return Error(400, "BadRequest", "the namespace of the object does not match the namespace of the request");
    }
    std::string key = kube::MakeKey(req.ns, name);
    if (objects.count(key)) {
      return Error(409, "AlreadyExists", req.plural + " \"" + name + "\" already exists");
    }
    if (!object.has_object_field("metadata")) object["metadata"] = Json::object();
    // Top-level fields first: adding one later would move `meta`.
    if (!object.has_field("kind")) object["kind"] = Json::string(kinds_[req.base]);
    if (statusSub && object.has_field("status")) object.erase("status");
    auto& meta = object["metadata"];
    meta["name"] = Json::string(name);
    if (!req.ns.empty()) meta["namespace"] = Json::string(req.ns);
    meta["uid"] = Json::string(RandomHex(16));
    meta["creationTimestamp"] = Json::string(NowRfc3339());
    meta["generation"] = Json::number(1);
    if (meta.has_field("deletionTimestamp")) meta.erase("deletionTimestamp");
    kinds_[req.base] = GetString(object, {"kind"});
    meta["resourceVersion"] = Json::string(std::to_string(++rv_));
    objects[key] = object;
    RecordLocked(req.base, req.ns, "ADDED", object);
    return Ok(object, 201);
  }

  auto it = objects.find(req.Key());
  if (it == objects.end()) return NotFound(req.plural, req.name);
  const Json old = it->second;
  std::string currentRv = kube::ResourceVersionOf(old);
  Json incoming = method == "PATCH" ? MergePatch(old, body) : body;
  std::string wantedRv = method == "PATCH" ? GetString(body, {"metadata", "resourceVersion"})
                                           : kube::ResourceVersionOf(incoming);
  if (!wantedRv.empty() && wantedRv != currentRv) {
    return Error(409, "Conflict",
                 "Operation cannot be fulfilled on " + req.plural + " \"" + req.name +
                     "\": the object has been modified; please apply your changes to the latest version and try again");
  }
  if (!kube::NameOf(incoming).empty() && kube::NameOf(incoming) != req.name) {
    return Error(400, "BadRequest", "the name of the object does not match the name in the URL");
  }
  // A uid in the body is a precondition (a patch from a writer that knew an
  // earlier object of the same name must not land on its namesake).
  const std::string wantedUid = GetString(method == "PATCH" ? body : incoming, {"metadata", "uid"});
  if (!wantedUid.empty() && wantedUid != kube::UidOf(old)) {
    return Error(409, "Conflict",
                 "Operation cannot be fulfilled on " + req.plural + " \"" + req.name + "\": Precondition failed: UID in "
                 "precondition: " + wantedUid + ", UID in object meta: " + kube::UidOf(old));
  }

  Json next = old;
  if (req.subresource == "status") {
    if (!statusSub) return Error(404, "NotFound", req.plural + " has no status subresource");
    if (incoming.has_field("status")) next["status"] = incoming.at("status");
    else if (next.has_field("status")) next.erase("status");
  } else if (req.subresource == "scale") {
    bool instances = kube::GetField(old, {"spec", "instances"}) != nullptr;
    auto replicas = kube::GetInt(incoming, {"spec", "replicas"});
    if (!replicas) return Error(422, "Invalid", "spec.replicas: Required value");
    next["spec"][instances ? "instances" : "replicas"] = Json::number(*replicas);
  } else if (!req.subresource.empty()) {
    return Error(404, "NotFound", "no subresource " + req.subresource);
  } else {
    next = incoming;
    // Fields the server owns.
    next["metadata"]["uid"] = old.at("metadata").at("uid");
    next["metadata"]["creationTimestamp"] = old.at("metadata").at("creationTimestamp");
    next["metadata"]["generation"] = old.at("metadata").at("generation");
    if (next["metadata"].has_field("namespace") || !req.ns.empty()) next["metadata"]["namespace"] = Json::string(req.ns);
    for (const char* field : {"deletionTimestamp", "deletionGracePeriodSeconds"}) {
      if (old.at("metadata").has_field(field)) {
        next["metadata"][field] = old.at("metadata").at(field);
      } else if (next["metadata"].has_field(field)) {
        next["metadata"].erase(field);
      }
    }
    if (!next.has_field("kind") && old.has_field("kind")) next["kind"] = old.at("kind");
    if (!next.has_field("apiVersion") && old.has_field("apiVersion")) next["apiVersion"] = old.at("apiVersion");
    if (statusSub) {
      if (old.has_field("status")) next["status"] = old.at("status");
      else if (next.has_field("status")) next.erase("status");
    }
  }
  next["metadata"]["resourceVersion"] = Json::string(currentRv);
  // Generation counts changes of everything but metadata and status (the spec).
  auto specOf = [](Json o) {
    if (o.has_field("metadata")) o.erase("metadata");
    if (o.has_field("status")) o.erase("status");
    return o;
  };
  if (specOf(next) != specOf(old)) {
    next["metadata"]["generation"] = Json::number(kube::GetInt(old, {"metadata", "generation"}).value_or(0) + 1);
  }
  if (next == old) return Ok(old);  // a no-op write changes nothing, not even the version
  // The last finalizer removed from an object being deleted: it goes, unless
  // a grace period still runs (a Pod: the kubelet's grace-0 delete ends it).
  const Json* finalizers = kube::GetField(next, {"metadata", "finalizers"});
  bool noFinalizers = finalizers == nullptr || !finalizers->is_array() || finalizers->as_array().size() == 0;
  bool graceRuns = kube::GetInt(old, {"metadata", "deletionGracePeriodSeconds"}).value_or(0) > 0;
  if (next["metadata"].has_field("deletionTimestamp") && noFinalizers && !graceRuns) {
    it->second = next;
    RemoveLocked(req.base, req.Key(), false);
    return Ok(next);
  }
  next["metadata"]["resourceVersion"] = Json::string(std::to_string(++rv_));
  it->second = next;
  RecordLocked(req.base, req.ns, "MODIFIED", next, old);
  if (req.subresource == "scale") return HandleLocked(Parsed::From("GET", req.path), "");
  return Ok(next);
}

ApiResponse ApiServer::DeleteLocked(const Parsed& req, const Json& body) {
  auto& objects = store_[req.base];
  if (objects.find(req.Key()) == objects.end()) return NotFound(req.plural, req.name);
  // DeleteOptions come in the body; the query stands in when there is none.
  DeleteRequest options;
  if (body.is_object()) {
    options.gracePeriodSeconds = kube::GetInt(body, {"gracePeriodSeconds"});
    options.uid = GetString(body, {"preconditions", "uid"});
    options.resourceVersion = GetString(body, {"preconditions", "resourceVersion"});
    options.propagationPolicy = GetString(body, {"propagationPolicy"});
  } else {
    if (!req.Q("gracePeriodSeconds").empty()) options.gracePeriodSeconds = std::stoll(req.Q("gracePeriodSeconds"));
    options.propagationPolicy = req.Q("propagationPolicy");
  }
  return DeleteObjectLocked(req.base, req.Key(), options);
}

ApiResponse ApiServer::DeleteObjectLocked(const std::string& base, const std::string& key,
                                          const DeleteRequest& options) {
  Json& object = store_[base][key];
  std::string kind = GetString(object, {"kind"});
  if (kind.empty()) kind = kinds_[base];
  const std::string name = kube::NameOf(object);
  if (!options.uid.empty() && options.uid != kube::UidOf(object)) {
    return Conflict(kind, name,
                    "the UID in the precondition (" + options.uid + ") does not match the UID in record (" +
                        kube::UidOf(object) + "). The object might have been deleted and then recreated");
  }
  if (!options.resourceVersion.empty() && options.resourceVersion != kube::ResourceVersionOf(object)) {
    return Conflict(kind, name,
                    "the ResourceVersion in the precondition (" + options.resourceVersion +
                        ") does not match the ResourceVersion in record (" + kube::ResourceVersionOf(object) +
                        "). The object might have been modified");
  }
  if (base == kPodsBase) return DeletePodLocked(key, options);
  const Json* finalizers = kube::GetField(object, {"metadata", "finalizers"});
  if (finalizers != nullptr && finalizers->is_array() && finalizers->as_array().size() > 0) {
    if (!object["metadata"].has_field("deletionTimestamp")) {
      Json before = object;
      object["metadata"]["deletionTimestamp"] = Json::string(NowRfc3339());
      object["metadata"]["resourceVersion"] = Json::string(std::to_string(++rv_));
      RecordLocked(base, kube::NamespaceOf(object), "MODIFIED", object, before);
    }
    return Ok(object);
  }
  Json deleted = object;
  RemoveLocked(base, key, options.propagationPolicy == "Orphan");
  return Ok(deleted);
}

void ApiServer::RemoveLocked(const std::string& base, const std::string& key, bool orphanDependents) {
  auto& objects = store_[base];
  auto it = objects.find(key);
  if (it == objects.end()) return;
  Json object = it->second;
  objects.erase(it);
  object["metadata"]["resourceVersion"] = Json::string(std::to_string(++rv_));
  RecordLocked(base, kube::NamespaceOf(object), "DELETED", object);
  std::string uid = kube::UidOf(object);
  // Dependents: objects whose ownerReferences name this uid.
  std::vector<std::pair<std::string, std::string>> dependents;
  for (auto& [otherBase, others] : store_) {
    for (auto& [otherKey, other] : others) {
      const Json* owners = kube::GetField(other, {"metadata", "ownerReferences"});
      if (owners == nullptr || !owners->is_array()) continue;
      for (const auto& ref : owners->as_array()) {
        if (GetString(ref, {"uid"}) == uid) dependents.emplace_back(otherBase, otherKey);
      }
    }
  }
  for (const auto& [depBase, depKey] : dependents) {
    auto dep = store_[depBase].find(depKey);
    if (dep == store_[depBase].end()) continue;
    Json before = dep->second;
    Json& refs = dep->second["metadata"]["ownerReferences"];
    Json kept = Json::array();
    size_t n = 0;
    for (const auto& ref : refs.as_array()) {
      if (GetString(ref, {"uid"}) != uid) kept[n++] = ref;
    }
    if (orphanDependents || n > 0) {
      // Orphaned, or still owned by someone else: it stays.
      if (n == 0) dep->second["metadata"].erase("ownerReferences");
      else refs = kept;
      dep->second["metadata"]["resourceVersion"] = Json::string(std::to_string(++rv_));
      RecordLocked(depBase, kube::NamespaceOf(dep->second), "MODIFIED", dep->second, before);
    } else if (depBase == kPodsBase) {
      // The garbage collector's DELETE: a running Pod terminates gracefully.
      DeleteObjectLocked(depBase, depKey, DeleteRequest{});
    } else {
      RemoveLocked(depBase, depKey, false);
    }
  }
}

Result<TestCertificates> MakeTestCertificates(const std::string& dir) {
  PGRS_RETURN_IF_ERROR(MakeDirs(dir));
  TestCertificates c;
  c.dir = dir;
  c.caFile = dir + "/ca.crt";
  c.serverCertFile = dir + "/server.crt";
  c.serverKeyFile = dir + "/server.key";
  c.clientCertFile = dir + "/client.crt";
  c.clientKeyFile = dir + "/client.key";
  c.otherCaFile = dir + "/other-ca.crt";
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(dir + "/san.ext", "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"));
  const std::vector<std::vector<std::string>> steps = {
      {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/ca.key", "-out", c.caFile, "-days", "2",
       "-subj", "/CN=pgrs-test-ca"},
      {"req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/other-ca.key", "-out", c.otherCaFile,
       "-days", "2", "-subj", "/CN=pgrs-other-ca"},
      {"req", "-newkey", "rsa:2048", "-nodes", "-keyout", c.serverKeyFile, "-out", dir + "/server.csr", "-subj",
       "/CN=127.0.0.1"},
      {"x509", "-req", "-in", dir + "/server.csr", "-CA", c.caFile, "-CAkey", dir + "/ca.key", "-CAcreateserial",
       "-out", c.serverCertFile, "-days", "2", "-extfile", dir + "/san.ext"},
      {"req", "-newkey", "rsa:2048", "-nodes", "-keyout", c.clientKeyFile, "-out", dir + "/client.csr", "-subj",
       "/CN=pgrs-test/O=system:masters"},
      {"x509", "-req", "-in", dir + "/client.csr", "-CA", c.caFile, "-CAkey", dir + "/ca.key", "-CAcreateserial",
       "-out", c.clientCertFile, "-days", "2"},
  };
  for (const auto& step : steps) {
    ProcessSpec spec;
    spec.argv = {"/usr/bin/openssl"};
    spec.argv.insert(spec.argv.end(), step.begin(), step.end());
    auto result = RunCommand(spec, std::chrono::seconds(60));
    if (!result.ok()) return result.status();
    if (!result->ok()) return Status::Internal("openssl " + step[0] + " failed: " + result->output);
  }
  return c;
}

}  // namespace pgrs::e2e
