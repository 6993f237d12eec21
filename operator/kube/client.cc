#include "operator/kube/client.h"

#include <cpprest/http_client.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "operator/util/files.h"

namespace pgrs::kube {

namespace http = web::http;
using http::client::http_client;
using http::client::http_client_config;

std::string Resource::Path(const std::string& ns, const std::string& name, const std::string& subresource) const {
  std::string path = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) path += "/namespaces/" + ns;
  path += "/" + plural;
  if (!name.empty()) path += "/" + name;
  if (!subresource.empty()) path += "/" + subresource;
  return path;
}

Resource LeaseResource() { return {"coordination.k8s.io", "v1", "leases", "Lease", true}; }
Resource EventResource() { return {"", "v1", "events", "Event", true}; }
Resource ConfigMapResource() { return {"", "v1", "configmaps", "ConfigMap", true}; }
Resource ReplicaSetResource() { return {"pgrs.dev", "v1alpha1", "postgresreplicasets", "PostgresReplicaSet", true}; }

// ---------------------------------------------------------------------------
// Errors

Status StatusFromResponse(int code, const std::string& body, const std::string& what) {
  std::string message;
  std::string reason;
  if (auto json = ParseJson(body)) {
    message = GetString(*json, {"message"});
    reason = GetString(*json, {"reason"});
    // Causes say why (a disruption budget's numbers, the field at fault).
    if (const Json* causes = GetField(*json, {"details", "causes"}); causes != nullptr && causes->is_array()) {
      for (const auto& cause : causes->as_array()) {
        std::string text = GetString(cause, {"message"});
        if (!text.empty() && message.find(text) == std::string::npos) message += ": " + text;
      }
    }
  }
  if (message.empty()) message = body.size() > 200 ? body.substr(0, 200) : body;
  std::string text = what + ": " + message + " (HTTP " + std::to_string(code);
  if (!reason.empty()) text += ", reason " + reason;
  text += ")";
  if (code == 404) return Status::NotFound(text);
  if (code == 409 || code == 410) return Status::Conflict(text);
  if (code == 429 || code >= 500) return Status::Unavailable(text);
  return Status::Invalid(text);
}

bool IsTooManyRequests(const Status& status) {
  return status.code() == StatusCode::kUnavailable && status.message().find("(HTTP 429") != std::string::npos;
}

bool IsAlreadyExists(const Status& status) {
  return status.code() == StatusCode::kConflict && status.message().find("reason AlreadyExists") != std::string::npos;
}

// ---------------------------------------------------------------------------
// Watch stream parsing

Status WatchStreamParser::Feed(std::string_view bytes, const std::function<void(WatchEvent&&)>& onEvent) {
  size_t scanFrom = partial_.size();
  partial_.append(bytes.data(), bytes.size());
  size_t start = 0;
  Status result;
  while (true) {
    size_t nl = partial_.find('\n', scanFrom);
    if (nl == std::string::npos) break;
    std::string_view line(partial_.data() + start, nl - start);
    start = nl + 1;
    scanFrom = start;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    auto json = ParseJson(std::string(line));
    if (!json || !json->is_object() || !json->has_string_field("type")) {
      result = Status::Invalid("watch stream: not an event: " + std::string(line.substr(0, 120)));
      continue;
    }
    WatchEvent event;
    event.type = json->at("type").as_string();
    if (json->has_field("object")) event.object = std::move(json->at("object"));
    onEvent(std::move(event));
  }
  partial_.erase(0, start);
  return result;
}

// ---------------------------------------------------------------------------
// Cancellation

struct WatchCanceller::Impl {
  pplx::cancellation_token_source source;
};

WatchCanceller::WatchCanceller() : impl_(std::make_unique<Impl>()) {}
WatchCanceller::~WatchCanceller() = default;
void WatchCanceller::Cancel() { impl_->source.cancel(); }
bool WatchCanceller::cancelled() const { return impl_->source.get_token().is_canceled(); }

// ---------------------------------------------------------------------------
// Client

namespace {

bool PemHasCertificate(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  bool ok = cert != nullptr;
  X509_free(cert);
  BIO_free(bio);
  return ok;
}

bool PemHasKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  bool ok = key != nullptr;
  EVP_PKEY_free(key);
  BIO_free(bio);
  return ok;
}

