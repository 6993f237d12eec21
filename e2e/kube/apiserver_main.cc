// kube-test-apiserver: the test API server as a process, for trying
// `pgrs operator` by hand or from scripts (no cluster needed).
//
//   kube-test-apiserver [--port N] [--tls-dir DIR] [--token T]...
//                       [--kubeconfig-out PATH] [--bookmark-interval-ms N]
//
// With --tls-dir it serves HTTPS with certificates generated into DIR and
// accepts the client certificate it generated there. --kubeconfig-out
// writes a kubeconfig that reaches it (namespace "default"). Prints the URL
// on stdout, then serves until SIGTERM or SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "e2e/kube/apiserver.h"
#include "operator/util/files.h"

int main(int argc, char** argv) {
  pgrs::e2e::ApiServerOptions options;
  std::string tlsDir, kubeconfigOut;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "kube-test-apiserver: %s needs a value\n", args[i].c_str());
        std::exit(2);
      }
      return args[++i];
    };
    if (args[i] == "--port") options.port = std::atoi(value().c_str());
    else if (args[i] == "--tls-dir") tlsDir = value();
    else if (args[i] == "--token") options.tokens.push_back(value());
    else if (args[i] == "--kubeconfig-out") kubeconfigOut = value();
    else if (args[i] == "--bookmark-interval-ms") options.bookmarkInterval = std::chrono::milliseconds(std::atoi(value().c_str()));
    else {
      std::fprintf(stderr, "usage: kube-test-apiserver [--port N] [--tls-dir DIR] [--token T]... "
                           "[--kubeconfig-out PATH] [--bookmark-interval-ms N]\n");
      return 2;
    }
  }
  pgrs::e2e::TestCertificates certs;
  if (!tlsDir.empty()) {
    auto made = pgrs::e2e::MakeTestCertificates(pgrs::AbsolutePath(tlsDir));
    if (!made.ok()) {
      std::fprintf(stderr, "kube-test-apiserver: %s\n", made.status().ToString().c_str());
      return 1;
    }
    certs = *made;
    options.tls = true;
    options.certFile = certs.serverCertFile;
    options.keyFile = certs.serverKeyFile;
    options.clientCaFile = certs.caFile;
  }
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  pgrs::e2e::ApiServer server(options);
  if (auto s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "kube-test-apiserver: %s\n", s.ToString().c_str());
    return 1;
  }
  if (!kubeconfigOut.empty()) {
    std::string user = "  user: {}\n";
    if (!options.tokens.empty()) {
      user = "  user:\n    token: " + options.tokens.front() + "\n";
    } else if (options.tls) {
      user = "  user:\n    client-certificate: " + certs.clientCertFile + "\n    client-key: " + certs.clientKeyFile + "\n";
    }
    std::string text = "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: test\n  cluster:\n"
                       "    server: " + server.url() + "\n" +
                       (options.tls ? "    certificate-authority: " + certs.caFile + "\n" : "") +
                       "users:\n- name: test\n" + user +
                       "contexts:\n- name: test\n  context: {cluster: test, user: test, namespace: default}\n";
    if (auto s = pgrs::WriteFileAtomic(kubeconfigOut, text, 0600); !s.ok()) {
      std::fprintf(stderr, "kube-test-apiserver: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  std::printf("%s\n", server.url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  server.Stop();
  return 0;
}
