#include "operator/tls/certificates.h"

#include <gtest/gtest.h>

namespace pgrs::tls {
namespace {

using namespace std::chrono_literals;

const Time kNow = std::chrono::system_clock::from_time_t(1800000000);  // 2027-01-15
constexpr std::chrono::seconds kDay = 24h;

class CertificatesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ca = MakeAuthority("demo-ca", 3650 * kDay, kNow);
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = new KeyPair(*ca);
    auto other = MakeAuthority("other-ca", 3650 * kDay, kNow);
    ASSERT_TRUE(other.ok());
    other_ = new KeyPair(*other);
  }
  static void TearDownTestSuite() {
    delete ca_;
    delete other_;
  }
  static KeyPair* ca_;
  static KeyPair* other_;
};
KeyPair* CertificatesTest::ca_ = nullptr;
KeyPair* CertificatesTest::other_ = nullptr;

TEST_F(CertificatesTest, AuthorityIsACaNamedAsAsked) {
  auto info = Inspect(ca_->certPem);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(info->isAuthority);
  EXPECT_EQ(info->subject.commonName, "demo-ca");
  EXPECT_EQ(info->issuerCommonName, "demo-ca");
  EXPECT_EQ(info->notBefore, kNow - 5min);
  EXPECT_EQ(info->notAfter, kNow + 3650 * kDay);
  EXPECT_TRUE(VerifyIssuedBy(ca_->certPem, ca_->certPem, kNow).ok());
  EXPECT_TRUE(VerifyKeyMatches(ca_->certPem, ca_->keyPem).ok());
}

TEST_F(CertificatesTest, ServerCertificateCarriesItsNames) {
  Subject subject{"demo-1", {"localhost", "demo-1.demo.ns.svc"}, {"127.0.0.1", "::1", "10.1.2.3"}};
  auto pair = Issue(*ca_, subject, Usage::kServer, 90 * kDay, kNow);
  ASSERT_TRUE(pair.ok()) << pair.status().ToString();
  auto info = Inspect(pair->certPem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->subject, subject);
  EXPECT_FALSE(info->isAuthority);
  EXPECT_EQ(info->issuerCommonName, "demo-ca");
  EXPECT_EQ(info->notAfter, kNow + 90 * kDay);
  EXPECT_FALSE(info->serial.empty());
  EXPECT_TRUE(VerifyIssuedBy(ca_->certPem, pair->certPem, kNow).ok());
  EXPECT_TRUE(VerifyKeyMatches(pair->certPem, pair->keyPem).ok());
}

TEST_F(CertificatesTest, SerialsDiffer) {
  Subject subject{"pgrs_replication", {}, {}};
  auto a = Issue(*ca_, subject, Usage::kClient, kDay, kNow);
  auto b = Issue(*ca_, subject, Usage::kClient, kDay, kNow);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(Inspect(a->certPem)->serial, Inspect(b->certPem)->serial);
  EXPECT_NE(a->keyPem, b->keyPem);
}

TEST_F(CertificatesTest, ShortValidityIsNotDueAtOnce) {
  auto pair = Issue(*ca_, {"demo-1", {"localhost"}, {}}, Usage::kServer, 60s, kNow);
  ASSERT_TRUE(pair.ok());
  EXPECT_EQ(RenewalTime(*Inspect(pair->certPem)), kNow + 40s);
}

TEST_F(CertificatesTest, VerificationRefusesWhatItShould) {
  auto pair = Issue(*ca_, {"demo-1", {"localhost"}, {}}, Usage::kServer, 10 * kDay, kNow);
  ASSERT_TRUE(pair.ok());
  auto otherPair = Issue(*other_, {"demo-1", {"localhost"}, {}}, Usage::kServer, 10 * kDay, kNow);
  ASSERT_TRUE(otherPair.ok());
  struct Row {
    const char* what;
    std::string ca, cert;
    Time at;
    const char* message;  // "" = valid
  } rows[] = {
      {"valid", ca_->certPem, pair->certPem, kNow, ""},
      {"another CA", other_->certPem, pair->certPem, kNow, "unable to get local issuer certificate"},
      {"expired", ca_->certPem, pair->certPem, kNow + 11 * kDay, "certificate has expired"},
      {"not yet valid", ca_->certPem, pair->certPem, kNow - kDay, "certificate is not yet valid"},
      {"not a certificate", ca_->certPem, "garbage", kNow, "not a PEM certificate"},
  };
  for (const auto& row : rows) {
    Status s = VerifyIssuedBy(row.ca, row.cert, row.at);
    if (std::string(row.message).empty()) {
      EXPECT_TRUE(s.ok()) << row.what << ": " << s.ToString();
    } else {
      EXPECT_NE(s.message().find(row.message), std::string::npos) << row.what << ": " << s.ToString();
    }
  }
  EXPECT_FALSE(VerifyKeyMatches(pair->certPem, otherPair->keyPem).ok());
  EXPECT_FALSE(VerifyKeyMatches(pair->certPem, "not a key").ok());
}

TEST_F(CertificatesTest, ReissueReasonTable) {
  const Subject wanted{"demo-1", {"localhost"}, {"127.0.0.1"}};
  auto current = Issue(*ca_, wanted, Usage::kServer, 90 * kDay, kNow);
  auto fromOther = Issue(*other_, wanted, Usage::kServer, 90 * kDay, kNow);
  ASSERT_TRUE(current.ok() && fromOther.ok());
  KeyPair wrongKey{current->certPem, fromOther->keyPem};
  Subject moved = wanted;
  moved.ipAddresses = {"127.0.0.2"};
  Subject reordered{"demo-1", {"localhost"}, {"127.0.0.1"}};
  struct Row {
    const char* what;
    std::optional<KeyPair> current;
    Subject wanted;
    Time at;
    std::string reason;
  } rows[] = {
      {"fresh", *current, wanted, kNow + kDay, ""},
      {"same names", *current, reordered, kNow + kDay, ""},
      {"none", std::nullopt, wanted, kNow, "none issued yet"},
      {"garbage", KeyPair{"x", "y"}, wanted, kNow, "unreadable: not a PEM certificate"},
      {"other CA", *fromOther, wanted, kNow, "certificate demo-1: unable to get local issuer certificate"},
      {"wrong key", wrongKey, wanted, kNow, "the private key does not belong to the certificate"},
      {"new address", *current, moved, kNow, "its names changed"},
      {"just before 2/3", *current, wanted, kNow + 59 * kDay, ""},
      {"at 2/3", *current, wanted, kNow + 60 * kDay, "due for renewal"},
      {"expired", *current, wanted, kNow + 91 * kDay, "certificate demo-1: certificate has expired"},
  };
  for (const auto& row : rows) {
    std::string reason = ReissueReason(row.current, ca_->certPem, row.wanted, row.at);
    if (row.reason.rfind("unreadable", 0) == 0) {
      EXPECT_EQ(reason.rfind(row.reason, 0), 0u) << row.what << ": " << reason;
    } else {
      EXPECT_EQ(reason, row.reason) << row.what;
    }
  }
}

}  // namespace
}  // namespace pgrs::tls
