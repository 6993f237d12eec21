#include "operator/kube/operator_command.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <sstream>

#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/kube/events.h"
#include "operator/kube/leader.h"
#include "operator/kube/primary_lease.h"
#include "operator/kube/backup_controller.h"
#include "operator/kube/replicaset_controller.h"
#include "operator/util/duration.h"
#include "operator/util/http.h"
#include "operator/util/log.h"

namespace pgrs::kube {
namespace {

const char kUsage[] =
    "usage: pgrs operator [flags]\n"
    "\n"
    "Runs the PostgresReplicaSet controller against a Kubernetes API server.\n"
    "\n"
    "  --kubeconfig PATH                   kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
    "  --watch-namespace NS                namespace to watch; repeatable or comma-separated (default: all)\n"
    "  --leader-elect BOOL                 elect a leader through a Lease (default true)\n"
    "  --leader-election-namespace NS      namespace of the Lease (default: the configuration's namespace)\n"
    "  --leader-election-id NAME           name of the Lease (default pgrs-operator)\n"
    "  --leader-elect-lease-duration D     default 15s\n"
    "  --leader-elect-renew-deadline D     default 10s\n"
    "  --leader-elect-retry-period D       default 2s\n"
    "  --identity ID                       this replica's name in the Lease (default: host name + pid)\n"
    "  --metrics-bind-address ADDR         serve /metrics here; 0 disables (default 0)\n"
    "  --health-probe-bind-address ADDR    serve /healthz and /readyz here; 0 disables (default :8081)\n"
    "  --workers N                         concurrent reconciles (default 2)\n"
    "  --instance-image IMAGE              image of the instance Pods (default ghcr.io/pgrs/pgrs:latest)\n"
    "  --instance-image-pull-policy P      Always, IfNotPresent or Never (default IfNotPresent)\n"
    "  --instance-command PATH             pgrs inside that image (default /usr/local/bin/pgrs)\n"
    "  --instance-shutdown-handover D      how long a primary whose Pod is deleted, evicted or drained keeps\n"
    "                                      running while it is handed over to a standby (default 20s, at\n"
    "                                      most 25s of the Pod's 30s grace period; 0: no hand-over)\n"
    "  --observe-interval D                how often a steady replica set is observed (default 1s)\n"
    "  --log-level LEVEL                   debug, info, warn, error (default info)\n"
    "  --log-format text|json              default: text on a terminal, JSON otherwise\n";

struct Flags {
  std::string kubeconfig;
  std::vector<std::string> namespaces;
  bool leaderElect = true;
  std::string leaseNamespace;
  std::string leaseName = "pgrs-operator";
  std::chrono::milliseconds leaseDuration{15000};
  std::chrono::milliseconds renewDeadline{10000};
  std::chrono::milliseconds retryPeriod{2000};
  std::string identity;
  std::string metricsAddress = "0";
  std::string healthAddress = ":8081";
  int workers = 2;
  std::string logLevel = "info";
  LogFormat logFormat = LogFormat::kAuto;
  ReplicaSetControllerOptions sets;
};

// A duration flag's value: more than zero.
bool ParseDuration(const std::string& text, std::chrono::milliseconds* out) {
  auto parsed = pgrs::ParseDuration(text);
  if (!parsed || parsed->count() <= 0) return false;
  *out = *parsed;
  return true;
}

bool ParseBool(const std::string& text, bool* out) {
  if (text == "true" || text == "1" || text == "yes") *out = true;
  else if (text == "false" || text == "0" || text == "no") *out = false;
  else return false;
  return true;
}

// Returns an error message, or "" when the flags are fine.
std::string ParseFlags(const std::vector<std::string>& args, Flags* flags, bool* help) {
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (arg == "-h" || arg == "--help") {
      *help = true;
      return "";
    }
    if (arg.rfind("--", 0) != 0) return "unexpected argument " + arg;
    std::string name = arg, value;
    bool hasValue = false;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
      hasValue = true;
    }
    auto next = [&]() -> bool {
      if (hasValue) return true;
      if (i + 1 >= args.size()) return false;
      value = args[++i];
      return true;
    };
    if (name == "--leader-elect") {
      // A bare --leader-elect means true, as with Go's flag package.
      if (!hasValue) value = "true";
      if (!ParseBool(value, &flags->leaderElect)) return "--leader-elect: not a boolean: " + value;
      continue;
    }
    if (!next()) return name + ": needs a value";
    if (name == "--kubeconfig") flags->kubeconfig = value;
    else if (name == "--watch-namespace") {
      std::stringstream list(value);
      std::string ns;
      while (std::getline(list, ns, ',')) {
        if (!ns.empty()) flags->namespaces.push_back(ns);
      }
    } else if (name == "--leader-election-namespace") flags->leaseNamespace = value;
    else if (name == "--leader-election-id") flags->leaseName = value;
    else if (name == "--leader-elect-lease-duration") {
      if (!ParseDuration(value, &flags->leaseDuration)) return name + ": not a duration: " + value;
    } else if (name == "--leader-elect-renew-deadline") {
      if (!ParseDuration(value, &flags->renewDeadline)) return name + ": not a duration: " + value;
    } else if (name == "--leader-elect-retry-period") {
      if (!ParseDuration(value, &flags->retryPeriod)) return name + ": not a duration: " + value;
    } else if (name == "--identity") flags->identity = value;
    else if (name == "--metrics-bind-address") flags->metricsAddress = value;
    else if (name == "--health-probe-bind-address") flags->healthAddress = value;
    else if (name == "--workers") {
      try {
        flags->workers = std::stoi(value);
      } catch (...) {
        return "--workers: not a number: " + value;
      }
      if (flags->workers < 1) return "--workers: must be at least 1";
    } else if (name == "--instance-image") flags->sets.pods.image = value;
    else if (name == "--instance-image-pull-policy") {
      if (value != "Always" && value != "IfNotPresent" && value != "Never") {
        return "--instance-image-pull-policy: must be Always, IfNotPresent or Never";
      }
      flags->sets.pods.imagePullPolicy = value;
    } else if (name == "--instance-command") flags->sets.pods.command = value;
    else if (name == "--instance-shutdown-handover") {
      auto d = pgrs::ParseDuration(value);
      if (!d || *d > std::chrono::seconds(kTerminationGraceSeconds - 5)) {
        return "--instance-shutdown-handover: want a duration from 0s to " + std::to_string(kTerminationGraceSeconds - 5) +
               "s: " + value;
      }
      flags->sets.pods.shutdownHandoverSeconds = static_cast<int>(std::chrono::duration_cast<std::chrono::seconds>(*d).count());
    }
    else if (name == "--observe-interval") {
      if (!ParseDuration(value, &flags->sets.observeInterval)) return "--observe-interval: not a duration: " + value;
    } else if (name == "--log-level") flags->logLevel = value;
    else if (name == "--log-format") {
      if (!ParseLogFormat(value, &flags->logFormat)) return "--log-format: must be text or json";
    } else return "unknown flag " + name;
  }
  return "";
}

