// A set's certificates in Kubernetes: the CA in the Secret NAME-ca (ca.crt,
// ca.key), every certificate it issued in the Secret NAME-tls (INSTANCE.crt
// and INSTANCE.key, replication.crt and replication.key), both owned by the
// set.
#pragma once

#include "operator/kube/client.h"
#include "operator/kube/objects.h"
#include "operator/tls/issuer.h"

namespace pgrs::kube {

std::string CaSecretName(const std::string& set);
std::string TlsSecretName(const std::string& set);

// Keys NAME.crt and NAME.key of one Secret, made when missing.
class SecretCertificateStore : public tls::CertificateStore {
 public:
  SecretCertificateStore(Client* client, SetRef owner, std::string secret)
      : client_(client), owner_(std::move(owner)), secret_(std::move(secret)) {}
  Result<std::optional<tls::KeyPair>> Load(const std::string& name) override;
  Status Save(const std::string& name, const tls::KeyPair& pair) override;

 private:
  Client* client_;
  SetRef owner_;
  std::string secret_;
};

// The names an instance is reached by: its Pod's name under the headless
// Service, the -rw, -ro and -r Services (each short, with the namespace,
// .svc and .svc.cluster.local), localhost; its Pod IP and 127.0.0.1.
tls::Subject InstanceSubject(const SetRef& owner, const std::string& instance, const std::string& podIP);

}  // namespace pgrs::kube
