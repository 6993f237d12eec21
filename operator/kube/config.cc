#include "operator/kube/config.h"

#include <cpprest/asyncrt_utils.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>

#include "operator/util/files.h"

namespace pgrs::kube {
namespace {

Result<std::string> DecodeBase64(const std::string& field, const std::string& text) {
  try {
    std::string compact;
    for (char c : text) {
      if (c != '\n' && c != '\r' && c != ' ') compact += c;
    }
    auto bytes = utility::conversions::from_base64(compact);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    return Status::Invalid(field + ": not valid base64");
  }
}

std::string Resolve(const std::string& baseDir, const std::string& path) {
  if (path.empty() || path[0] == '/' || baseDir.empty()) return path;
  return JoinPath(baseDir, path);
}

// Reads `<name>-data` (base64) or `<name>` (a file) from `node`.
Result<std::string> DataOrFile(const YAML::Node& node, const std::string& where, const std::string& fileKey,
                               const std::string& dataKey, const std::string& baseDir) {
  if (node[dataKey] && !node[dataKey].as<std::string>().empty()) {
    return DecodeBase64(where + "." + dataKey, node[dataKey].as<std::string>());
  }
  if (node[fileKey] && !node[fileKey].as<std::string>().empty()) {
    std::string path = Resolve(baseDir, node[fileKey].as<std::string>());
    auto text = ReadFile(path);
    if (!text.ok()) return Status::Invalid(where + "." + fileKey + ": " + text.status().message());
    return text.value();
  }
  return std::string();
}

YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const std::string& inner) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>() == name) return item[inner];
  }
  return YAML::Node();
}

}  // namespace

std::string HostPortUrl(const std::string& scheme, const std::string& host, const std::string& port) {
  std::string h = host;
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  return scheme + "://" + h + ":" + port;
}

Result<ClientConfig> ParseKubeconfig(const std::string& text, const std::string& baseDir,
                                     const std::string& context) {
  try {
    YAML::Node root = YAML::Load(text);
    if (!root || !root.IsMap()) return Status::Invalid("kubeconfig: not a YAML mapping");
    std::string contextName = context;
    if (contextName.empty() && root["current-context"]) contextName = root["current-context"].as<std::string>();
    if (contextName.empty()) return Status::Invalid("kubeconfig: current-context: not set and no --context given");
    YAML::Node ctx = FindNamed(root["contexts"], contextName, "context");
    if (!ctx || !ctx.IsMap()) return Status::Invalid("kubeconfig: contexts: no context named " + contextName);
    ClientConfig config;
    config.namespace_ = ctx["namespace"] ? ctx["namespace"].as<std::string>() : "";
    if (config.namespace_.empty()) config.namespace_ = "default";
    std::string clusterName = ctx["cluster"] ? ctx["cluster"].as<std::string>() : "";
    YAML::Node cluster = FindNamed(root["clusters"], clusterName, "cluster");
    if (!cluster || !cluster.IsMap()) return Status::Invalid("kubeconfig: context " + contextName + ": no cluster named " + clusterName);
    std::string where = "kubeconfig: cluster " + clusterName;
    config.server = cluster["server"] ? cluster["server"].as<std::string>() : "";
    if (config.server.empty()) return Status::Invalid(where + ": server: not set");
    while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
    if (cluster["insecure-skip-tls-verify"]) config.insecureSkipTlsVerify = cluster["insecure-skip-tls-verify"].as<bool>();
    auto ca = DataOrFile(cluster, where, "certificate-authority", "certificate-authority-data", baseDir);
    if (!ca.ok()) return ca.status();
    config.caData = ca.value();

    std::string userName = ctx["user"] ? ctx["user"].as<std::string>() : "";
    YAML::Node user = FindNamed(root["users"], userName, "user");
    if (user && user.IsMap()) {
      where = "kubeconfig: user " + userName;
      auto cert = DataOrFile(user, where, "client-certificate", "client-certificate-data", baseDir);
      if (!cert.ok()) return cert.status();
      auto key = DataOrFile(user, where, "client-key", "client-key-data", baseDir);
      if (!key.ok()) return key.status();
      config.clientCertData = cert.value();
      config.clientKeyData = key.value();
      if (config.clientCertData.empty() != config.clientKeyData.empty()) {
        return Status::Invalid(where + ": client-certificate and client-key must be given together");
      }
      if (user["token"]) config.token = user["token"].as<std::string>();
      if (user["tokenFile"]) config.tokenFile = Resolve(baseDir, user["tokenFile"].as<std::string>());
      if (user["exec"] || user["auth-provider"]) {
        return Status::Invalid(where + ": exec and auth-provider credentials are not supported");
      }
    } else if (!userName.empty()) {
      return Status::Invalid("kubeconfig: context " + contextName + ": no user named " + userName);
    }
    config.source = "kubeconfig context " + contextName;
    return config;
  } catch (const YAML::Exception& e) {
    return Status::Invalid(std::string("kubeconfig: ") + e.what());
  }
}

