#include "operator/kube/certificates.h"

#include "operator/kube/meta.h"

namespace pgrs::kube {

std::string CaSecretName(const std::string& set) { return set + "-ca"; }
std::string TlsSecretName(const std::string& set) { return set + "-tls"; }

Result<std::optional<tls::KeyPair>> SecretCertificateStore::Load(const std::string& name) {
  auto secret = client_->Get(SecretResource(), owner_.ns, secret_);
  if (!secret.ok()) {
    if (secret.status().code() == StatusCode::kNotFound) return std::optional<tls::KeyPair>();
    return secret.status().WithContext("read secret " + secret_);
  }
  std::string cert = SecretValue(*secret, name + ".crt");
  std::string key = SecretValue(*secret, name + ".key");
  if (cert.empty() || key.empty()) return std::optional<tls::KeyPair>();
  return std::optional<tls::KeyPair>(tls::KeyPair{cert, key});
}

Status SecretCertificateStore::Save(const std::string& name, const tls::KeyPair& pair) {
  auto secret = client_->Get(SecretResource(), owner_.ns, secret_);
  if (!secret.ok() && secret.status().code() == StatusCode::kNotFound) {
    Json object = BuildSecret(owner_, secret_, "Opaque", {{name + ".crt", pair.certPem}, {name + ".key", pair.keyPem}});
    auto created = client_->Create(SecretResource(), owner_.ns, object);
    return created.ok() ? Status::Ok() : created.status().WithContext("create secret " + secret_);
  }
  if (!secret.ok()) return secret.status().WithContext("read secret " + secret_);
  Json object = *secret;
  if (!object.has_object_field("data")) object["data"] = Json::object();
  object["data"][name + ".crt"] = Json::string(Base64(pair.certPem));
  object["data"][name + ".key"] = Json::string(Base64(pair.keyPem));
  // A conflict (someone else wrote it) is retried on the next pass.
  auto updated = client_->Update(SecretResource(), owner_.ns, object);
  return updated.ok() ? Status::Ok() : updated.status().WithContext("update secret " + secret_);
}

tls::Subject InstanceSubject(const SetRef& owner, const std::string& instance, const std::string& podIP) {
  tls::Subject s;
  s.commonName = instance;
  auto forms = [&](const std::string& base) {
    for (const char* suffix : {"", ".NS", ".NS.svc", ".NS.svc.cluster.local"}) {
      std::string tail = suffix;
      if (auto at = tail.find("NS"); at != std::string::npos) tail.replace(at, 2, owner.ns);
      s.dnsNames.push_back(base + tail);
    }
  };
  forms(instance + "." + owner.name);  // the Pod under the headless Service
  for (const char* service : {"-rw", "-ro", "-r"}) forms(owner.name + service);
  s.dnsNames.push_back(instance);
  s.dnsNames.push_back("localhost");
  if (!podIP.empty()) s.ipAddresses.push_back(podIP);
  s.ipAddresses.push_back("127.0.0.1");
  return s;
}

}  // namespace pgrs::kube
