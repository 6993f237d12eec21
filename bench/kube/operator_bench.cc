// pgrs-operator-bench: the operator (pgrs-operator-sim: `pgrs operator`
// with a simulated data plane) against the in-memory test API server with
// N PostgresReplicaSets of 3 instances each. Measures the time until every
// set is Healthy, then over a steady window the operator's resident memory,
// CPU seconds per minute, API requests/s and status writes/s, and finally
// the latency from a spec change (instances 3 -> 4) to its first action (the
// Pod NAME-4 exists). See bench/kube/README.md; results in bench/RESULTS.md.
//
// The driver holds the API server and a status-only fake kubelet (every new
// Pod gets phase Running, a unique loopback podIP and Ready=True; no
// processes). The operator is a child process, so /proc tells its own
// memory and CPU.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "e2e/kube/apiserver.h"
#include "operator/kube/client.h"
#include "operator/kube/informer.h"
#include "operator/kube/meta.h"
#include "operator/kube/objects.h"
#include "operator/util/files.h"
#include "operator/util/http.h"
#include "operator/util/process.h"

namespace {

using pgrs::kube::Json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct Options {
  int sets = 100;
  int namespaces = 4;
  int instances = 3;
  double windowSeconds = 60;
  int latencySets = 20;
  double convergeTimeoutSeconds = 1800;
  std::string operatorBinary;
  std::string dir;
  std::vector<std::string> operatorArgs;  // after `--`
};

void Usage() {
  std::fprintf(stderr,
               "usage: pgrs-operator-bench [--sets N] [--namespaces K] [--window SECONDS] [--latency-sets K]\n"
               "                           [--converge-timeout SECONDS] [--operator PATH] [--dir DIR]\n"
               "                           [-- EXTRA OPERATOR FLAGS, e.g. --workers 4 --observe-interval 5s]\n");
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string SelfDir() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

// Resident memory of `pid` in KiB.
long RssKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// utime + stime of `pid`, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');  // the command may hold spaces
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  // Fields from 3 (state) on; utime and stime are fields 14 and 15.
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::string LoadAverage() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  double rank = p * static_cast<double>(v.size() - 1);
  size_t lo = static_cast<size_t>(rank);
  size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (rank - static_cast<double>(lo));
}

// The operator's /metrics as name{labels} -> value.
std::map<std::string, double> Scrape(int port) {
  std::map<std::string, double> out;
  auto response = pgrs::HttpCall("GET", "http://127.0.0.1:" + std::to_string(port) + "/metrics", "", "", 5000ms);
  if (!response.ok() || response->status != 200) return out;
  std::istringstream lines(response->body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto space = line.rfind(' ');
    if (space == std::string::npos) continue;
    try {
      out[line.substr(0, space)] = std::stod(line.substr(space + 1));
    } catch (...) {
    }
  }
  return out;
}

double Delta(const std::map<std::string, double>& before, const std::map<std::string, double>& after,
             const std::string& name) {
  auto a = after.find(name), b = before.find(name);
  if (a == after.end()) return -1;
  return a->second - (b == before.end() ? 0 : b->second);
}

// Quantile of the reconcile duration histogram over the window (upper bound
// of the bucket that holds it).
double HistogramQuantile(const std::map<std::string, double>& before, const std::map<std::string, double>& after,
                         double q) {
  const std::string prefix = "pgrs_reconcile_duration_seconds_bucket{le=\"";
  std::vector<std::pair<double, double>> buckets;  // upper bound, cumulative count in the window
  for (const auto& [name, value] : after) {
    if (name.rfind(prefix, 0) != 0) continue;
    std::string le = name.substr(prefix.size(), name.size() - prefix.size() - 2);
    double bound = le == "+Inf" ? 1e9 : std::stod(le);
    auto b = before.find(name);
    buckets.push_back({bound, value - (b == before.end() ? 0 : b->second)});
  }
  std::sort(buckets.begin(), buckets.end());
  if (buckets.empty() || buckets.back().second <= 0) return -1;
  double target = q * buckets.back().second;
  for (const auto& [bound, count] : buckets) {
    if (count >= target) return bound;
  }
  return buckets.back().first;
}

// Every new Pod gets a status as a kubelet would write it once its
// container runs and is ready: phase Running, a unique loopback podIP,
// Ready=True. No process runs.
class StatusOnlyKubelet {
 public:
  StatusOnlyKubelet(pgrs::e2e::ApiServer* server, pgrs::kube::Client* client) : server_(server) {
    pgrs::kube::InformerHandlers handlers;
    handlers.onAdd = [this](const Json& pod) {
      if (!pgrs::kube::GetString(pod, {"status", "podIP"}).empty()) return;
      std::lock_guard<std::mutex> lock(mu_);
      pending_.push_back(pgrs::kube::NamespaceOf(pod) + "/" + pgrs::kube::NameOf(pod));
      wake_.notify_one();
    };
    informer_ = std::make_unique<pgrs::kube::Informer>(client, pgrs::kube::PodResource(), "",
                                                       pgrs::kube::InformerOptions{}, handlers);
    informer_->Start();
    worker_ = std::thread([this] { Run(); });
  }
  ~StatusOnlyKubelet() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      wake_.notify_all();
    }
    worker_.join();
    informer_->Stop();
  }
  int started() const { return started_.load(); }

 private:
  void Run() {
    while (true) {
      std::string key;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || !pending_.empty(); });
        if (stop_) return;
        key = pending_.front();
        pending_.pop_front();
      }
      std::string ns = key.substr(0, key.find('/')), name = key.substr(key.find('/') + 1);
      int n = nextIp_++;
      std::string ip = "127.0." + std::to_string(1 + n / 250) + "." + std::to_string(1 + n % 250);
      std::string now = pgrs::kube::FormatRfc3339(std::chrono::system_clock::now());
      Json status = Json::object();
      status["phase"] = Json::string("Running");
      status["podIP"] = Json::string(ip);
      status["podIPs"][0]["ip"] = Json::string(ip);
      status["hostIP"] = Json::string("127.0.0.1");
      status["startTime"] = Json::string(now);
      size_t c = 0;
      for (const char* type : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
        Json condition = Json::object();
        condition["type"] = Json::string(type);
        condition["status"] = Json::string("True");
        condition["lastTransitionTime"] = Json::string(now);
        status["conditions"][c++] = condition;
      }
      Json patch = Json::object();
      patch["status"] = status;
      auto response = server_->Call("PATCH", pgrs::kube::PodResource().Path(ns, name, "status"), patch.serialize());
      if (response.status / 100 == 2) started_++;
    }
  }

  pgrs::e2e::ApiServer* server_;
  std::unique_ptr<pgrs::kube::Informer> informer_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::string> pending_;
  bool stop_ = false;
  std::thread worker_;
  int nextIp_ = 0;
  std::atomic<int> started_{0};
};

