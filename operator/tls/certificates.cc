#include "operator/tls/certificates.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <memory>

namespace pgrs::tls {
namespace {

using namespace std::chrono_literals;

// Clocks of the machines that check a certificate differ from ours.
constexpr auto kBackdate = 5min;

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Bio = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using Key = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE, X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX, X509_STORE_CTX_free>>;
using Names = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES, GENERAL_NAMES_free>>;

std::string OpenSslError(const std::string& what) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return what;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  return what + ": " + buf;
}

Result<Cert> ReadCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return Status::Invalid(OpenSslError("not a PEM certificate"));
  return cert;
}

Result<Key> ReadKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return Status::Invalid(OpenSslError("not a PEM private key"));
  return key;
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

std::string KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

Time FromAsn1(const ASN1_TIME* t) {
  struct tm tm {};
  ASN1_TIME_to_tm(t, &tm);
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string CommonName(const X509_NAME* name) {
  int index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (index < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                     static_cast<size_t>(ASN1_STRING_length(data)));
}

Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return Status::Internal(OpenSslError("certificate extension " + value));
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return Status::Ok();
}

Status AddNames(X509* cert, const Subject& subject) {
  if (subject.dnsNames.empty() && subject.ipAddresses.empty()) return Status::Ok();
  Names names(sk_GENERAL_NAME_new_null());
  for (const auto& dns : subject.dnsNames) {
    GENERAL_NAME* name = GENERAL_NAME_new();
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    ASN1_STRING_set(text, dns.data(), static_cast<int>(dns.size()));
    GENERAL_NAME_set0_value(name, GEN_DNS, text);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  for (const auto& ip : subject.ipAddresses) {
    ASN1_OCTET_STRING* octets = a2i_IPADDRESS(ip.c_str());
    if (octets == nullptr) return Status::Invalid("not an IP address: " + ip);
    GENERAL_NAME* name = GENERAL_NAME_new();
    GENERAL_NAME_set0_value(name, GEN_IPADD, octets);
    sk_GENERAL_NAME_push(names.get(), name);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, 0) != 1) {
    return Status::Internal(OpenSslError("subjectAltName"));
  }
  return Status::Ok();
}

Result<Key> NewKey() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return Status::Internal(OpenSslError("making an EC key"));
  return key;
}

// A certificate for `key`, its validity and serial set, not yet signed.
Result<Cert> NewCert(EVP_PKEY* key, const std::string& commonName, std::chrono::seconds validity, Time now) {
  Cert cert(X509_new());
  X509_set_version(cert.get(), 2);  // v3
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Status::Internal(OpenSslError("serial"));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  const time_t from = std::chrono::system_clock::to_time_t(now - kBackdate);
  const time_t to = std::chrono::system_clock::to_time_t(now + validity);
  if (ASN1_TIME_set(X509_getm_notBefore(cert.get()), from) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()), to) == nullptr) {
    return Status::Internal(OpenSslError("validity"));
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pgrs"), -1, -1, 0);
  if (!commonName.empty()) {
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(commonName.data()),
                                   static_cast<int>(commonName.size()), -1, 0) != 1) {
      return Status::Invalid(OpenSslError("common name " + commonName));
    }
  }
  X509_set_pubkey(cert.get(), key);
  return cert;
}

}  // namespace

