// Keeps a set's certificates issued: the CA made once, every other
// certificate issued again when tls::ReissueReason says so (none yet, names
// changed, renewal due, another CA). The same logic for both modes; only
// where the certificates are kept differs (files in local mode, a Secret in
// Kubernetes).
#pragma once

#include <map>
#include <optional>
#include <string>

#include "operator/tls/certificates.h"

namespace pgrs::tls {

// Where certificates are kept, by name ("ca", "replication", "demo-1").
class CertificateStore {
 public:
  virtual ~CertificateStore() = default;
  // nullopt when none is kept under `name`.
  virtual Result<std::optional<KeyPair>> Load(const std::string& name) = 0;
  virtual Status Save(const std::string& name, const KeyPair& pair) = 0;
};

// NAME.crt and NAME.key in a directory (made with mode 0700; keys 0600).
class FileCertificateStore : public CertificateStore {
 public:
  explicit FileCertificateStore(std::string dir) : dir_(std::move(dir)) {}
  Result<std::optional<KeyPair>> Load(const std::string& name) override;
  Status Save(const std::string& name, const KeyPair& pair) override;
  std::string CertFile(const std::string& name) const { return dir_ + "/" + name + ".crt"; }
  std::string KeyFile(const std::string& name) const { return dir_ + "/" + name + ".key"; }

 private:
  std::string dir_;
};

// Remembers what another store holds, so that a certificate that serves is
// not read again on every pass (a Secret is a request to the API server).
// Only for a store that nothing else writes.
class CachingCertificateStore : public CertificateStore {
 public:
  CachingCertificateStore(CertificateStore& inner, std::map<std::string, KeyPair>& cache, std::string prefix)
      : inner_(inner), cache_(cache), prefix_(std::move(prefix)) {}
  Result<std::optional<KeyPair>> Load(const std::string& name) override;
  Status Save(const std::string& name, const KeyPair& pair) override;

 private:
  CertificateStore& inner_;
  std::map<std::string, KeyPair>& cache_;
  std::string prefix_;  // keys of `cache` are prefix + name
};

// The CA kept as "ca" in `store`, made (valid for `validity`) when there is
// none. A CA that is not one or does not match its key is an error, never
// replaced: every certificate and client trusts it.
Result<KeyPair> EnsureAuthority(CertificateStore& store, const std::string& commonName,
                                std::chrono::seconds validity, Time now);

// The certificate kept as `name`, issued by `authority` again when
// ReissueReason gives a reason (logged with `owner`, the set).
Result<KeyPair> EnsureCertificate(CertificateStore& store, const std::string& owner, const KeyPair& authority,
                                  const std::string& name, const Subject& subject, Usage usage,
                                  std::chrono::seconds validity, Time now);

// What both runtimes ask for: the set's CA (EnsureAuthority, "ca" in
// `caStore`, named SET-ca) when `name` is "ca", else the certificate `name`
// that it issued (EnsureCertificate in `store`).
Result<KeyPair> EnsureSetCertificate(CertificateStore& caStore, CertificateStore& store, const std::string& set,
                                     std::chrono::seconds caValidity, const std::string& name,
                                     const Subject& subject, Usage usage, std::chrono::seconds validity, Time now);

}  // namespace pgrs::tls