// status.phase of every set, from a watch.
class PhaseTracker {
 public:
  explicit PhaseTracker(pgrs::kube::Client* client) {
    pgrs::kube::InformerHandlers handlers;
    handlers.onAdd = [this](const Json& o) { Record(o); };
    handlers.onUpdate = [this](const Json&, const Json& o) { Record(o); };
    informer_ = std::make_unique<pgrs::kube::Informer>(client, pgrs::kube::ReplicaSetResource(), "",
                                                       pgrs::kube::InformerOptions{}, handlers);
    informer_->Start();
  }
  ~PhaseTracker() { informer_->Stop(); }
  int Healthy() const {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (const auto& [key, phase] : phases_) n += phase == "Healthy";
    return n;
  }
  std::map<std::string, int> Histogram() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::map<std::string, int> out;
    for (const auto& [key, phase] : phases_) out[phase.empty() ? "-" : phase]++;
    return out;
  }

 private:
  void Record(const Json& o) {
    std::lock_guard<std::mutex> lock(mu_);
    phases_[pgrs::kube::NamespaceOf(o) + "/" + pgrs::kube::NameOf(o)] = pgrs::kube::GetString(o, {"status", "phase"});
  }
  std::unique_ptr<pgrs::kube::Informer> informer_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> phases_;
};

int FreePort() {
  // Bind port 0 through a throwaway server: the kernel picks a free port.
  pgrs::e2e::ApiServer probe;
  if (!probe.Start().ok()) return 0;
  int port = probe.port();
  probe.Stop();
  return port;
}

// "GET /apis/coordination.k8s.io/v1/namespaces/ns/leases/x?..." -> "GET leases (one)":
// what the requests of the server's log are for.
std::string RequestKind(const std::string& entry) {
  std::string method = entry.substr(0, entry.find(' '));
  std::string path = entry.substr(entry.find(' ') + 1);
  bool watch = path.find("watch=") != std::string::npos;
  path = path.substr(0, path.find('?'));
  std::vector<std::string> parts;
  std::stringstream split(path);
  for (std::string p; std::getline(split, p, '/');) {
    if (!p.empty()) parts.push_back(p);
  }
  // After "namespaces/NS": resource [name [subresource]].
  size_t at = 0;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    if (parts[i] == "namespaces") at = i + 2;
  }
  if (at == 0) at = parts.size() >= 3 && parts[0] == "apis" ? 3 : 2;
  std::string kind = at < parts.size() ? parts[at] : path;
  if (at + 2 < parts.size()) kind += "/" + parts[at + 2];
  std::string what = watch ? "watch" : at + 1 < parts.size() ? "one" : "list";
  return method + " " + kind + " (" + what + ")";
}

