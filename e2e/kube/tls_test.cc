// HTTPS to the test API server: server verification, client certificates,
// bearer tokens, token rotation, and a kubeconfig written the way kubectl
// writes one.
#include <cpprest/asyncrt_utils.h>
#include <gtest/gtest.h>

#include "e2e/kube/test_util.h"
#include "operator/kube/informer.h"

namespace pgrs::e2e {
namespace {

using kube::Json;

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    auto certs = MakeTestCertificates(dir_->path());
    ASSERT_TRUE(certs.ok()) << certs.status().ToString();
    certs_ = new TestCertificates(*certs);
  }
  static void TearDownTestSuite() {
    delete certs_;
    delete dir_;
  }

  ApiServerOptions TlsOptions(bool clientCerts, std::vector<std::string> tokens) {
    ApiServerOptions options;
    options.tls = true;
    options.certFile = certs_->serverCertFile;
    options.keyFile = certs_->serverKeyFile;
    if (clientCerts) options.clientCaFile = certs_->caFile;
    options.tokens = std::move(tokens);
    return options;
  }

  kube::ClientConfig BaseConfig(const ApiServer& server) {
    kube::ClientConfig config;
    config.server = server.url();
    config.caData = ReadFile(certs_->caFile).value();
    return config;
  }

  static std::unique_ptr<kube::Client> Make(const kube::ClientConfig& config) {
    kube::ClientOptions options;
    options.maxAttempts = 2;
    options.retryBackoff = {std::chrono::milliseconds(20), std::chrono::milliseconds(100), 2.0, 0.2};
    auto client = kube::Client::Create(config, options);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(client.value()) : nullptr;
  }

  static Status TryCreate(kube::Client& client, const std::string& name) {
    auto result = client.Create(kube::ConfigMapResource(), "ns1", ConfigMap(name, "v"));
    return result.ok() ? Status::Ok() : result.status();
  }

  static TempDir* dir_;
  static TestCertificates* certs_;
};

TempDir* TlsTest::dir_ = nullptr;
TestCertificates* TlsTest::certs_ = nullptr;

TEST_F(TlsTest, AClientCertificateSignedByTheClusterCaAuthenticates) {
  ApiServer server(TlsOptions(true, {}));
  ASSERT_TRUE(server.Start().ok());
  auto config = BaseConfig(server);
  config.clientCertData = ReadFile(certs_->clientCertFile).value();
  config.clientKeyData = ReadFile(certs_->clientKeyFile).value();
  auto client = Make(config);
  ASSERT_TRUE(TryCreate(*client, "a").ok());
  EXPECT_TRUE(client->Get(kube::ConfigMapResource(), "ns1", "a").ok());

  auto anonymous = Make(BaseConfig(server));
  EXPECT_EQ(TryCreate(*anonymous, "b").code(), StatusCode::kInvalid);
}

TEST_F(TlsTest, BearerTokensAuthenticateAndWrongOnesAreRejected) {
  ApiServer server(TlsOptions(false, {"good-token"}));
  ASSERT_TRUE(server.Start().ok());
  auto config = BaseConfig(server);
  config.token = "good-token";
  EXPECT_TRUE(TryCreate(*Make(config), "a").ok());
  config.token = "bad-token";
  Status bad = TryCreate(*Make(config), "b");
  EXPECT_EQ(bad.code(), StatusCode::kInvalid);
  EXPECT_NE(bad.message().find("401"), std::string::npos) << bad.ToString();
}

TEST_F(TlsTest, AServerCertificateFromAnotherCaIsRefusedUnlessVerificationIsSkipped) {
  ApiServer server(TlsOptions(false, {}));
  ASSERT_TRUE(server.Start().ok());
  auto config = BaseConfig(server);
  config.caData = ReadFile(certs_->otherCaFile).value();
  EXPECT_EQ(TryCreate(*Make(config), "a").code(), StatusCode::kUnavailable);
  config.caData.clear();
  config.insecureSkipTlsVerify = true;
  EXPECT_TRUE(TryCreate(*Make(config), "a").ok());
}

TEST_F(TlsTest, ARotatedTokenFileIsReadAgainWhenTheOldTokenIsRefused) {
  ApiServer server(TlsOptions(false, {"token-1"}));
  ASSERT_TRUE(server.Start().ok());
  std::string tokenFile = dir_->path() + "/token";
  ASSERT_TRUE(WriteFileAtomic(tokenFile, "token-1\n").ok());
  auto config = BaseConfig(server);
  config.tokenFile = tokenFile;
  config.tokenRefresh = std::chrono::hours(1);  // only a 401 makes it look again
  auto client = Make(config);
  ASSERT_TRUE(TryCreate(*client, "a").ok());
  // The kubelet rotates the token; the API server stops accepting the old one.
  ASSERT_TRUE(WriteFileAtomic(tokenFile, "token-2\n").ok());
  server.SetTokens({"token-2"});
  ASSERT_TRUE(TryCreate(*client, "b").ok());
  EXPECT_EQ(client->CurrentToken(), "token-2");
}