Result<ClientConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  auto text = ReadFile(path);
  if (!text.ok()) return Status::Invalid("kubeconfig " + path + ": " + text.status().message());
  std::string dir = AbsolutePath(path);
  auto slash = dir.rfind('/');
  dir = slash == std::string::npos ? "." : dir.substr(0, slash);
  auto config = ParseKubeconfig(text.value(), dir, context);
  if (!config.ok()) return config.status().WithContext(path);
  config->source = path + " (" + config->source + ")";
  return config;
}

Result<ClientConfig> InClusterConfig(const std::map<std::string, std::string>& env,
                                     const std::string& serviceAccountDir) {
  auto host = env.find("KUBERNETES_SERVICE_HOST");
  auto port = env.find("KUBERNETES_SERVICE_PORT");
  if (host == env.end() || host->second.empty() || port == env.end() || port->second.empty()) {
    return Status::Invalid("in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
  }
  ClientConfig config;
  config.server = HostPortUrl("https", host->second, port->second);
  config.tokenFile = JoinPath(serviceAccountDir, "token");
  if (!PathExists(config.tokenFile)) {
    return Status::Invalid("in-cluster config: " + config.tokenFile + ": no service-account token");
  }
  auto ca = ReadFile(JoinPath(serviceAccountDir, "ca.crt"));
  if (!ca.ok()) return Status::Invalid("in-cluster config: " + ca.status().message());
  config.caData = ca.value();
  auto ns = ReadFile(JoinPath(serviceAccountDir, "namespace"));
  config.namespace_ = ns.ok() ? ns.value() : "";
  while (!config.namespace_.empty() && isspace(static_cast<unsigned char>(config.namespace_.back()))) {
    config.namespace_.pop_back();
  }
  if (config.namespace_.empty()) config.namespace_ = "default";
  config.source = "in-cluster service account";
  return config;
}

Result<ClientConfig> ResolveConfig(const std::string& kubeconfigFlag, const std::string& serviceAccountDir) {
  if (!kubeconfigFlag.empty()) return LoadKubeconfig(kubeconfigFlag);
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    std::string first = env;
    first = first.substr(0, first.find(':'));
    return LoadKubeconfig(first);
  }
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0') {
    std::map<std::string, std::string> vars;
    vars["KUBERNETES_SERVICE_HOST"] = host;
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    vars["KUBERNETES_SERVICE_PORT"] = port != nullptr ? port : "";
    return InClusterConfig(vars, serviceAccountDir);
  }
  const char* home = std::getenv("HOME");
  std::string path = std::string(home != nullptr ? home : "") + "/.kube/config";
  if (PathExists(path)) return LoadKubeconfig(path);
  return Status::Invalid("no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a cluster");
}

}  // namespace pgrs::kube
