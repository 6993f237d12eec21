// Where the Kubernetes API is and how to authenticate to it: from inside a
// Pod (service account) or from a kubeconfig file, the same rules as
// client-go's clientcmd.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "operator/util/status.h"

namespace pgrs::kube {

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct ClientConfig {
  std::string server;  // "https://10.0.0.1:443", "https://[fd00::1]:6443"
  std::string namespace_;  // the context's (or the service account's) namespace; "default" if none

  // PEM text. Empty CA = the system's trust store.
  std::string caData;
  std::string clientCertData;
  std::string clientKeyData;
  bool insecureSkipTlsVerify = false;

  // A fixed bearer token, or a file re-read every `tokenRefresh` (bound
  // service-account tokens expire and are rotated in place by the kubelet).
  std::string token;
  std::string tokenFile;
  std::chrono::milliseconds tokenRefresh{60000};

  // Where the config came from, for messages.
  std::string source;
};

// Reads a kubeconfig file: the `context` (empty = current-context), its
// cluster, user and namespace. Relative file paths are taken relative to the
// kubeconfig's directory; *-data fields are base64.
Result<ClientConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");
// The same from text; `baseDir` resolves relative paths.
Result<ClientConfig> ParseKubeconfig(const std::string& text, const std::string& baseDir,
                                     const std::string& context = "");

// The in-cluster configuration: KUBERNETES_SERVICE_HOST/_PORT from `env`
// and the token, CA and namespace under `serviceAccountDir`
// (/var/run/secrets/kubernetes.io/serviceaccount in a Pod).
Result<ClientConfig> InClusterConfig(const std::map<std::string, std::string>& env,
                                     const std::string& serviceAccountDir);

// The operator's rule: the explicit --kubeconfig, else $KUBECONFIG (first
// path of a colon-separated list), else in-cluster when
// KUBERNETES_SERVICE_HOST is set, else ~/.kube/config.
Result<ClientConfig> ResolveConfig(const std::string& kubeconfigFlag,
                                   const std::string& serviceAccountDir = kServiceAccountDir);

// "https://" + host + ":" + port, with brackets around IPv6 addresses.
std::string HostPortUrl(const std::string& scheme, const std::string& host, const std::string& port);

}  // namespace pgrs::kube