TEST_F(TlsTest, AnInformerSurvivesATokenRotationAcrossAServerRestart) {
  ApiServer server(TlsOptions(false, {"watch-token-1"}));
  ASSERT_TRUE(server.Start().ok());
  std::string tokenFile = dir_->path() + "/watch-token";
  ASSERT_TRUE(WriteFileAtomic(tokenFile, "watch-token-1").ok());
  auto config = BaseConfig(server);
  config.tokenFile = tokenFile;
  config.tokenRefresh = std::chrono::hours(1);
  auto client = Make(config);
  kube::InformerOptions options;
  options.retry = {std::chrono::milliseconds(20), std::chrono::milliseconds(200), 2.0, 0.2};
  kube::Informer informer(client.get(), kube::ConfigMapResource(), "ns1", options, {});
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(std::chrono::seconds(5)));
  ASSERT_TRUE(WaitFor([&] { return server.activeWatches() == 1; }));
  ASSERT_TRUE(WriteFileAtomic(tokenFile, "watch-token-2").ok());
  server.SetTokens({"watch-token-2"});
  ASSERT_TRUE(server.Restart().ok());
  ASSERT_FALSE(server.CallJson("POST", kube::ConfigMapResource().Path("ns1"), ConfigMap("after", "v")).is_null());
  EXPECT_TRUE(WaitFor([&] { return informer.Get("ns1/after").has_value(); }));
  EXPECT_EQ(client->CurrentToken(), "watch-token-2");
  informer.Stop();
}

TEST_F(TlsTest, AnIpv6ServerAddressWorksForVerbsAndWatches) {
  auto options = TlsOptions(false, {"v6-token"});
  options.bindAddress = "::1";
  ApiServer server(options);
  ASSERT_TRUE(server.Start().ok());
  ASSERT_EQ(server.url().rfind("https://[::1]:", 0), 0u) << server.url();
  auto config = BaseConfig(server);
  config.token = "v6-token";
  auto client = Make(config);
  Status created = TryCreate(*client, "over-ipv6");
  ASSERT_TRUE(created.ok()) << created.ToString();
  kube::Informer informer(client.get(), kube::ConfigMapResource(), "ns1", {}, {});
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(std::chrono::seconds(5)));
  EXPECT_TRUE(informer.Get("ns1/over-ipv6").has_value());
  ASSERT_TRUE(TryCreate(*client, "watched").ok());
  EXPECT_TRUE(WaitFor([&] { return informer.Get("ns1/watched").has_value(); }));
  informer.Stop();
}

TEST_F(TlsTest, ATokenFileIsReadAgainPeriodically) {
  std::string tokenFile = dir_->path() + "/periodic-token";
  ASSERT_TRUE(WriteFileAtomic(tokenFile, "first").ok());
  kube::ClientConfig config;
  config.server = "https://127.0.0.1:1";
  config.tokenFile = tokenFile;
  config.tokenRefresh = std::chrono::milliseconds(50);
  auto client = Make(config);
  EXPECT_EQ(client->CurrentToken(), "first");
  ASSERT_TRUE(WriteFileAtomic(tokenFile, "second").ok());
  EXPECT_TRUE(WaitFor([&] { return client->CurrentToken() == "second"; }, std::chrono::seconds(2)));
}

TEST_F(TlsTest, AKubeconfigWithInlineCredentialsConnects) {
  ApiServer server(TlsOptions(true, {}));
  ASSERT_TRUE(server.Start().ok());
  auto b64 = [](const std::string& file) {
    std::string text = ReadFile(file).value();
    return utility::conversions::to_base64(std::vector<unsigned char>(text.begin(), text.end()));
  };
  std::string kubeconfig = "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
                           "clusters:\n- name: test\n  cluster:\n    server: " + server.url() +
                           "\n    certificate-authority-data: " + b64(certs_->caFile) +
                           "\nusers:\n- name: admin\n  user:\n    client-certificate-data: " +
                           b64(certs_->clientCertFile) + "\n    client-key-data: " + b64(certs_->clientKeyFile) +
                           "\ncontexts:\n- name: test\n  context: {cluster: test, user: admin, namespace: ns1}\n";
  std::string path = dir_->path() + "/kubeconfig";
  ASSERT_TRUE(WriteFileAtomic(path, kubeconfig).ok());
  auto config = kube::LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->namespace_, "ns1");
  auto client = Make(*config);
  EXPECT_TRUE(TryCreate(*client, "via-kubeconfig").ok());
}

}  // namespace
}  // namespace pgrs::e2e
