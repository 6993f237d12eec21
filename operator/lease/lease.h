// The primary lease: the one instance allowed to run as primary holds it
// and its agent renews it. A standby is promoted only after the lease was
// handed to it, which happens only when the old holder is fenced or its
// lease has run out; an agent that loses the lease, or cannot renew it in
// time, stops its PostgreSQL. In local mode the lease is a file; in
// Kubernetes a coordination.k8s.io Lease. Both change it compare-and-swap.
#pragma once

#include <cstdint>
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
  bool ExpiredAt(int64_t nowMs) const { return !exists || nowMs > renewTimeMs + int64_t{durationSeconds} * 1000; }
};

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

// "file:/abs/path" -> FileLease. (Kubernetes leases come with the kube layer.)
Result<std::unique_ptr<PrimaryLease>> OpenLease(const std::string& location);

}  // namespace pgrs::lease
