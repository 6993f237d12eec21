// The primary lease (operator/lease/lease.h) as a coordination.k8s.io/v1
// Lease: `spec.holderIdentity` is the instance allowed to run as primary,
// its agent moves `spec.renewTime` forward, the operator hands it over at
// failover. Every change is a PUT conditional on `metadata.resourceVersion`
// (compare-and-swap): on 409 the Lease is read again and the decision made
// again, so two writers never both win.
//
// Expiry is judged as lease::LeaseRecord::ExpiredAt does, on wall-clock
// renewTime + leaseDurationSeconds: the operator's and the agents' clocks
// are assumed to agree to well under a second (NTP), as for the file lease.
//
// Location syntax for lease::OpenLease: "kube:NAMESPACE/NAME".
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "operator/kube/client.h"
#include "operator/lease/lease.h"

namespace pgrs::kube {

// The spec of a Lease object, as leader election and the primary lease
// both read and write it. Times are MicroTime text ("...T04:05:06.123456Z").
struct LeaseSpec {
  std::string holderIdentity;  // "" = nobody (released)
  int leaseDurationSeconds = 0;
  std::string acquireTime;
  std::string renewTime;
  int64_t leaseTransitions = 0;
};

LeaseSpec DecodeLeaseSpec(const Json& lease);
// Writes `spec` into `lease`'s spec (an empty holder removes holderIdentity).
void EncodeLeaseSpec(const LeaseSpec& spec, Json* lease);
// A new Lease object ns/name with `spec`, ready for Client::Create.
Json NewLeaseObject(const std::string& ns, const std::string& name, const LeaseSpec& spec);

// Fail-fast client options for lease traffic: one attempt and a 500 ms
// request timeout (which cpprestsdk applies per phase, so up to ~1.5 s), so
// that a renewal fails within the smallest renewDeadlineSeconds (2 s)
// instead of hanging in retries.
ClientOptions LeaseClientOptions();

struct KubeLeaseOptions {
  // Set as the Lease's only ownerReference when Acquire creates it (the
  // operator passes its PostgresReplicaSet: controller, blockOwnerDeletion).
  std::optional<Json> ownerReference;
  // No new request is started after this much of an operation has passed;
  // with LeaseClientOptions an operation ends within about 2 s:
  // operationBudget + one request (~3 x requestTimeout).
  std::chrono::milliseconds operationBudget{500};
};

class KubeLease : public lease::PrimaryLease {
 public:
  // `client` must outlive this object; it should use LeaseClientOptions().
  KubeLease(Client* client, std::string ns, std::string name, KubeLeaseOptions options = {});

  // Absent: a record with exists = false.
  Result<lease::LeaseRecord> Get() override;
  // Conflict when another holds it, nobody does, or the Lease is absent
  // (Renew never creates it). Unavailable when the API cannot be reached.
  Result<lease::LeaseRecord> Renew(const std::string& holder, int durationSeconds) override;
  // Creates the Lease when absent (with options.ownerReference).
  Result<lease::LeaseRecord> Acquire(const std::string& holder, const std::string& expectedHolder,
                                     int durationSeconds, bool holderFenced) override;

  std::string location() const { return "kube:" + ns_ + "/" + name_; }

 private:
  // Reads the Lease into last_ (null when absent).
  Status Refresh();
  // Compare-and-swap rounds: `decide` turns the Lease (null = absent) into
  // the object to write (created when absent) or an error to return; a
  // lost race means a fresh read and another decision.
  using Decision = std::function<Result<Json>(const Json& current)>;
  Result<lease::LeaseRecord> Change(const Decision& decide);
  Status Expired(std::chrono::steady_clock::time_point start) const;

  Client* client_;
  std::string ns_;
  std::string name_;
  KubeLeaseOptions options_;
  std::mutex mu_;  // one operation at a time; guards last_
  // The Lease as last read or written: a renewal by its holder is one PUT
  // on it, read again only on conflict.
  std::optional<Json> last_;
};

lease::LeaseRecord LeaseRecordFromObject(const Json& lease);

// Parses "NAMESPACE/NAME" (the location without "kube:").
Status ParseLeaseLocation(const std::string& rest, std::string* ns, std::string* name);

// The ownerReference a Lease ns/name gets when Acquire creates it; nullopt
// = none. The operator maps "NAME-primary" to its PostgresReplicaSet.
using LeaseOwnerFn = std::function<std::optional<Json>(const std::string& ns, const std::string& name)>;

// Makes lease::OpenLease("kube:NAMESPACE/NAME") open a KubeLease on one
// process-wide client with LeaseClientOptions(), created at the first open
// from `config`, or when it is not given from ResolveConfig("") ($KUBECONFIG,
// else in-cluster). A failed configuration is not cached: the next open
// tries again. Call once at process start: `pgrs instance` does (no owner:
// agents only renew); `pgrs operator` should, with its ClientConfig and
// `ownerOf`. Calling it again replaces `ownerOf` and, until the client
// exists, `config`.
void RegisterKubeLeaseOpener(std::optional<ClientConfig> config = std::nullopt, LeaseOwnerFn ownerOf = nullptr);

}  // namespace pgrs::kube
