// Pieces of the test API server shared by its source files (apiserver.cc:
// HTTP, storage, watches; apiserver_pods.cc: binding, graceful deletion,
// eviction and the disruption budgets; apiserver_tokens.cc: TokenRequest
// and bound-token authentication). Not for tests.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "e2e/kube/apiserver.h"
#include "operator/kube/meta.h"

namespace pgrs::e2e {

// A parsed API request path.
struct ApiServer::Parsed {
  std::string method;
  std::string path;
  std::map<std::string, std::string> query;
  std::string base;  // "/apis/g/v/plural" (the resource, namespace-free)
  std::string plural;
  std::string ns;
  std::string name;
  std::string subresource;
  bool valid = false;

  std::string Key() const { return kube::MakeKey(ns, name); }
  std::string Q(const std::string& k) const {
    auto it = query.find(k);
    return it == query.end() ? "" : it->second;
  }
  bool IsWatch() const { return method == "GET" && name.empty() && (Q("watch") == "true" || Q("watch") == "1"); }

  static Parsed From(const std::string& method, const std::string& pathAndQuery);
};

// metav1.DeleteOptions as a request gives them (the body, or the query
// when there is no body).
struct ApiServer::DeleteRequest {
  std::optional<int64_t> gracePeriodSeconds;
  std::string uid;              // preconditions.uid
  std::string resourceVersion;  // preconditions.resourceVersion
  std::string propagationPolicy;
};

namespace apiserver_internal {

inline constexpr char kPodsBase[] = "/api/v1/pods";
inline constexpr char kBudgetsBase[] = "/apis/policy/v1/poddisruptionbudgets";
inline constexpr char kServiceAccountsBase[] = "/api/v1/serviceaccounts";

std::vector<std::string> Split(const std::string& s, char sep);
std::string Trim(const std::string& s);
// A metav1.Status; `details` (name, kind, causes...) when not null.
Json StatusJson(int code, const std::string& reason, const std::string& message, const Json& details = Json::null());
ApiResponse Error(int code, const std::string& reason, const std::string& message,
                  const Json& details = Json::null());
ApiResponse Ok(const Json& body, int code = 200);
// {"kind": "Status", "status": "Success", "code": code}
ApiResponse Success(int code);
// The real server's 404 and 409 shapes: "pods \"x\" not found" with
// details {name, kind: plural}; "Operation cannot be fulfilled on R \"x\": why".
ApiResponse NotFound(const std::string& plural, const std::string& name);
ApiResponse Conflict(const std::string& resource, const std::string& name, const std::string& why);
// A label selector in its query form (k=v,k!=v,k in (a),!k ...).
bool MatchesSelector(const Json& object, const std::string& selector);
// A metav1.LabelSelector object (matchLabels, matchExpressions); a null
// selector matches nothing, an empty one everything.
bool MatchesLabelSelector(const Json& object, const Json& selector);
std::string NowRfc3339();

}  // namespace apiserver_internal
}  // namespace pgrs::e2e
