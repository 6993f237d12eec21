// Helpers shared by the Kubernetes integration tests.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "e2e/kube/apiserver.h"
#include "operator/kube/client.h"
#include "operator/util/files.h"
#include "operator/util/random.h"

namespace pgrs::e2e {

// Polls `condition` every 20 ms until it holds or `timeout` passes.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

class TempDir {
 public:
  TempDir() : path_("/tmp/pgrs-kube-test-" + RandomHex(6)) { (void)MakeDirs(path_); }
  ~TempDir() { (void)RemoveTree(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Options of a test server on HTTPS with the test certificates' server pair.
inline ApiServerOptions TlsServerOptions(const TestCertificates& certs) {
  ApiServerOptions options;
  options.tls = true;
  options.certFile = certs.serverCertFile;
  options.keyFile = certs.serverKeyFile;
  return options;
}

// A client for a plain-HTTP test server, with quick retries.
inline std::unique_ptr<kube::Client> PlainClient(const ApiServer& server, kube::ClientOptions options = {}) {
  kube::ClientConfig config;
  config.server = server.url();
  config.namespace_ = "default";
  options.retryBackoff = {std::chrono::milliseconds(20), std::chrono::milliseconds(200), 2.0, 0.2};
  auto client = kube::Client::Create(config, options);
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(client.value()) : nullptr;
}

inline kube::Json ConfigMap(const std::string& name, const std::string& value,
                            const std::map<std::string, std::string>& labels = {}) {
  kube::Json cm = kube::Json::object();
  cm["apiVersion"] = kube::Json::string("v1");
  cm["kind"] = kube::Json::string("ConfigMap");
  cm["metadata"]["name"] = kube::Json::string(name);
  for (const auto& [k, v] : labels) cm["metadata"]["labels"][k] = kube::Json::string(v);
  cm["data"]["value"] = kube::Json::string(value);
  return cm;
}

inline kube::Json ReplicaSetObject(const std::string& name, int instances) {
  kube::Json rs = kube::Json::object();
  rs["apiVersion"] = kube::Json::string("pgrs.dev/v1alpha1");
  rs["kind"] = kube::Json::string("PostgresReplicaSet");
  rs["metadata"]["name"] = kube::Json::string(name);
  rs["spec"]["instances"] = kube::Json::number(instances);
  return rs;
}

}  // namespace pgrs::e2e
