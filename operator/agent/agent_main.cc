#include <signal.h>

#include <cstdio>

#include "operator/agent/agent.h"
#include "operator/kube/primary_lease.h"
#include "operator/util/duration.h"
#include "operator/util/files.h"
#include "operator/util/log.h"

namespace pgrs::agent {

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: pgrs instance --name NAME --instance-dir DIR --listen HOST:PORT\n"
               "                     [--token-file FILE] [--pg-bin-root DIR] [--log-file FILE]\n"
               "                     [--tls-cert-file FILE --tls-key-file FILE --tls-client-ca-file FILE]\n"
               "                     [--log-format text|json] [--log-level info]\n"
               "                     [--postgres-listen ADDR] [--shutdown-handover DURATION]\n"
               "The bearer token comes from --token-file or $PGRS_AGENT_TOKEN.\n"
               "With --tls-*: the API is HTTPS only, and every endpoint but /healthz and\n"
               "/readyz needs a client certificate signed by --tls-client-ca-file\n"
               "(mutual TLS); the files are read again when they change.\n"
               "--postgres-listen overrides the listen_addresses the controller sends\n"
               "(in a Pod: --postgres-listen $(POD_IP)).\n"
               "SIGTERM is a planned stop: a primary that a standby can replace keeps\n"
               "running for at most --shutdown-handover (default 0: stop at once) until\n"
               "the controller has handed it over, then PostgreSQL stops (fast shutdown).\n"
               "SIGINT, or a second signal, stops at once.\n"
               "A primary lease \"kube:NAMESPACE/NAME\" is reached with $KUBECONFIG, else\n"
               "the Pod's service account.\n");
}

}  // namespace

int RunAgentMain(const std::vector<std::string>& args) {
  AgentOptions options;
  std::string tokenFile, logFile, logLevel = "info";
  TlsFiles tls;
  LogFormat format = LogFormat::kText;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= args.size()) {
        std::fprintf(stderr, "pgrs instance: %s needs a value\n", args[i].c_str());
        std::exit(2);
      }
      return args[++i];
    };
    const std::string& a = args[i];
    if (a == "--name") options.name = value();
    else if (a == "--instance-dir") options.instanceDir = AbsolutePath(value());
    else if (a == "--listen") options.listenAddress = value();
    else if (a == "--token-file") tokenFile = value();
    else if (a == "--pg-bin-root") options.pgBinRoot = value();
    else if (a == "--postgres-listen") options.postgresListen = value();
    else if (a == "--tls-cert-file") tls.certFile = value();
    else if (a == "--tls-key-file") tls.keyFile = value();
    else if (a == "--tls-client-ca-file") tls.caFile = value();
    else if (a == "--shutdown-handover") {
      auto d = ParseDuration(value());
      if (!d) {
        std::fprintf(stderr, "pgrs instance: --shutdown-handover must be a duration like 20s\n");
        return 2;
      }
      options.shutdownHandover = *d;
    }
    else if (a == "--log-file") logFile = value();
    else if (a == "--log-level") logLevel = value();
    else if (a == "--log-format") {
      if (!ParseLogFormat(value(), &format)) {
        std::fprintf(stderr, "pgrs instance: --log-format must be text, json or auto\n");
        return 2;
      }
    } else if (a == "--help" || a == "-h") {
      Usage();
      return 0;
    } else {
      std::fprintf(stderr, "pgrs instance: unknown argument %s\n", a.c_str());
      Usage();
      return 2;
    }
  }
  if (options.name.empty() || options.instanceDir.empty() || options.listenAddress.empty()) {
    Usage();
    return 2;
  }
  if (!tls.certFile.empty() || !tls.keyFile.empty() || !tls.caFile.empty()) {
    if (tls.certFile.empty() || tls.keyFile.empty() || tls.caFile.empty()) {
      std::fprintf(stderr, "pgrs instance: --tls-cert-file, --tls-key-file and --tls-client-ca-file go together\n");
      return 2;
    }
    options.tls = tls;
  }
  if (!tokenFile.empty()) {
    auto token = ReadFile(tokenFile);
    if (!token.ok()) {
      std::fprintf(stderr, "pgrs instance: %s\n", token.status().message().c_str());
      return 1;
    }
    options.token = *token;
    while (!options.token.empty() && (options.token.back() == '\n' || options.token.back() == ' ')) {
      options.token.pop_back();
    }
  } else if (const char* env = std::getenv("PGRS_AGENT_TOKEN")) {
    options.token = env;
  }
  if (options.token.empty()) {
    std::fprintf(stderr, "pgrs instance: a bearer token is required (--token-file or $PGRS_AGENT_TOKEN)\n");
    return 2;
  }
  InitLogging("agent " + options.name, format, logLevel, logFile);
  // config.lease may say "kube:NAMESPACE/NAME": the Kubernetes client is
  // set up at the first renewal, not here (local mode never needs it).
  kube::RegisterKubeLeaseOpener();

  // Signals are taken synchronously by this thread; every other thread
  // (and so every child, which resets its mask) starts with them blocked.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  InstanceAgent agent(options);
  Status st = agent.Start();
  if (!st.ok()) {
    spdlog::error("agent failed to start instance={} error=\"{}\"", options.name, st.message());
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("stopping agent instance={} signal={}", options.name, sig);
  if (sig == SIGTERM) {
    // A Pod being deleted, evicted or drained: hand over first.
    agent.RequestShutdown();
    const timespec slice{0, 100 * 1000 * 1000};
    while (!agent.Stopped()) {
      if (sigtimedwait(&signals, nullptr, &slice) > 0) {
        spdlog::info("stopping agent at once instance={}", options.name);
        break;
      }
    }
  }
  agent.RequestStop();
  agent.Wait();
  spdlog::info("agent stopped instance={}", options.name);
  return 0;
}

}  // namespace pgrs::agent
