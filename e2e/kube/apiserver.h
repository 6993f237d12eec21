// An in-memory Kubernetes API server for tests (never shipped): the
// semantics the operator relies on, over real HTTP(S) on loopback.
//   - one global resourceVersion; 409 Conflict on a write with a stale one,
//     409 AlreadyExists on a duplicate create
//   - metadata.generation bumped on spec changes only; /status and /scale
//     subresources (resources other than leases, events, configmaps,
//     secrets have a status subresource: the main endpoint ignores status,
//     /status ignores everything else)
//   - list with label selectors, limit/continue; a watch with a selector
//     sees an object that starts or stops matching as ADDED or DELETED
//   - watch as a chunked stream: ADDED/MODIFIED/DELETED, BOOKMARK every
//     `bookmarkInterval`, and an in-band 410 ERROR event for a version
//     older than the kept history
//   - JSON merge patch, finalizers, owner-reference cascade on delete,
//     DeleteOptions preconditions (uid, resourceVersion)
//   - Pods as the real registry keeps them: the binding subresource; graceful
//     deletion (a bound, unfinished Pod deleted with a grace period gets a
//     deletionTimestamp and stays until a grace-0 delete, as the kubelet's);
//     the eviction subresource checked against PodDisruptionBudgets, whose
//     status the server keeps as the disruption controller would
//   - HTTPS with client-certificate and bearer-token authentication, and
//     service-account tokens from TokenRequest that expire and die with the
//     Pod they are bound to
// Tests can restart it (dropping every connection and watch, keeping the
// data), compact its history, and inject faults (error codes, delays,
// closed connections).
#pragma once

#include <cpprest/json.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "operator/util/status.h"

namespace pgrs::e2e {

using Json = web::json::value;

struct Fault {
  enum class Kind {
    kStatus,  // answer with `status` (and Retry-After when set)
    kDelay,   // wait `delay`, then serve normally
    kClose,   // close the connection without answering
  };
  Kind kind = Kind::kStatus;
  std::string method;        // "" = any
  std::string pathContains;  // matched against path?query; "" = any
  int status = 500;
  int retryAfterSeconds = 0;
  std::chrono::milliseconds delay{0};
  int count = 1;  // requests affected; -1 = until cleared
};

struct ApiServerOptions {
  int port = 0;  // 0 = any free port (read it back with port())
  std::string bindAddress = "127.0.0.1";  // or "::1" 
  bool tls = false;
  std::string certFile;  // server certificate chain and key (PEM files)
  std::string keyFile;
  std::string clientCaFile;  // client certificates signed by this CA authenticate
  // Accepted bearer tokens. Authentication is required when tokens are set
  // or clientCaFile is.
  std::vector<std::string> tokens;
  size_t historyLimit = 200000;  // watch events kept
  std::chrono::milliseconds bookmarkInterval{1000};
  bool splitWatchChunks = false;  // send events in 16-byte chunks
  // TokenRequest refuses a shorter spec.expirationSeconds (real: 10 min).
  std::chrono::seconds minTokenExpiration{600};
  // An evicted Pod not deleted within this leaves a budget's disruptedPods.
  std::chrono::milliseconds disruptedPodTimeout{120000};
};

struct ApiResponse {
  int status = 200;
  std::string body;
  int retryAfterSeconds = 0;
};

class ApiServer {
 public:
  explicit ApiServer(ApiServerOptions options = {});
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  Status Start();
  // Closes the listener and every connection (watches end abruptly).
  void Stop();
  // Stop, then listen again on the same port. Data and versions survive;
  // with `compact`, the watch history does not (old versions get 410).
  Status Restart(bool compact = false);

  int port() const { return port_; }
  std::string url() const;

  void AddFault(const Fault& fault);
  void ClearFaults();
  void SetTokens(const std::vector<std::string>& tokens);
  // Forgets the watch history: a watch from any version before now gets 410.
  void Compact();

  // Serves a request without HTTP (setup in tests and benchmarks).
  ApiResponse Call(const std::string& method, const std::string& pathAndQuery, const std::string& body = "");
  // Convenience over Call: parsed body, or null on an error status.
  Json CallJson(const std::string& method, const std::string& pathAndQuery, const Json& body = Json::null());

  int64_t resourceVersion() const;
  int activeWatches() const { return activeWatches_.load(); }
  // Requests served over HTTP whose "METHOD path?query" contains `needle`.
  int CountRequests(const std::string& needle) const;
  std::vector<std::string> RequestLog() const;

