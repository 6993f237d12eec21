#include "operator/kube/config.h"

#include <cpprest/asyncrt_utils.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "operator/util/files.h"
#include "operator/util/random.h"

namespace pgrs::kube {
namespace {

std::string B64(const std::string& s) {
  return utility::conversions::to_base64(std::vector<unsigned char>(s.begin(), s.end()));
}

class TempDir {
 public:
  TempDir() : path_("/tmp/pgrs-kube-config-test-" + RandomHex(6)) { (void)MakeDirs(path_); }
  ~TempDir() { (void)RemoveTree(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

const char kTwoContexts[] = R"(
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: %CA%
- name: prod-cluster
  cluster:
    server: https://[fd00::1]:443
    certificate-authority: certs/ca.pem
    insecure-skip-tls-verify: true
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    client-certificate: certs/client.pem
    client-key-data: %KEY%
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: team-a}
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
)";

std::string Fill(std::string text) {
  auto replace = [&](const std::string& from, const std::string& to) {
    auto at = text.find(from);
    if (at != std::string::npos) text.replace(at, from.size(), to);
  };
  replace("%CA%", B64("CA-PEM"));
  replace("%KEY%", B64("KEY-PEM"));
  return text;
}

TEST(KubeconfigTest, CurrentContextGivesServerTokenNamespaceAndInlineCa) {
  auto config = ParseKubeconfig(Fill(kTwoContexts), "/nonexistent");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "https://10.0.0.1:6443");
  EXPECT_EQ(config->namespace_, "team-a");
  EXPECT_EQ(config->token, "dev-token");
  EXPECT_EQ(config->caData, "CA-PEM");
  EXPECT_FALSE(config->insecureSkipTlsVerify);
}

TEST(KubeconfigTest, NamedContextReadsRelativeFilesFromTheKubeconfigDirectory) {
  TempDir dir;
  ASSERT_TRUE(MakeDirs(dir.path() + "/certs").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/certs/ca.pem", "CA-FILE").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/certs/client.pem", "CERT-FILE").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/config", Fill(kTwoContexts)).ok());
  auto config = LoadKubeconfig(dir.path() + "/config", "prod");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "https://[fd00::1]:443");
  EXPECT_EQ(config->namespace_, "default");
  EXPECT_EQ(config->caData, "CA-FILE");
  EXPECT_EQ(config->clientCertData, "CERT-FILE");
  EXPECT_EQ(config->clientKeyData, "KEY-PEM");
  EXPECT_TRUE(config->insecureSkipTlsVerify);
  EXPECT_TRUE(config->token.empty());
}

TEST(KubeconfigTest, MissingPiecesAreNamedInTheError) {
  auto noContext = ParseKubeconfig(Fill(kTwoContexts), "", "staging");
  EXPECT_EQ(noContext.status().code(), StatusCode::kInvalid);
  EXPECT_NE(noContext.status().message().find("no context named staging"), std::string::npos);

  auto missingFile = ParseKubeconfig(Fill(kTwoContexts), "/nonexistent", "prod");
  EXPECT_EQ(missingFile.status().code(), StatusCode::kInvalid);
  EXPECT_NE(missingFile.status().message().find("certificate-authority"), std::string::npos);

  auto notYaml = ParseKubeconfig("[1, 2", "");
  EXPECT_EQ(notYaml.status().code(), StatusCode::kInvalid);

  auto noServer = ParseKubeconfig(R"(
current-context: c
contexts: [{name: c, context: {cluster: x}}]
clusters: [{name: x, cluster: {}}]
)", "");
  EXPECT_NE(noServer.status().message().find("server: not set"), std::string::npos);
}

TEST(InClusterConfigTest, ReadsServiceAccountFilesAndBracketsIpv6Hosts) {
  TempDir dir;
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/token", "sa-token\n").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/ca.crt", "SA-CA").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/namespace", "pgrs-system\n").ok());
  auto config = InClusterConfig({{"KUBERNETES_SERVICE_HOST", "fd00:10::1"}, {"KUBERNETES_SERVICE_PORT", "443"}},
                                dir.path());
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->server, "https://[fd00:10::1]:443");
  EXPECT_EQ(config->namespace_, "pgrs-system");
  EXPECT_EQ(config->caData, "SA-CA");
  EXPECT_EQ(config->tokenFile, dir.path() + "/token");

  auto v4 = InClusterConfig({{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}},
                            dir.path());
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->server, "https://10.96.0.1:443");
}

// Restores an environment variable when it goes out of scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = old;
    had_ = old != nullptr;
    if (value != nullptr) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (had_) setenv(name_, old_.c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(ResolveConfigTest, FlagThenKUBECONFIGThenInClusterThenHome) {
  TempDir dir;
  std::string one = "current-context: c\ncontexts: [{name: c, context: {cluster: x, namespace: from-flag}}]\n"
                    "clusters: [{name: x, cluster: {server: 'https://flag:1'}}]\n";
  std::string two = "current-context: c\ncontexts: [{name: c, context: {cluster: x, namespace: from-env}}]\n"
                    "clusters: [{name: x, cluster: {server: 'https://env:1'}}]\n";
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/one", one).ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/two", two).ok());
  ASSERT_TRUE(MakeDirs(dir.path() + "/sa").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/sa/token", "t").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/sa/ca.crt", "CA").ok());
  ASSERT_TRUE(MakeDirs(dir.path() + "/home/.kube").ok());
  ASSERT_TRUE(WriteFileAtomic(dir.path() + "/home/.kube/config", one).ok());

  ScopedEnv kubeconfig("KUBECONFIG", (dir.path() + "/two:" + dir.path() + "/one").c_str());
  ScopedEnv host("KUBERNETES_SERVICE_HOST", "10.96.0.1");
  ScopedEnv port("KUBERNETES_SERVICE_PORT", "443");
  ScopedEnv home("HOME", (dir.path() + "/home").c_str());
  EXPECT_EQ(ResolveConfig(dir.path() + "/one", dir.path() + "/sa")->namespace_, "from-flag");
  EXPECT_EQ(ResolveConfig("", dir.path() + "/sa")->namespace_, "from-env");
  {
    ScopedEnv noKubeconfig("KUBECONFIG", nullptr);
    auto inCluster = ResolveConfig("", dir.path() + "/sa");
    ASSERT_TRUE(inCluster.ok()) << inCluster.status().ToString();
    EXPECT_EQ(inCluster->server, "https://10.96.0.1:443");
    EXPECT_EQ(inCluster->namespace_, "default");  // no namespace file
    ScopedEnv noHost("KUBERNETES_SERVICE_HOST", nullptr);
    EXPECT_EQ(ResolveConfig("", dir.path() + "/sa")->server, "https://flag:1");  // ~/.kube/config
  }
}

TEST(InClusterConfigTest, WithoutTheEnvironmentItIsAnError) {
  auto config = InClusterConfig({}, "/nonexistent");
  EXPECT_EQ(config.status().code(), StatusCode::kInvalid);
}

}  // namespace
}  // namespace pgrs::kube
