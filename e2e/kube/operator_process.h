// `pgrs operator` as a child process of a test, and a free loopback port.
#pragma once

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "operator/util/files.h"
#include "operator/util/http.h"
#include "operator/util/process.h"

namespace pgrs::e2e {

inline int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// One `pgrs operator` process; killed when it goes out of scope.
class OperatorProcess {
 public:
  // `kubeconfig` empty: none on the command line (then `env` should say).
  OperatorProcess(const std::string& dir, const std::string& identity, std::vector<std::string> extra,
                  const std::string& kubeconfig = "<default>", std::vector<std::string> env = {})
      : identity_(identity), log_(dir + "/" + identity + ".log") {
    metricsPort_ = FreePort();
    healthPort_ = FreePort();
    ProcessSpec spec;
    const char* binary = std::getenv("PGRS_BINARY");
    spec.argv = {binary != nullptr ? binary : "pgrs", "operator",
                 "--identity", identity, "--log-format", "text", "--log-level", "debug",
                 "--metrics-bind-address", "127.0.0.1:" + std::to_string(metricsPort_),
                 "--health-probe-bind-address", "127.0.0.1:" + std::to_string(healthPort_)};
    if (kubeconfig == "<default>") {
      spec.argv.insert(spec.argv.end(), {"--kubeconfig", dir + "/kubeconfig"});
    } else if (!kubeconfig.empty()) {
      spec.argv.insert(spec.argv.end(), {"--kubeconfig", kubeconfig});
    }
    spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
    spec.env = std::move(env);
    spec.outputFile = log_;
    auto pid = SpawnProcess(spec);
    EXPECT_TRUE(pid.ok()) << pid.status().ToString();
    pid_ = pid.ok() ? *pid : -1;
  }
  ~OperatorProcess() {
    if (pid_ > 0) StopChild(pid_, SIGKILL, std::chrono::milliseconds(2000));
    if (::testing::Test::HasFailure()) {
      auto text = ReadFile(log_);
      std::string tail = text.ok() ? text->substr(text->size() > 4000 ? text->size() - 4000 : 0) : "";
      std::fprintf(stderr, "---- log of %s ----\n%s\n", identity_.c_str(), tail.c_str());
    }
  }
  // Sends `signal` and waits for the exit; returns the wait status.
  std::optional<int> Stop(int signal, std::chrono::milliseconds grace) {
    if (pid_ <= 0) return std::nullopt;
    if (signal != 0) ::kill(pid_, signal);
    auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto status = TryReap(pid_)) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::nullopt;
  }
  // A metric's value from /metrics, or -1 when unreachable.
  double Metric(const std::string& name) {
    auto response = HttpCall("GET", "http://127.0.0.1:" + std::to_string(metricsPort_) + "/metrics", "", "",
                             std::chrono::milliseconds(1000));
    if (!response.ok() || response->status != 200) return -1;
    std::istringstream lines(response->body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
  }
  // The whole /metrics text ("" when unreachable).
  std::string MetricsText() {
    auto response = HttpCall("GET", "http://127.0.0.1:" + std::to_string(metricsPort_) + "/metrics", "", "",
                             std::chrono::milliseconds(1000));
    return response.ok() && response->status == 200 ? response->body : "";
  }
  int Probe(const std::string& path) {
    auto response =
        HttpCall("GET", "http://127.0.0.1:" + std::to_string(healthPort_) + path, "", "", std::chrono::milliseconds(1000));
    return response.ok() ? response->status : -1;
  }
  const std::string& identity() const { return identity_; }

 private:
  std::string identity_;
  std::string log_;
  pid_t pid_ = -1;
  int metricsPort_ = 0;
  int healthPort_ = 0;
};


// A kubeconfig for a test API server: bearer token, and the CA when TLS.
inline std::string TestKubeconfig(const std::string& url, const std::string& token, const std::string& caFile = "",
                                  const std::string& ns = "default") {
  return "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n    server: " +
         url + "\n" + (caFile.empty() ? "" : "    certificate-authority: " + caFile + "\n") +
         "users:\n- name: test\n  user:\n    token: " + token +
         "\ncontexts:\n- name: test\n  context: {cluster: test, user: test, namespace: " + ns + "}\n";
}

}  // namespace pgrs::e2e
