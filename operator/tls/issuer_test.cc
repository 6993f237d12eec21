#include "operator/tls/issuer.h"

#include <gtest/gtest.h>

namespace pgrs::tls {
namespace {

using namespace std::chrono_literals;

const Time kNow = std::chrono::system_clock::from_time_t(1800000000);

// A store in memory that counts its reads and writes.
class MemoryStore : public CertificateStore {
 public:
  Result<std::optional<KeyPair>> Load(const std::string& name) override {
    ++loads;
    auto it = pairs.find(name);
    return it == pairs.end() ? std::optional<KeyPair>() : std::optional<KeyPair>(it->second);
  }
  Status Save(const std::string& name, const KeyPair& pair) override {
    ++saves;
    pairs[name] = pair;
    return Status::Ok();
  }
  std::map<std::string, KeyPair> pairs;
  int loads = 0, saves = 0;
};

TEST(EnsureAuthority, MadeOnceThenKept) {
  MemoryStore store;
  auto first = EnsureAuthority(store, "demo-ca", 3650 * 24h, kNow);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto again = EnsureAuthority(store, "demo-ca", 3650 * 24h, kNow + 24h);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*first, *again);
  EXPECT_EQ(store.saves, 1);
}

TEST(EnsureAuthority, ABrokenCaIsAnErrorNeverReplaced) {
  MemoryStore store;
  auto ca = EnsureAuthority(store, "demo-ca", 3650 * 24h, kNow);
  auto leaf = Issue(*ca, {"x", {}, {}}, Usage::kClient, 24h, kNow);
  ASSERT_TRUE(ca.ok() && leaf.ok());
  store.pairs["ca"] = *leaf;  // not a CA
  auto notCa = EnsureAuthority(store, "demo-ca", 3650 * 24h, kNow);
  ASSERT_FALSE(notCa.ok());
  EXPECT_EQ(notCa.status().message(), "the CA demo-ca is not a CA certificate");
  store.pairs["ca"] = KeyPair{ca->certPem, leaf->keyPem};  // another key
  auto wrongKey = EnsureAuthority(store, "demo-ca", 3650 * 24h, kNow);
  ASSERT_FALSE(wrongKey.ok());
  EXPECT_NE(wrongKey.status().message().find("does not belong"), std::string::npos);
  EXPECT_EQ(store.saves, 1);
}

TEST(EnsureCertificate, IssuedWhenNeededOnly) {
  MemoryStore store;
  auto ca = EnsureAuthority(store, "demo-ca", 3650 * 24h, kNow);
  ASSERT_TRUE(ca.ok());
  const Subject subject{"demo-1", {"localhost"}, {"127.0.0.1"}};
  auto first = EnsureCertificate(store, "demo", *ca, "demo-1", subject, Usage::kServer, 90 * 24h, kNow);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Inspect(first->certPem)->subject, subject);
  // Kept while it serves.
  auto kept = EnsureCertificate(store, "demo", *ca, "demo-1", subject, Usage::kServer, 90 * 24h, kNow + 59 * 24h);
  EXPECT_EQ(*kept, *first);
  // Renewed at two thirds.
  auto renewed = EnsureCertificate(store, "demo", *ca, "demo-1", subject, Usage::kServer, 90 * 24h, kNow + 61 * 24h);
  EXPECT_NE(renewed->certPem, first->certPem);
  EXPECT_EQ(store.pairs["demo-1"], *renewed);
  // Issued again for a new address.
  Subject moved = subject;
  moved.ipAddresses = {"10.0.0.9"};
  auto reissued = EnsureCertificate(store, "demo", *ca, "demo-1", moved, Usage::kServer, 90 * 24h, kNow + 62 * 24h);
  EXPECT_EQ(Inspect(reissued->certPem)->subject, moved);
}

TEST(EnsureSetCertificate, TheCaByItsNameElseACertificateItIssued) {
  MemoryStore caStore, store;
  auto ca = EnsureSetCertificate(caStore, store, "demo", 3650 * 24h, "ca", {}, Usage::kServer, 90 * 24h, kNow);
  ASSERT_TRUE(ca.ok()) << ca.status().ToString();
  EXPECT_EQ(Inspect(ca->certPem)->subject.commonName, "demo-ca");
  EXPECT_TRUE(store.pairs.empty());
  auto leaf = EnsureSetCertificate(caStore, store, "demo", 3650 * 24h, "replication", {"pgrs_replication", {}, {}},
                                   Usage::kClient, 90 * 24h, kNow);
  ASSERT_TRUE(leaf.ok()) << leaf.status().ToString();
  EXPECT_TRUE(VerifyIssuedBy(ca->certPem, leaf->certPem, kNow).ok());
  EXPECT_EQ(store.pairs.count("replication"), 1u);
  EXPECT_EQ(caStore.saves, 1);
}

TEST(CachingCertificateStore, ReadsTheInnerStoreOnceAndWritesThrough) {
  MemoryStore inner;
  std::map<std::string, KeyPair> cache;
  CachingCertificateStore store(inner, cache, "ns/demo/");
  auto ca = EnsureAuthority(store, "demo-ca", 3650 * 24h, kNow);
  ASSERT_TRUE(ca.ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(EnsureCertificate(store, "demo", *ca, "replication", {"pgrs_replication", {}, {}}, Usage::kClient,
                                  90 * 24h, kNow)
                    .ok());
  }
  EXPECT_EQ(inner.saves, 2);
  EXPECT_EQ(inner.loads, 2) << "each name read once, when it was not there yet";
  EXPECT_EQ(cache.count("ns/demo/replication"), 1u);
}

}  // namespace
}  // namespace pgrs::tls
