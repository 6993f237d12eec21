#include "operator/tls/issuer.h"

#include "operator/util/files.h"
#include "operator/util/log.h"

namespace pgrs::tls {

Result<std::optional<KeyPair>> FileCertificateStore::Load(const std::string& name) {
  auto cert = ReadFile(CertFile(name));
  auto key = ReadFile(KeyFile(name));
  if (!cert.ok() || !key.ok()) return std::optional<KeyPair>();
  return std::optional<KeyPair>(KeyPair{*cert, *key});
}

Status FileCertificateStore::Save(const std::string& name, const KeyPair& pair) {
  PGRS_RETURN_IF_ERROR(MakeDirs(dir_, 0700));
  // The key first: a certificate is never kept without its key.
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(KeyFile(name), pair.keyPem, 0600));
  return WriteFileAtomic(CertFile(name), pair.certPem, 0644);
}

Result<std::optional<KeyPair>> CachingCertificateStore::Load(const std::string& name) {
  if (auto it = cache_.find(prefix_ + name); it != cache_.end()) return std::optional<KeyPair>(it->second);
  auto loaded = inner_.Load(name);
  if (loaded.ok() && *loaded) cache_[prefix_ + name] = **loaded;
  return loaded;
}

Status CachingCertificateStore::Save(const std::string& name, const KeyPair& pair) {
  cache_.erase(prefix_ + name);
  PGRS_RETURN_IF_ERROR(inner_.Save(name, pair));
  cache_[prefix_ + name] = pair;
  return Status::Ok();
}

Result<KeyPair> EnsureAuthority(CertificateStore& store, const std::string& commonName,
                                std::chrono::seconds validity, Time now) {
  auto kept = store.Load("ca");
  if (!kept.ok()) return kept.status();
  if (*kept) {
    auto info = Inspect((*kept)->certPem);
    if (!info.ok()) return info.status().WithContext("the CA " + commonName);
    if (!info->isAuthority) return Status::Invalid("the CA " + commonName + " is not a CA certificate");
    PGRS_RETURN_IF_ERROR(VerifyKeyMatches((*kept)->certPem, (*kept)->keyPem).WithContext("the CA " + commonName));
    return **kept;
  }
  auto made = MakeAuthority(commonName, validity, now);
  if (!made.ok()) return made.status();
  PGRS_RETURN_IF_ERROR(store.Save("ca", *made));
  spdlog::info("made certificate authority name={} validDays={}", commonName, validity.count() / 86400);
  return *made;
}

Result<KeyPair> EnsureCertificate(CertificateStore& store, const std::string& owner, const KeyPair& authority,
                                  const std::string& name, const Subject& subject, Usage usage,
                                  std::chrono::seconds validity, Time now) {
  auto kept = store.Load(name);
  if (!kept.ok()) return kept.status();
  const std::string reason = ReissueReason(*kept, authority.certPem, subject, now);
  if (reason.empty()) return **kept;
  auto issued = Issue(authority, subject, usage, validity, now);
  if (!issued.ok()) return issued.status().WithContext("certificate " + name);
  PGRS_RETURN_IF_ERROR(store.Save(name, *issued));
  auto info = Inspect(issued->certPem);
  spdlog::info("issued certificate set={} name={} reason=\"{}\" serial={} validSeconds={}", owner, name, reason,
               info.ok() ? info->serial : "", validity.count());
  return *issued;
}

Result<KeyPair> EnsureSetCertificate(CertificateStore& caStore, CertificateStore& store, const std::string& set,
                                     std::chrono::seconds caValidity, const std::string& name,
                                     const Subject& subject, Usage usage, std::chrono::seconds validity, Time now) {
  auto ca = EnsureAuthority(caStore, set + "-ca", caValidity, now);
  if (!ca.ok() || name == "ca") return ca;
  return EnsureCertificate(store, set, *ca, name, subject, usage, validity, now);
}

}  // namespace pgrs::tls
