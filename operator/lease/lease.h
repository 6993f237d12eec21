// The primary lease: the one instance allowed to run as primary holds it
// and its agent renews it. A standby is promoted only after the lease was
// handed to it, which happens only when the old holder is fenced or its
// lease has run out; an agent that loses the lease, or cannot renew it in
// time, stops its PostgreSQL. In local mode the lease is a file; in
// Kubernetes a coordination.k8s.io Lease. Both change it compare-and-swap.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "operator/util/status.h"

namespace pgrs::lease {

struct LeaseRecord {
  bool exists = false;
  std::string holder;
  int64_t acquireTimeMs = 0;  // Unix time in ms
  int64_t renewTimeMs = 0;
  int durationSeconds = 0;
  int transitions = 0;
  // Saturating: a record read from a file may hold any times.
  bool ExpiredAt(int64_t nowMs) const {
    int64_t until = 0;
    if (__builtin_add_overflow(renewTimeMs, int64_t{durationSeconds} * 1000, &until)) {
      until = durationSeconds > 0 ? INT64_MAX : INT64_MIN;
    }
    return !exists || nowMs > until;
  }
  bool operator==(const LeaseRecord&) const = default;
};

// The JSON text a FileLease keeps in its file, and back (Internal, "unreadable
// lease: ...", when it is not a whole record).
std::string EncodeLeaseFile(const LeaseRecord& record);
Result<LeaseRecord> DecodeLeaseFile(const std::string& text);

int64_t NowMs();

class PrimaryLease {
 public:
  virtual ~PrimaryLease() = default;
  virtual Result<LeaseRecord> Get() = 0;
  // Extends the lease iff `holder` holds it; Conflict if another does.
  virtual Result<LeaseRecord> Renew(const std::string& holder, int durationSeconds) = 0;
  // Hands the lease to `holder` iff it is absent, already theirs, or held by
  // `expectedHolder` and either expired or `holderFenced` (its holder is
  // known to be stopped). Conflict otherwise.
  virtual Result<LeaseRecord> Acquire(const std::string& holder, const std::string& expectedHolder,
                                      int durationSeconds, bool holderFenced) = 0;
};

// A lease kept in a JSON file, changed under flock(2) of "<path>.lock".
class FileLease : public PrimaryLease {
 public:
  explicit FileLease(std::string path) : path_(std::move(path)) {}
  Result<LeaseRecord> Get() override;
  Result<LeaseRecord> Renew(const std::string& holder, int durationSeconds) override;
  Result<LeaseRecord> Acquire(const std::string& holder, const std::string& expectedHolder, int durationSeconds,
                              bool holderFenced) override;

 private:
  Result<LeaseRecord> Read();
  Status Write(const LeaseRecord& record);
  std::string path_;
};

// Opens the lease at a location "SCHEME:REST". "file:/abs/path" is a
// FileLease and always known. Other schemes come from the layer that
// implements them, registered at process start: the lease library must not
// depend on the Kubernetes client, which itself implements PrimaryLease.
//   "kube:NAMESPACE/NAME"  a coordination.k8s.io/v1 Lease; registered by
//                          kube::RegisterKubeLeaseOpener() (operator/kube/
//                          primary_lease.h), which `pgrs instance` calls in
//                          its main and `pgrs operator` must call at startup.
// An unknown or unregistered scheme is Invalid.
Result<std::unique_ptr<PrimaryLease>> OpenLease(const std::string& location);

// Opens the lease at `rest`, the part of the location after "SCHEME:".
using LeaseOpener = std::function<Result<std::unique_ptr<PrimaryLease>>(const std::string& rest)>;
// Makes OpenLease("SCHEME:...") call `opener`; a later registration of the
// same scheme replaces the earlier one. Thread-safe. "file" cannot be
// replaced.
void RegisterOpener(const std::string& scheme, LeaseOpener opener);

}  // namespace pgrs::lease