// ":8081" -> "0.0.0.0:8081"; "0" or "" -> "" (disabled).
std::string ListenAddress(const std::string& flag) {
  if (flag.empty() || flag == "0") return "";
  if (flag[0] == ':') return "0.0.0.0" + flag;
  return flag;
}

std::string HostName() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "pgrs-operator";
  return buf;
}

}  // namespace

int RunOperatorCommand(const std::vector<std::string>& args,
                       const std::function<void(ReplicaSetControllerOptions&)>& customize) {
  Flags flags;
  bool help = false;
  std::string error = ParseFlags(args, &flags, &help);
  if (help) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!error.empty()) {
    std::fprintf(stderr, "pgrs operator: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  InitLogging("operator", flags.logFormat, flags.logLevel);
  if (flags.identity.empty()) flags.identity = HostName() + "_" + std::to_string(getpid());

  auto config = ResolveConfig(flags.kubeconfig);
  if (!config.ok()) {
    spdlog::error("no Kubernetes configuration error=\"{}\"", config.status().message());
    return 1;
  }
  // The primary leases of the replica sets are Lease objects too.
  RegisterKubeLeaseOpener(*config);
  if (flags.leaseNamespace.empty()) flags.leaseNamespace = config->namespace_;
  LeaderElectionConfig election;
  election.ns = flags.leaseNamespace;
  election.name = flags.leaseName;
  election.identity = flags.identity;
  election.leaseDuration = flags.leaseDuration;
  election.renewDeadline = flags.renewDeadline;
  election.retryPeriod = flags.retryPeriod;
  if (flags.leaderElect) {
    if (Status s = ValidateLeaderElectionConfig(election); !s.ok()) {
      spdlog::error("invalid flags error=\"{}\"", s.message());
      return 2;
    }
  }

  // Signals are taken synchronously by this thread; block them before any
  // other thread exists so that none of them receives one.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto client = Client::Create(*config);
  if (!client.ok()) {
    spdlog::error("cannot create the Kubernetes client error=\"{}\"", client.status().message());
    return 1;
  }
  // The Lease client fails fast: a renewal (a read and a write) that hangs
  // must still end before the lease can pass to another replica.
  ClientOptions leaseOptions;
  leaseOptions.maxAttempts = 1;
  leaseOptions.requestTimeout = std::min((flags.leaseDuration - flags.renewDeadline) / 2,
                                         std::max(flags.retryPeriod, std::chrono::milliseconds(1000)));
  auto leaseClient = Client::Create(*config, leaseOptions);
  if (!leaseClient.ok()) {
    spdlog::error("cannot create the Kubernetes client error=\"{}\"", leaseClient.status().message());
    return 1;
  }
  spdlog::info("starting operator identity={} server={} config=\"{}\" namespaces={} leader_elect={}",
               flags.identity, config->server, config->source,
               flags.namespaces.empty() ? std::string("*") : [&] {
                 std::string s;
                 for (const auto& n : flags.namespaces) s += (s.empty() ? "" : ",") + n;
                 return s;
               }(), flags.leaderElect);

  EventRecorder events(client->get(), "pgrs-operator", flags.identity);
  ControllerOptions controllerOptions;
  controllerOptions.namespaces = flags.namespaces;
  controllerOptions.workers = flags.workers;
  flags.sets.pods.logLevel = flags.logLevel;
  if (customize) customize(flags.sets);
  ReplicaSetController controller(client->get(), &events, controllerOptions, flags.sets);
  BackupController backups(client->get(), &events, controllerOptions);

  std::atomic<bool> lost{false};
  std::unique_ptr<LeaderElector> elector;
  if (flags.leaderElect) {
    LeaderCallbacks callbacks;
    callbacks.onStartedLeading = [&] {
      spdlog::info("started leading identity={}", flags.identity);
      // As client-go does: an Event on the Lease says who leads now.
      auto lease = (*leaseClient)->Get(LeaseResource(), election.ns, election.name);
      if (lease.ok()) events.Record(*lease, "Normal", "LeaderElection", flags.identity + " became leader");
    };
    callbacks.onStoppedLeading = [&](bool wasLost) {
      if (wasLost) lost = true;
    };
    callbacks.onNewLeader = [&](const std::string& holder) {
      if (holder != flags.identity) spdlog::info("observed leader leader={}", holder);
    };
    elector = std::make_unique<LeaderElector>(leaseClient->get(), election, callbacks);
  }
  auto isLeader = [&] { return !elector || elector->IsLeader(); };

  std::unique_ptr<HttpServer> health, metrics;
  if (std::string address = ListenAddress(flags.healthAddress); !address.empty()) {
    health = std::make_unique<HttpServer>(address, "");
    health->Handle("GET", "/healthz", [](const HttpRequest&) { return HttpResponse{200, "ok", "text/plain"}; }, true);
    health->Handle("GET", "/readyz", [&](const HttpRequest&) {
      return controller.Synced() && backups.Synced() ? HttpResponse{200, "ok", "text/plain"}
                                 : HttpResponse{503, "informers not synced", "text/plain"};
    }, true);
    if (Status s = health->Start(); !s.ok()) {
      spdlog::error("cannot serve health probes error=\"{}\"", s.message());
      return 1;
    }
  }
  if (std::string address = ListenAddress(flags.metricsAddress); !address.empty()) {
    metrics = std::make_unique<HttpServer>(address, "");
    metrics->Handle("GET", "/metrics", [&](const HttpRequest&) {
      ControllerStats s = controller.stats();
      std::string text;
      text += "# TYPE pgrs_leader gauge\npgrs_leader " + std::to_string(isLeader() ? 1 : 0) + "\n";
      text += "# TYPE pgrs_status_writes_total counter\npgrs_status_writes_total " + std::to_string(s.statusWrites) + "\n";
      text += "# TYPE pgrs_informer_objects gauge\npgrs_informer_objects " + std::to_string(s.objects) + "\n";
      text += "# TYPE pgrs_informer_relists_total counter\npgrs_informer_relists_total " + std::to_string(s.relists) + "\n";
      text += "# TYPE pgrs_events_recorded_total counter\npgrs_events_recorded_total " +
              std::to_string(events.recorded()) + "\n";
      text += "# TYPE pgrs_api_requests_total counter\npgrs_api_requests_total " +
              std::to_string((*client)->requestCount() + (*leaseClient)->requestCount()) + "\n";
      controller.metrics().SetQueueDepth(s.queueDepth);
      text += controller.metrics().Render();
      return HttpResponse{200, text, "text/plain; version=0.0.4"};
    }, true);
    if (Status s = metrics->Start(); !s.ok()) {
      spdlog::error("cannot serve metrics error=\"{}\"", s.message());
      return 1;
    }
  }

  controller.StartInformers();
  backups.StartInformers();
  controller.StartWorkers(isLeader);
  backups.StartWorkers(isLeader);
  if (elector) elector->Start();

  int exitCode = 0;
  while (true) {
    timespec wait{0, 200 * 1000 * 1000};
    siginfo_t info;
    int sig = sigtimedwait(&signals, &info, &wait);
    if (sig == SIGTERM || sig == SIGINT) {
      spdlog::info("shutting down signal={}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      break;
    }
    if (lost) {
      spdlog::error("exiting: leadership lost identity={}", flags.identity);
      exitCode = 1;
      break;
    }
  }
  // Watches first (no hang on a quiet stream), then the workers, and only
  // then the Lease, so that the next leader never overlaps with us.
  controller.Stop();
  backups.Stop();
  if (elector) elector->Stop();
  (*client)->Shutdown();
  (*leaseClient)->Shutdown();
  if (metrics) metrics->Stop();
  if (health) health->Stop();
  spdlog::info("stopped identity={}", flags.identity);
  return exitCode;
}

}  // namespace pgrs::kube