std::string SetName(int i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "pg-%04d", i);
  return buf;
}

std::string NamespaceName(const Options& o, int i) { return "bench-" + std::to_string(i % o.namespaces); }

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.operatorBinary = SelfDir() + "/pgrs-operator-sim";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        Usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--sets") o.sets = std::atoi(value().c_str());
    else if (a == "--namespaces") o.namespaces = std::atoi(value().c_str());
    else if (a == "--window") o.windowSeconds = std::atof(value().c_str());
    else if (a == "--latency-sets") o.latencySets = std::atoi(value().c_str());
    else if (a == "--converge-timeout") o.convergeTimeoutSeconds = std::atof(value().c_str());
    else if (a == "--operator") o.operatorBinary = value();
    else if (a == "--dir") o.dir = value();
    else if (a == "--") {
      o.operatorArgs.assign(argv + i + 1, argv + argc);
      break;
    } else {
      Usage();
      return 2;
    }
  }
  if (o.sets < 1 || o.namespaces < 1) {
    Usage();
    return 2;
  }
  o.latencySets = std::min(o.latencySets, o.sets);
  if (o.dir.empty()) o.dir = "/tmp/pgrs-operator-bench-" + std::to_string(getpid());
  (void)pgrs::MakeDirs(o.dir);

  pgrs::e2e::ApiServerOptions serverOptions;
  serverOptions.historyLimit = 400000;
  pgrs::e2e::ApiServer server(serverOptions);
  if (pgrs::Status st = server.Start(); !st.ok()) {
    std::fprintf(stderr, "cannot start the API server: %s\n", st.ToString().c_str());
    return 1;
  }
  const std::string kubeconfig = o.dir + "/kubeconfig";
  (void)pgrs::WriteFileAtomic(kubeconfig,
                        "apiVersion: v1\nkind: Config\ncurrent-context: bench\nclusters:\n- name: bench\n"
                        "  cluster:\n    server: " + server.url() +
                            "\nusers:\n- name: bench\n  user:\n    token: bench\ncontexts:\n- name: bench\n"
                            "  context: {cluster: bench, user: bench, namespace: default}\n");

  pgrs::kube::ClientConfig clientConfig;
  clientConfig.server = server.url();
  auto client = pgrs::kube::Client::Create(clientConfig, {}).value();
  StatusOnlyKubelet kubelet(&server, client.get());
  PhaseTracker phases(client.get());

  const int metricsPort = FreePort();
  pgrs::ProcessSpec spec;
  spec.argv = {o.operatorBinary, "operator", "--kubeconfig", kubeconfig, "--leader-elect=false",
               "--metrics-bind-address", "127.0.0.1:" + std::to_string(metricsPort),
               "--health-probe-bind-address", "0", "--log-level", "warn", "--log-format", "text"};
  spec.argv.insert(spec.argv.end(), o.operatorArgs.begin(), o.operatorArgs.end());
  spec.outputFile = o.dir + "/operator.log";
  std::string commandLine;
  for (const auto& a : spec.argv) commandLine += (commandLine.empty() ? "" : " ") + a;
  auto spawned = pgrs::SpawnProcess(spec);
  if (!spawned.ok()) {
    std::fprintf(stderr, "cannot start %s: %s\n", o.operatorBinary.c_str(), spawned.status().ToString().c_str());
    return 1;
  }
  const pid_t pid = *spawned;
  auto fail = [&](const std::string& why) {
    std::fprintf(stderr, "FAILED: %s (operator log: %s)\n", why.c_str(), spec.outputFile.c_str());
    pgrs::StopChild(pid, SIGKILL, 2000ms);
    return 1;
  };
  std::printf("operator      %s\n", commandLine.c_str());
  std::printf("sets          %d x %d instances in %d namespaces; load average %s\n", o.sets, o.instances,
              o.namespaces, LoadAverage().c_str());
  std::fflush(stdout);
  {
    auto deadline = Clock::now() + 30s;
    while (Scrape(metricsPort).empty()) {
      if (Clock::now() > deadline || pgrs::TryReap(pid)) return fail("the operator did not serve /metrics");
      std::this_thread::sleep_for(20ms);
    }
  }
  const long rssIdleKiB = RssKiB(pid);

  // 1. Create every set at once; wait until all are Healthy.
  const auto rs = pgrs::kube::ReplicaSetResource();
  const auto created = Clock::now();
  for (int i = 0; i < o.sets; ++i) {
    Json set = Json::object();
    set["apiVersion"] = Json::string("pgrs.dev/v1alpha1");
    set["kind"] = Json::string("PostgresReplicaSet");
    set["metadata"]["name"] = Json::string(SetName(i));
    set["spec"]["instances"] = Json::number(o.instances);
    auto response = server.Call("POST", rs.Path(NamespaceName(o, i), ""), set.serialize());
    if (response.status / 100 != 2) return fail("create " + SetName(i) + ": " + response.body);
  }
  double cpuAtCreate = CpuSeconds(pid);
  auto lastReport = Clock::now();
  while (phases.Healthy() < o.sets) {
    if (Seconds(Clock::now() - created) > o.convergeTimeoutSeconds) return fail("not every set became Healthy");
    if (pgrs::TryReap(pid)) return fail("the operator exited");
    if (Clock::now() - lastReport > 10s) {
      lastReport = Clock::now();
      std::string hist;
      for (const auto& [phase, n] : phases.Histogram()) hist += " " + phase + "=" + std::to_string(n);
      std::printf("  %6.1f s: healthy %d/%d (%s ) pods %d, operator RSS %.1f MiB, CPU %.1f s, load %s\n",
                  Seconds(Clock::now() - created), phases.Healthy(), o.sets, hist.c_str(), kubelet.started(),
                  RssKiB(pid) / 1024.0, CpuSeconds(pid) - cpuAtCreate, LoadAverage().c_str());
      std::fflush(stdout);
    }
    std::this_thread::sleep_for(20ms);
  }
  const double toHealthy = Seconds(Clock::now() - created);
  const double cpuToHealthy = CpuSeconds(pid) - cpuAtCreate;
  const long rssAtHealthy = RssKiB(pid);
  std::printf("all Healthy   %.2f s after the creates (operator CPU %.1f s, RSS %.1f MiB)\n", toHealthy, cpuToHealthy,
              rssAtHealthy / 1024.0);
  std::fflush(stdout);

  // 2. Steady state: let the last writes settle, then measure a window.
  std::this_thread::sleep_for(5s);
  const std::string loadBefore = LoadAverage();
  auto metricsBefore = Scrape(metricsPort);
  const double cpuBefore = CpuSeconds(pid);
  const auto windowStart = Clock::now();
  std::vector<double> rss;
  while (Seconds(Clock::now() - windowStart) < o.windowSeconds) {
    rss.push_back(RssKiB(pid) / 1024.0);
    std::this_thread::sleep_for(std::min(1.0, o.windowSeconds / 10) * 1000ms);
  }
  const double cpuAfter = CpuSeconds(pid);
  auto metricsAfter = Scrape(metricsPort);
  const double window = Seconds(Clock::now() - windowStart);
  rss.push_back(RssKiB(pid) / 1024.0);
  const double cpuPerMinute = (cpuAfter - cpuBefore) / window * 60;
  const double requestsPerSecond = Delta(metricsBefore, metricsAfter, "pgrs_api_requests_total") / window;
  const double statusWritesPerSecond = Delta(metricsBefore, metricsAfter, "pgrs_status_writes_total") / window;
  const double reconciles = Delta(metricsBefore, metricsAfter, "pgrs_reconcile_total");
  const double reconcileSeconds = Delta(metricsBefore, metricsAfter, "pgrs_reconcile_duration_seconds_sum");
  const int healthyAfterWindow = phases.Healthy();
  // What the window's requests were for: the newest entries of the
  // server's log (it keeps the last 20 000), as many as the operator sent.
  std::map<std::string, int> kinds;
  auto log = server.RequestLog();
  const double sent = Delta(metricsBefore, metricsAfter, "pgrs_api_requests_total");
  if (sent >= 0 && static_cast<double>(log.size()) > sent) log.erase(log.begin(), log.end() - static_cast<long>(sent));
  for (const auto& entry : log) kinds[RequestKind(entry)]++;

  // 3. Spec change -> first action: instances 3 -> 4 on sets spread over
  //    the population, one at a time; the first action is the Pod NAME-4.
  std::vector<double> latencies;
  int missed = 0;
  for (int k = 0; k < o.latencySets; ++k) {
    int i = static_cast<int>(static_cast<long>(k) * o.sets / o.latencySets);
    std::string ns = NamespaceName(o, i), name = SetName(i);
    Json patch = Json::object();
    patch["spec"]["instances"] = Json::number(o.instances + 1);
    auto response = server.Call("PATCH", rs.Path(ns, name), patch.serialize());
    const auto patched = Clock::now();
    if (response.status / 100 != 2) return fail("patch " + name + ": " + response.body);
    const std::string podPath = pgrs::kube::PodResource().Path(ns, name + "-" + std::to_string(o.instances + 1));
    bool seen = false;
    while (Clock::now() - patched < 60s) {
      if (server.Call("GET", podPath).status == 200) {
        seen = true;
        break;
      }
      std::this_thread::sleep_for(1ms);
    }
    if (seen) latencies.push_back(Seconds(Clock::now() - patched) * 1000);
    else missed++;
    std::this_thread::sleep_for(200ms);
  }

  std::printf("\n==== results ====\n");
  std::printf("sets                      %d (x %d instances, %d namespaces)\n", o.sets, o.instances, o.namespaces);
  std::printf("time to all Healthy       %.2f s (operator CPU %.1f s meanwhile)\n", toHealthy, cpuToHealthy);
  std::printf("window                    %.1f s, load average before %s, after %s\n", window, loadBefore.c_str(),
              LoadAverage().c_str());
  std::printf("RSS                       median %.1f MiB, max %.1f MiB (idle before the sets %.1f MiB)\n",
              Percentile(rss, 0.5), *std::max_element(rss.begin(), rss.end()), rssIdleKiB / 1024.0);
  std::printf("CPU                       %.2f s per minute\n", cpuPerMinute);
  std::printf("API requests              %.1f /s\n", requestsPerSecond);
  std::printf("status writes             %.2f /s\n", statusWritesPerSecond);
  std::printf("reconciles                %.1f /s, mean %.2f ms, p50 <= %.3f s, p90 <= %.3f s, p99 <= %.3f s\n",
              reconciles / window, reconciles > 0 ? reconcileSeconds / reconciles * 1000 : -1.0,
              HistogramQuantile(metricsBefore, metricsAfter, 0.5), HistogramQuantile(metricsBefore, metricsAfter, 0.9),
              HistogramQuantile(metricsBefore, metricsAfter, 0.99));
  std::printf("requests by kind          (the last %zu requests of the window)\n", log.size());
  std::vector<std::pair<int, std::string>> byCount;
  for (const auto& [kind, n] : kinds) byCount.push_back({n, kind});
  std::sort(byCount.rbegin(), byCount.rend());
  for (const auto& [n, kind] : byCount) {
    std::printf("  %6.1f%%  %s\n", 100.0 * n / static_cast<double>(log.size()), kind.c_str());
  }
  std::printf("still Healthy after       %d/%d\n", healthyAfterWindow, o.sets);
  std::printf("spec change -> Pod        n=%zu missed=%d median %.1f ms, p90 %.1f ms, max %.1f ms\n", latencies.size(),
              missed, Percentile(latencies, 0.5), Percentile(latencies, 0.9),
              latencies.empty() ? -1.0 : *std::max_element(latencies.begin(), latencies.end()));
  // One line for scripts (bench/kube/README.md).
  std::printf("RESULT sets=%d healthy_s=%.2f rss_median_mib=%.1f rss_max_mib=%.1f cpu_s_per_min=%.2f api_rps=%.1f "
              "status_writes_ps=%.2f reconciles_ps=%.1f reconcile_mean_ms=%.2f latency_median_ms=%.1f "
              "latency_p90_ms=%.1f latency_max_ms=%.1f latency_n=%zu missed=%d load=\"%s\"\n",
              o.sets, toHealthy, Percentile(rss, 0.5), *std::max_element(rss.begin(), rss.end()), cpuPerMinute,
              requestsPerSecond, statusWritesPerSecond, reconciles / window,
              reconciles > 0 ? reconcileSeconds / reconciles * 1000 : -1.0, Percentile(latencies, 0.5),
              Percentile(latencies, 0.9), latencies.empty() ? -1.0 : *std::max_element(latencies.begin(), latencies.end()),
              latencies.size(), missed, loadBefore.c_str());
  std::fflush(stdout);

  pgrs::StopChild(pid, SIGTERM, 10000ms);
  server.Stop();
  return 0;
}
