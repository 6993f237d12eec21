// The certificates pgrs issues for a replica set (OpenSSL, no files): a CA
// per set, server certificates for its instances, client certificates for
// replication and for the control plane's calls to the agents. Keys are
// ECDSA P-256 (small, fast to make, accepted by PostgreSQL, libpq and
// pgBackRest), written as PKCS#8 PEM.
//
// Everything here is a function of its arguments (the current time
// included); the random serial numbers and keys are the only other input.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "operator/util/status.h"

namespace pgrs::tls {

using Time = std::chrono::system_clock::time_point;

struct KeyPair {
  std::string certPem;
  std::string keyPem;
  bool operator==(const KeyPair&) const = default;
};

enum class Usage { kServer, kClient };

// What a certificate says of its holder.
struct Subject {
  std::string commonName;               // a client certificate's user (PostgreSQL's `cert` method)
  std::vector<std::string> dnsNames;    // subjectAltName DNS entries
  std::vector<std::string> ipAddresses;  // subjectAltName IP entries (v4 or v6 text)
  bool operator==(const Subject&) const = default;
};

// A CA valid from five minutes before `now` (clocks differ) for `validity`.
Result<KeyPair> MakeAuthority(const std::string& commonName, std::chrono::seconds validity, Time now);

// A certificate for `subject`, signed by `authority`, valid as above.
Result<KeyPair> Issue(const KeyPair& authority, const Subject& subject, Usage usage,
                      std::chrono::seconds validity, Time now);

struct CertificateInfo {
  Subject subject;
  std::string issuerCommonName;
  std::string serial;  // hex
  Time notBefore;
  Time notAfter;
  bool isAuthority = false;
};

// What a PEM certificate (the first one in the text) says; Invalid when it
// is not one.
Result<CertificateInfo> Inspect(const std::string& certPem);

// Whether `certPem` was signed by the CA `authorityPem` and is valid at
// `now`: Invalid naming why (not signed by it, expired, not yet valid).
Status VerifyIssuedBy(const std::string& authorityPem, const std::string& certPem, Time now);

// Whether `keyPem` is the private key of `certPem`: Invalid when not.
Status VerifyKeyMatches(const std::string& certPem, const std::string& keyPem);

// When a certificate is renewed: two thirds into its validity, counted
// from when it was issued.
Time RenewalTime(const CertificateInfo& info);

// Why a certificate must be issued (again) for `wanted`, or "" when
// `current` serves: none yet, not readable, not from `authorityPem`, its
// names differ, or its renewal time has come.
std::string ReissueReason(const std::optional<KeyPair>& current, const std::string& authorityPem,
                          const Subject& wanted, Time now);

}  // namespace pgrs::tls