Result<KeyPair> MakeAuthority(const std::string& commonName, std::chrono::seconds validity, Time now) {
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = NewCert(key->get(), commonName, validity, now);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  X509_set_issuer_name(c, X509_get_subject_name(c));
  PGRS_RETURN_IF_ERROR(AddExtension(c, c, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  PGRS_RETURN_IF_ERROR(AddExtension(c, c, NID_key_usage, "critical,keyCertSign,cRLSign"));
  PGRS_RETURN_IF_ERROR(AddExtension(c, c, NID_subject_key_identifier, "hash"));
  if (X509_sign(c, key->get(), EVP_sha256()) == 0) return Status::Internal(OpenSslError("signing the CA"));
  return KeyPair{CertPem(c), KeyPem(key->get())};
}

Result<KeyPair> Issue(const KeyPair& authority, const Subject& subject, Usage usage, std::chrono::seconds validity,
                      Time now) {
  auto caCert = ReadCert(authority.certPem);
  if (!caCert.ok()) return caCert.status().WithContext("the CA");
  auto caKey = ReadKey(authority.keyPem);
  if (!caKey.ok()) return caKey.status().WithContext("the CA");
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = NewCert(key->get(), subject.commonName, validity, now);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  X509_set_issuer_name(c, X509_get_subject_name(caCert->get()));
  PGRS_RETURN_IF_ERROR(AddExtension(c, caCert->get(), NID_basic_constraints, "critical,CA:FALSE"));
  PGRS_RETURN_IF_ERROR(AddExtension(c, caCert->get(), NID_key_usage, "critical,digitalSignature,keyAgreement"));
  PGRS_RETURN_IF_ERROR(
      AddExtension(c, caCert->get(), NID_ext_key_usage, usage == Usage::kServer ? "serverAuth" : "clientAuth"));
  PGRS_RETURN_IF_ERROR(AddExtension(c, caCert->get(), NID_authority_key_identifier, "keyid:always"));
  PGRS_RETURN_IF_ERROR(AddNames(c, subject));
  if (X509_sign(c, caKey->get(), EVP_sha256()) == 0) return Status::Internal(OpenSslError("signing"));
  return KeyPair{CertPem(c), KeyPem(key->get())};
}

Result<CertificateInfo> Inspect(const std::string& certPem) {
  auto cert = ReadCert(certPem);
  if (!cert.ok()) return cert.status();
  X509* c = cert->get();
  CertificateInfo info;
  info.subject.commonName = CommonName(X509_get_subject_name(c));
  info.issuerCommonName = CommonName(X509_get_issuer_name(c));
  info.notBefore = FromAsn1(X509_get0_notBefore(c));
  info.notAfter = FromAsn1(X509_get0_notAfter(c));
  info.isAuthority = X509_check_ca(c) != 0;
  if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr)) {
    char* hex = BN_bn2hex(bn);
    info.serial = hex;
    OPENSSL_free(hex);
    BN_free(bn);
  }
  Names names(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(c, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type == GEN_DNS) {
      const ASN1_STRING* s = name->d.dNSName;
      info.subject.dnsNames.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                         static_cast<size_t>(ASN1_STRING_length(s)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* s = name->d.iPAddress;
      char text[INET6_ADDRSTRLEN] = {};
      const int family = ASN1_STRING_length(s) == 4 ? AF_INET : AF_INET6;
      if (inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof text) != nullptr) {
        info.subject.ipAddresses.emplace_back(text);
      }
    }
  }
  return info;
}

Status VerifyIssuedBy(const std::string& authorityPem, const std::string& certPem, Time now) {
  auto ca = ReadCert(authorityPem);
  if (!ca.ok()) return ca.status().WithContext("the CA");
  auto cert = ReadCert(certPem);
  if (!cert.ok()) return cert.status();
  Store store(X509_STORE_new());
  X509_STORE_add_cert(store.get(), ca->get());
  StoreCtx ctx(X509_STORE_CTX_new());
  X509_STORE_CTX_init(ctx.get(), store.get(), cert->get(), nullptr);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
  if (X509_verify_cert(ctx.get()) == 1) return Status::Ok();
  const int error = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  return Status::Invalid(std::string("certificate ") + CommonName(X509_get_subject_name(cert->get())) + ": " +
                         X509_verify_cert_error_string(error));
}

Status VerifyKeyMatches(const std::string& certPem, const std::string& keyPem) {
  auto cert = ReadCert(certPem);
  if (!cert.ok()) return cert.status();
  auto key = ReadKey(keyPem);
  if (!key.ok()) return key.status();
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return Status::Invalid("the private key does not belong to the certificate");
  }
  return Status::Ok();
}

Time RenewalTime(const CertificateInfo& info) {
  // Counted from when it was issued, not from its back-dated start: a
  // validity of minutes must not be due at once.
  const Time issued = std::min(info.notBefore + kBackdate, info.notAfter);
  return issued + (info.notAfter - issued) * 2 / 3;
}

std::string ReissueReason(const std::optional<KeyPair>& current, const std::string& authorityPem,
                          const Subject& wanted, Time now) {
  if (!current) return "none issued yet";
  auto info = Inspect(current->certPem);
  if (!info.ok()) return "unreadable: " + info.status().message();
  if (Status s = VerifyIssuedBy(authorityPem, current->certPem, now); !s.ok()) return s.message();
  if (Status s = VerifyKeyMatches(current->certPem, current->keyPem); !s.ok()) return s.message();
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  if (info->subject.commonName != wanted.commonName || sorted(info->subject.dnsNames) != sorted(wanted.dnsNames) ||
      sorted(info->subject.ipAddresses) != sorted(wanted.ipAddresses)) {
    return "its names changed";
  }
  if (now >= RenewalTime(*info)) return "due for renewal";
  return "";
}

}  // namespace pgrs::tls