std::string Trim(std::string s) {
  while (!s.empty() && isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

void AddQuery(std::string* path, const std::string& key, const std::string& value) {
  if (value.empty()) return;
  *path += path->find('?') == std::string::npos ? "?" : "&";
  *path += key + "=" + web::uri::encode_data_string(value);
}

struct RawResponse {
  int status = 0;
  std::string body;
  std::chrono::milliseconds retryAfter{0};
};

}  // namespace

// cpprestsdk hands the host of a URI to the resolver as it is, so an IPv6
// literal in brackets ("[fd00::1]") cannot be resolved. Such a server is
// reached through a URI whose host is the bare address. Over plain HTTP the
// Host header is then set by hand to the bracketed form; over HTTPS it must
// not be, because cpprestsdk verifies the server certificate against the
// Host header when one is set (and against the bare address otherwise,
// which matches an IP subjectAltName).
web::uri ServerUri(const std::string& server, std::string* hostHeader) {
  web::uri parsed(server);
  std::string host = parsed.host();
  if (host.size() < 2 || host.front() != '[') return parsed;
  int port = parsed.port() > 0 ? parsed.port() : (parsed.scheme() == "https" ? 443 : 80);
  web::uri_builder builder;
  builder.set_scheme(parsed.scheme());
  builder.set_host(host.substr(1, host.size() - 2));
  builder.set_port(port);
  if (parsed.scheme() == "http") *hostHeader = host + ":" + std::to_string(port);
  return builder.to_uri();
}

struct Client::Impl {
  ClientConfig config;
  ClientOptions options;
  web::uri serverUri;
  std::string hostHeader;  // set for IPv6 literals only
  http_client_config httpConfig;
  std::unique_ptr<http_client> http;

  std::mutex shutdownMu;
  std::condition_variable shutdownCv;
  bool shutdown = false;

  std::mutex tokenMu;
  std::string token;
  std::chrono::steady_clock::time_point tokenReadAt;

  http_client_config MakeHttpConfig(std::chrono::milliseconds timeout) const {
    http_client_config c;
    c.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    c.set_validate_certificates(!config.insecureSkipTlsVerify);
    std::string ca = config.caData, cert = config.clientCertData, key = config.clientKeyData;
    c.set_ssl_context_callback([ca, cert, key](boost::asio::ssl::context& ctx) {
      if (!ca.empty()) ctx.add_certificate_authority(boost::asio::buffer(ca));
      if (!cert.empty()) {
        ctx.use_certificate_chain(boost::asio::buffer(cert));
        ctx.use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
      }
    });
    return c;
  }

  http::http_request MakeRequest(const std::string& method, const std::string& path, const std::string& token) {
    http::http_request req(method);
    req.set_request_uri(web::uri(path));
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", options.userAgent);
    if (!hostHeader.empty()) req.headers().add("Host", hostHeader);
    if (!token.empty()) req.headers().add("Authorization", "Bearer " + token);
    return req;
  }

  Result<RawResponse> Send(const std::string& method, const std::string& path, const std::string& body,
                           const std::string& contentType, const std::string& token) {
    try {
      auto req = MakeRequest(method, path, token);
      if (!body.empty()) req.set_body(body, contentType);
      auto resp = http->request(req).get();
      RawResponse raw;
      raw.status = resp.status_code();
      raw.body = resp.extract_utf8string(true).get();
      auto it = resp.headers().find("Retry-After");
      if (it != resp.headers().end()) {
        try {
          raw.retryAfter = std::chrono::seconds(std::stoi(it->second));
        } catch (...) {
        }
      }
      return raw;
    } catch (const std::exception& e) {
      return Status::Unavailable(std::string("network: ") + e.what());
    }
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Create(const ClientConfig& config, ClientOptions options) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return Status::Invalid("kubernetes client: server " + config.server + ": must start with https:// or http://");
  }
  if (!config.caData.empty() && !PemHasCertificate(config.caData)) {
    return Status::Invalid("kubernetes client: certificate authority: no PEM certificate found");
  }
  if (!config.clientCertData.empty() &&
      (!PemHasCertificate(config.clientCertData) || !PemHasKey(config.clientKeyData))) {
    return Status::Invalid("kubernetes client: client certificate or key: not valid PEM");
  }
  if (config.insecureSkipTlsVerify) {
    spdlog::warn("insecure-skip-tls-verify is set: the API server's certificate is not checked server={}",
                 config.server);
  }
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->options = options;
  try {
    impl->httpConfig = impl->MakeHttpConfig(options.requestTimeout);
    impl->serverUri = ServerUri(config.server, &impl->hostHeader);
    impl->http = std::make_unique<http_client>(impl->serverUri, impl->httpConfig);
  } catch (const std::exception& e) {
    return Status::Invalid("kubernetes client: server " + config.server + ": " + e.what());
  }
  std::unique_ptr<Client> client(new Client(std::move(impl)));
  if (!config.tokenFile.empty() && client->CurrentToken(true).empty()) {
    return Status::Invalid("kubernetes client: token file " + config.tokenFile + ": empty or unreadable");
  }
  return client;
}

const ClientConfig& Client::config() const { return impl_->config; }

std::string Client::CurrentToken(bool forceReload) {
  std::lock_guard<std::mutex> lock(impl_->tokenMu);
  if (impl_->config.tokenFile.empty()) return impl_->config.token;
  auto now = std::chrono::steady_clock::now();
  if (forceReload || impl_->token.empty() || now - impl_->tokenReadAt >= impl_->config.tokenRefresh) {
    auto text = ReadFile(impl_->config.tokenFile);
    if (text.ok() && !Trim(text.value()).empty()) {
      std::string fresh = Trim(text.value());
      if (fresh != impl_->token && !impl_->token.empty()) spdlog::info("re-read service-account token file={}", impl_->config.tokenFile);
      impl_->token = fresh;
      impl_->tokenReadAt = now;
    } else {
      spdlog::warn("could not read token file={}; keeping the previous token", impl_->config.tokenFile);
    }
  }
  return impl_->token;
}

Result<Json> Client::Call(const std::string& what, const std::string& method, const std::string& path,
                          const std::string& body, const std::string& contentType, bool retryTooManyRequests) {
  Backoff backoff(impl_->options.retryBackoff);
  bool tokenReloaded = false;
  Status last;
  for (int attempt = 1;; ++attempt) {
    {
      std::lock_guard<std::mutex> lock(impl_->shutdownMu);
      if (impl_->shutdown) return Status::Unavailable(what + ": client shut down");
    }
    requests_.fetch_add(1);
    auto resp = impl_->Send(method, path, body, contentType, CurrentToken());
    std::chrono::milliseconds retryAfter{0};
    if (!resp.ok()) {
      last = resp.status().WithContext(what);
    } else if (resp->status >= 200 && resp->status < 300) {
      if (resp->body.empty()) return Json::null();
      auto json = ParseJson(resp->body);
      if (!json) return Status::Internal(what + ": response is not JSON");
      return *json;
    } else if (resp->status == 401 && !tokenReloaded && !impl_->config.tokenFile.empty()) {
      // A rotated token: read the file again and try once more at once.
      tokenReloaded = true;
      CurrentToken(true);
      --attempt;
      continue;
    } else {
      last = StatusFromResponse(resp->status, resp->body, what);
      if (last.code() != StatusCode::kUnavailable) return last;
      if (resp->status == 429 && !retryTooManyRequests) return last;
      retryAfter = std::min(resp->retryAfter, impl_->options.maxRetryAfter);
    }
    if (attempt >= impl_->options.maxAttempts) return last;
    auto delay = std::max(backoff.Next(), retryAfter);
    spdlog::debug("retrying request what=\"{}\" attempt={} delay_ms={} error=\"{}\"", what, attempt, delay.count(),
                  last.message());
    std::unique_lock<std::mutex> lock(impl_->shutdownMu);
    impl_->shutdownCv.wait_for(lock, delay, [&] { return impl_->shutdown; });
  }
}

void Client::Shutdown() {
  std::lock_guard<std::mutex> lock(impl_->shutdownMu);
  impl_->shutdown = true;
  impl_->shutdownCv.notify_all();
}

namespace {
std::string Describe(const std::string& verb, const Resource& r, const std::string& ns, const std::string& name) {
  std::string what = verb + " " + r.kind;
  if (!name.empty()) what += " " + MakeKey(ns, name);
  else if (!ns.empty()) what += " in namespace " + ns;
  return what;
}
const char kJson[] = "application/json";
}  // namespace

Result<Json> Client::Get(const Resource& r, const std::string& ns, const std::string& name) {
  return Call(Describe("get", r, ns, name), "GET", r.Path(ns, name), "", kJson);
}

Result<ObjectList> Client::List(const Resource& r, const std::string& ns, const ListOptions& options) {
  ObjectList out;
  std::string continueToken = options.continueToken;
  do {
    std::string path = r.Path(ns);
    AddQuery(&path, "labelSelector", options.labelSelector);
    AddQuery(&path, "fieldSelector", options.fieldSelector);
    if (continueToken.empty()) AddQuery(&path, "resourceVersion", options.resourceVersion);
    if (options.limit > 0) AddQuery(&path, "limit", std::to_string(options.limit));
    AddQuery(&path, "continue", continueToken);
    auto page = Call(Describe("list", r, ns, ""), "GET", path, "", kJson);
    if (!page.ok()) return page.status();
    if (page->has_array_field("items")) {
      auto& items = page->at("items").as_array();
      out.items.reserve(out.items.size() + items.size());
      for (auto& item : items) out.items.push_back(std::move(item));
    }
    out.resourceVersion = GetString(*page, {"metadata", "resourceVersion"});
    continueToken = GetString(*page, {"metadata", "continue"});
  } while (!continueToken.empty());
  return out;
}

Result<Json> Client::Create(const Resource& r, const std::string& ns, const Json& object) {
  return Call(Describe("create", r, ns, NameOf(object)), "POST", r.Path(ns), object.serialize(), kJson);
}

Result<Json> Client::Update(const Resource& r, const std::string& ns, const Json& object) {
  return Call(Describe("update", r, ns, NameOf(object)), "PUT", r.Path(ns, NameOf(object)), object.serialize(),
              kJson);
}

Result<Json> Client::UpdateStatus(const Resource& r, const std::string& ns, const Json& object) {
  return Call(Describe("update status of", r, ns, NameOf(object)), "PUT", r.Path(ns, NameOf(object), "status"),
              object.serialize(), kJson);
}

Result<Json> Client::MergePatch(const Resource& r, const std::string& ns, const std::string& name, const Json& patch,
                                bool status) {
  return Call(Describe(status ? "patch status of" : "patch", r, ns, name), "PATCH",
              r.Path(ns, name, status ? "status" : ""), patch.serialize(), "application/merge-patch+json");
}

Status Client::Delete(const Resource& r, const std::string& ns, const std::string& name,
                      const DeleteOptions& options) {
  Json body = Json::object();
  body["kind"] = Json::string("DeleteOptions");
  body["apiVersion"] = Json::string("v1");
  if (!options.propagationPolicy.empty()) body["propagationPolicy"] = Json::string(options.propagationPolicy);
  if (options.gracePeriodSeconds >= 0) body["gracePeriodSeconds"] = Json::number(options.gracePeriodSeconds);
  if (!options.preconditionResourceVersion.empty()) {
    body["preconditions"]["resourceVersion"] = Json::string(options.preconditionResourceVersion);
  }
  if (!options.preconditionUid.empty()) body["preconditions"]["uid"] = Json::string(options.preconditionUid);
  auto result = Call(Describe("delete", r, ns, name), "DELETE", r.Path(ns, name), body.serialize(), kJson);
  return result.ok() ? Status::Ok() : result.status();
}

Status Client::Evict(const std::string& ns, const std::string& name, const DeleteOptions& options) {
  Json body = Json::object();
  body["apiVersion"] = Json::string("policy/v1");
  body["kind"] = Json::string("Eviction");
  body["metadata"]["name"] = Json::string(name);
  body["metadata"]["namespace"] = Json::string(ns);
  Json deleteOptions = Json::object();
  if (!options.propagationPolicy.empty()) deleteOptions["propagationPolicy"] = Json::string(options.propagationPolicy);
  if (options.gracePeriodSeconds >= 0) deleteOptions["gracePeriodSeconds"] = Json::number(options.gracePeriodSeconds);
  if (!options.preconditionResourceVersion.empty()) {
    deleteOptions["preconditions"]["resourceVersion"] = Json::string(options.preconditionResourceVersion);
  }
  if (!options.preconditionUid.empty()) deleteOptions["preconditions"]["uid"] = Json::string(options.preconditionUid);
  if (deleteOptions.size() > 0) body["deleteOptions"] = deleteOptions;
  const Resource pods{"", "v1", "pods", "Pod", true};
  // A 429 here is the budget's answer, not an overloaded server.
  auto result = Call("evict Pod " + MakeKey(ns, name), "POST", pods.Path(ns, name, "eviction"), body.serialize(), kJson,
                     /*retryTooManyRequests=*/false);
  return result.ok() ? Status::Ok() : result.status();
}

Result<Json> Client::GetSubresource(const Resource& r, const std::string& ns, const std::string& name,
                                    const std::string& subresource) {
  return Call(Describe("get " + subresource + " of", r, ns, name), "GET", r.Path(ns, name, subresource), "", kJson);
}

Result<Json> Client::CreateSubresource(const Resource& r, const std::string& ns, const std::string& name,
                                       const std::string& subresource, const Json& object) {
  return Call(Describe("create " + subresource + " of", r, ns, name), "POST", r.Path(ns, name, subresource),
              object.serialize(), kJson);
}

Result<Json> Client::UpdateSubresource(const Resource& r, const std::string& ns, const std::string& name,
                                       const std::string& subresource, const Json& object) {
  return Call(Describe("update " + subresource + " of", r, ns, name), "PUT", r.Path(ns, name, subresource),
              object.serialize(), kJson);
}

WatchEnd Client::Watch(const Resource& r, const std::string& ns, const WatchOptions& options,
                       const std::function<void(const WatchEvent&)>& onEvent, WatchCanceller* canceller) {
  WatchEnd end;
  std::string what = Describe("watch", r, ns, "");
  std::string path = r.Path(ns);
  AddQuery(&path, "watch", "true");
  AddQuery(&path, "resourceVersion", options.resourceVersion);
  AddQuery(&path, "labelSelector", options.labelSelector);
  if (options.allowBookmarks) AddQuery(&path, "allowWatchBookmarks", "true");
  if (options.timeoutSeconds > 0) AddQuery(&path, "timeoutSeconds", std::to_string(options.timeoutSeconds));

  // The watch's own source, linked to the caller's, so that leaving early
  // (410, a bad line) also tears the connection down.
  pplx::cancellation_token_source local;
  if (canceller != nullptr) {
    auto outer = canceller->impl()->source.get_token();
    local = pplx::cancellation_token_source::create_linked_source(outer);
  }
  auto isCancelled = [&] { return canceller != nullptr && canceller->cancelled(); };
  try {
    // cpprestsdk times out each read: a quiet watch must outlive timeoutSeconds.
    auto timeout = std::chrono::seconds(std::max(options.timeoutSeconds, 1)) + impl_->options.watchIdleSlack;
    http_client watchClient(impl_->serverUri,
                            impl_->MakeHttpConfig(std::chrono::duration_cast<std::chrono::milliseconds>(timeout)));
    std::string token = CurrentToken();
    requests_.fetch_add(1);
    auto resp = watchClient.request(impl_->MakeRequest("GET", path, token), local.get_token()).get();
    if (resp.status_code() != 200) {
      std::string body = resp.extract_utf8string(true).get();
      if (resp.status_code() == 401 && !impl_->config.tokenFile.empty()) CurrentToken(true);
      end.status = StatusFromResponse(resp.status_code(), body, what);
      end.expired = resp.status_code() == 410;
      return end;
    }
    auto buffer = resp.body().streambuf();
    WatchStreamParser parser;
    std::vector<uint8_t> chunk(64 * 1024);
    bool stop = false;
    while (!stop) {
      if (isCancelled()) {
        end.cancelled = true;
        break;
      }
      size_t want = std::clamp<size_t>(buffer.in_avail(), 1, chunk.size());
      size_t n = buffer.getn(chunk.data(), want).get();
      if (n == 0) break;  // the server closed the stream
      Status parsed = parser.Feed(
          std::string_view(reinterpret_cast<const char*>(chunk.data()), n), [&](WatchEvent&& event) {
            if (stop) return;
            if (event.type == "ERROR") {
              int64_t code = GetInt(event.object, {"code"}).value_or(0);
              end.expired = code == 410;
              end.status = StatusFromResponse(static_cast<int>(code ? code : 500), event.object.serialize(), what);
              stop = true;
              return;
            }
            ++end.events;
            onEvent(event);
          });
      if (!parsed.ok()) {
        end.status = parsed.WithContext(what);
        stop = true;
      }
    }
    local.cancel();
  } catch (const std::exception& e) {
    local.cancel();
    if (isCancelled()) {
      end.cancelled = true;
    } else {
      end.status = Status::Unavailable(what + ": " + e.what());
    }
  }
  return end;
}

}  // namespace pgrs::kube