 private:
  struct Conn;
  struct Parsed;
  struct DeleteRequest;
  struct IssuedToken {
    std::string ns, serviceAccount, serviceAccountUid;
    std::string podName, podUid;  // the bound Pod; "" when unbound
    std::chrono::system_clock::time_point expires;
  };
  enum class TokenCheck { kNotIssued, kValid, kInvalid };
  struct WatchEventRecord {
    int64_t rv;
    std::string resourceBase;
    std::string ns;
    std::string type;
    Json object;
    Json previous;  // MODIFIED: the object before, for label-selector transitions
  };

  void AcceptLoop(int listenFd);
  void ServeConnection(int fd);
  void StreamWatch(Conn& conn, const Parsed& req);
  ApiResponse Dispatch(const std::string& method, const std::string& pathAndQuery, const std::string& body);
  ApiResponse HandleLocked(const Parsed& req, const std::string& body);
  ApiResponse WriteLocked(const Parsed& req, const std::string& method, const Json& body);
  ApiResponse DeleteLocked(const Parsed& req, const Json& body);
  // Deletes one stored object as the real registry would: preconditions,
  // finalizers, and for Pods the graceful-deletion strategy.
  ApiResponse DeleteObjectLocked(const std::string& base, const std::string& key, const DeleteRequest& options);
  ApiResponse DeletePodLocked(const std::string& key, const DeleteRequest& options);
  // POST of pods/NAME/binding, pods/NAME/eviction, serviceaccounts/NAME/token.
  ApiResponse BindLocked(const Parsed& req, const Json& body);
  ApiResponse EvictLocked(const Parsed& req, const Json& body);
  ApiResponse CreateTokenLocked(const Parsed& req, const Json& body);
  TokenCheck CheckTokenLocked(const std::string& token) const;
  // The disruption controller: budgets touched by a change are marked in
  // RecordLocked and their status is written when the request is done.
  void NoteChangeForBudgetsLocked(const std::string& base, const Json& object, const Json& previous);
  void SyncBudgetsLocked();
  void SyncBudgetLocked(const std::string& key);
  // The scale (replicas) of the object a controller owner reference names.
  std::optional<int64_t> OwnerScaleLocked(const std::string& ns, const Json& ownerRef) const;
  void Janitor();
  void RemoveLocked(const std::string& base, const std::string& key, bool orphanDependents);
  void RecordLocked(const std::string& base, const std::string& ns, const std::string& type, const Json& object,
                    const Json& previous = Json::null());
  bool HasStatusSubresource(const std::string& plural) const;

  ApiServerOptions options_;
  int port_ = 0;
  void* sslCtx_ = nullptr;  // SSL_CTX*

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::map<std::string, Json>> store_;  // resource base path -> "ns/name" -> object
  std::map<std::string, std::string> kinds_;                  // resource base path -> kind
  std::deque<WatchEventRecord> history_;
  int64_t rv_ = 100;
  int64_t compactedRv_ = 0;
  std::vector<Fault> faults_;
  std::vector<std::string> tokens_;
  std::map<std::string, IssuedToken> issuedTokens_;  // by token text
  std::set<std::string> dirtyBudgets_;               // "ns/name" of budgets to recompute
  bool syncingBudgets_ = false;
  std::deque<std::string> requestLog_;
  std::thread janitor_;  // expires budgets' disruptedPods entries
  std::condition_variable janitorCv_;
  bool janitorStop_ = false;

  std::mutex connMu_;
  bool running_ = false;
  int listenFd_ = -1;
  std::thread acceptThread_;
  std::vector<std::thread> connThreads_;
  std::vector<int> connFds_;
  std::atomic<int> activeWatches_{0};
  std::atomic<uint64_t> generationOfServer_{0};  // bumped on every Stop
};

// Test certificates made with the openssl CLI: a CA, a server certificate
// for 127.0.0.1 and localhost, and a client certificate (CN pgrs-test).
struct TestCertificates {
  std::string dir;
  std::string caFile, serverCertFile, serverKeyFile, clientCertFile, clientKeyFile;
  std::string otherCaFile;  // an unrelated CA, for negative tests
};
Result<TestCertificates> MakeTestCertificates(const std::string& dir);

}  // namespace pgrs::e2e
