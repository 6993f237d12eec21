// The test API server's service-account tokens: TokenRequest
// (serviceaccounts/NAME/token) issues JWT-shaped tokens that authenticate
// until they expire, and only while the Pod they are bound to exists, as the
// real token authenticator checks.
#include <cpprest/asyncrt_utils.h>

#include "e2e/kube/apiserver.h"
#include "e2e/kube/apiserver_internal.h"
#include "operator/util/random.h"

namespace pgrs::e2e {

using namespace apiserver_internal;
using kube::GetInt;
using kube::GetString;
using SystemClock = std::chrono::system_clock;

namespace {

// The audience of the API server itself (kubeadm's and kind's default).
constexpr char kApiAudience[] = "https://kubernetes.default.svc.cluster.local";
// A bound Pod that is being deleted keeps its tokens valid this long after
// its deletionTimestamp (the real validator's grace).
constexpr auto kDeletedPodGrace = std::chrono::seconds(60);

std::string Base64Url(const std::string& text) {
  std::string out = utility::conversions::to_base64(std::vector<unsigned char>(text.begin(), text.end()));
  for (char& c : out) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

ApiResponse InvalidTokenRequest(const std::string& name, const std::string& field, const std::string& detail) {
  Json details = Json::object();
  details["name"] = Json::string(name);
  details["group"] = Json::string("authentication.k8s.io");
  details["kind"] = Json::string("TokenRequest");
  details["causes"][0]["reason"] = Json::string("FieldValueInvalid");
  details["causes"][0]["message"] = Json::string(detail);
  details["causes"][0]["field"] = Json::string(field);
  return Error(422, "Invalid",
               "TokenRequest.authentication.k8s.io \"" + name + "\" is invalid: " + field + ": " + detail, details);
}

}  // namespace

ApiResponse ApiServer::CreateTokenLocked(const Parsed& req, const Json& body) {
  if (!body.is_object()) return Error(400, "BadRequest", "body must be a JSON object");
  std::string saUid;
  {
    auto& accounts = store_[kServiceAccountsBase];
    auto sa = accounts.find(req.Key());
    // A namespace controller makes `default` in every namespace; here it
    // simply counts as there.
    if (sa == accounts.end() && req.name != "default") return NotFound("serviceaccounts", req.name);
    if (sa != accounts.end()) saUid = kube::UidOf(sa->second);
  }
  int64_t expiration = GetInt(body, {"spec", "expirationSeconds"}).value_or(0);
  if (expiration == 0) expiration = 3600;
  const int64_t minimum = options_.minTokenExpiration.count();
  if (expiration < minimum) {
    std::string least = minimum == 600 ? "10 minutes" : std::to_string(minimum) + " seconds";
    return InvalidTokenRequest(req.name, "spec.expirationSeconds",
                               "Invalid value: " + std::to_string(expiration) +
                                   ": may not specify a duration less than " + least);
  }
  if (expiration > (int64_t{1} << 32)) {
    return InvalidTokenRequest(req.name, "spec.expirationSeconds",
                               "Invalid value: " + std::to_string(expiration) +
                                   ": may not specify a duration larger than 2^32 seconds");
  }
  IssuedToken issued;
  issued.ns = req.ns;
  issued.serviceAccount = req.name;
  issued.serviceAccountUid = saUid;
  const Json* ref = kube::GetField(body, {"spec", "boundObjectRef"});
  if (ref != nullptr && ref->is_object()) {
    std::string kind = GetString(*ref, {"kind"});
    std::string apiVersion = GetString(*ref, {"apiVersion"});
    if (kind != "Pod" || (!apiVersion.empty() && apiVersion != "v1")) {
      return Error(400, "BadRequest",
                   "cannot bind token to object of type " + (apiVersion.empty() ? "v1" : apiVersion) + ", Kind=" + kind);
    }
    std::string podName = GetString(*ref, {"name"});
    auto& pods = store_[kPodsBase];
    auto pod = pods.find(kube::MakeKey(req.ns, podName));
    if (pod == pods.end()) return NotFound("pods", podName);
    std::string podAccount = GetString(pod->second, {"spec", "serviceAccountName"});
    if (podAccount.empty()) podAccount = "default";  // what admission defaults it to
    if (podAccount != req.name) {
      return Error(400, "BadRequest",
                   "cannot bind token for serviceaccount \"" + req.name +
                       "\" to pod running with different serviceaccount name.");
    }
    std::string uid = GetString(*ref, {"uid"});
    if (!uid.empty() && uid != kube::UidOf(pod->second)) {
      return Conflict("Pod", podName,
                      "the UID in the bound object reference (" + uid +
                          ") does not match the UID in record. The object might have been deleted and then recreated");
    }
    issued.podName = podName;
    issued.podUid = kube::UidOf(pod->second);
  }
  Json audiences = Json::array();
  bool forApiServer = false;
  if (const Json* wanted = kube::GetField(body, {"spec", "audiences"}); wanted != nullptr && wanted->is_array() &&
                                                                         wanted->as_array().size() > 0) {
    audiences = *wanted;
    for (const auto& a : wanted->as_array()) forApiServer = forApiServer || (a.is_string() && a.as_string() == kApiAudience);
  } else {
    audiences[0] = Json::string(kApiAudience);
    forApiServer = true;
  }
  const auto now = SystemClock::now();
  issued.expires = now + std::chrono::seconds(expiration);
  const int64_t iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();

  // A JWT in shape (header.claims.signature); the server knows its tokens
  // by their text, so the signature is only random bytes.
  Json header = Json::object();
  header["alg"] = Json::string("RS256");
  header["kid"] = Json::string("pgrs-test-apiserver");
  Json claims = Json::object();
  claims["aud"] = audiences;
  claims["exp"] = Json::number(iat + expiration);
  claims["iat"] = Json::number(iat);
  claims["nbf"] = Json::number(iat);
  claims["iss"] = Json::string(kApiAudience);
  claims["sub"] = Json::string("system:serviceaccount:" + req.ns + ":" + req.name);
  claims["jti"] = Json::string(RandomHex(16));
  Json& k8s = claims["kubernetes.io"];
  k8s["namespace"] = Json::string(req.ns);
  k8s["serviceaccount"]["name"] = Json::string(req.name);
  if (!saUid.empty()) k8s["serviceaccount"]["uid"] = Json::string(saUid);
  if (!issued.podName.empty()) {
    k8s["pod"]["name"] = Json::string(issued.podName);
    k8s["pod"]["uid"] = Json::string(issued.podUid);
  }
  std::string token = Base64Url(header.serialize()) + "." + Base64Url(claims.serialize()) + "." +
                      Base64Url(RandomHex(32));
  if (!forApiServer) issued.expires = now;  // not for us: it never authenticates here
  issuedTokens_[token] = issued;

  Json response = Json::object();
  response["kind"] = Json::string("TokenRequest");
  response["apiVersion"] = Json::string("authentication.k8s.io/v1");
  response["metadata"]["name"] = Json::string(req.name);
  response["metadata"]["namespace"] = Json::string(req.ns);
  response["metadata"]["creationTimestamp"] = Json::null();
  response["spec"] = body.has_object_field("spec") ? body.at("spec") : Json::object();
  response["spec"]["audiences"] = audiences;
  response["spec"]["expirationSeconds"] = Json::number(expiration);
  response["status"]["token"] = Json::string(token);
  response["status"]["expirationTimestamp"] = Json::string(kube::FormatRfc3339(now + std::chrono::seconds(expiration)));
  return Ok(response, 201);
}

ApiServer::TokenCheck ApiServer::CheckTokenLocked(const std::string& token) const {
  auto it = issuedTokens_.find(token);
  if (it == issuedTokens_.end()) return TokenCheck::kNotIssued;
  const IssuedToken& issued = it->second;
  const auto now = SystemClock::now();
  if (now >= issued.expires) return TokenCheck::kInvalid;
  if (!issued.serviceAccountUid.empty()) {
    auto accounts = store_.find(kServiceAccountsBase);
    if (accounts == store_.end()) return TokenCheck::kInvalid;
    auto sa = accounts->second.find(kube::MakeKey(issued.ns, issued.serviceAccount));
    if (sa == accounts->second.end() || kube::UidOf(sa->second) != issued.serviceAccountUid) {
      return TokenCheck::kInvalid;
    }
  }
  if (!issued.podUid.empty()) {
    auto pods = store_.find(kPodsBase);
    if (pods == store_.end()) return TokenCheck::kInvalid;
    auto pod = pods->second.find(kube::MakeKey(issued.ns, issued.podName));
    if (pod == pods->second.end() || kube::UidOf(pod->second) != issued.podUid) return TokenCheck::kInvalid;
    std::string deletion = GetString(pod->second, {"metadata", "deletionTimestamp"});
    if (!deletion.empty()) {
      auto at = kube::ParseTime(deletion);
      if (at && *at + kDeletedPodGrace < now) return TokenCheck::kInvalid;
    }
  }
  return TokenCheck::kValid;
}

}  // namespace pgrs::e2e
