// One informer over N PostgresReplicaSets (default 10 000): how long the
// initial list takes to fill the cache, how much resident memory the cache
// costs, and how many watch events per second it applies.
//
// The API server runs in a child process so that the parent's resident
// memory is the client's alone.
// Usage: kube_watch_bench [objects] [updates] [--tls]
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "e2e/kube/apiserver.h"
#include "operator/kube/informer.h"
#include "operator/util/files.h"
#include "operator/util/random.h"

namespace {

using pgrs::kube::Json;
using Clock = std::chrono::steady_clock;

long RssKiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

// Heap bytes in use, all arenas, mmapped blocks included: the cache's own
// size, unlike RSS, which also keeps freed but unreturned pages.
size_t HeapInUse() {
  struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

Json Object(int i) {
  Json rs = Json::object();
  rs["apiVersion"] = Json::string("pgrs.dev/v1alpha1");
  rs["kind"] = Json::string("PostgresReplicaSet");
  rs["metadata"]["name"] = Json::string("set-" + std::to_string(i));
  rs["metadata"]["labels"]["app.kubernetes.io/name"] = Json::string("pgrs");
  rs["metadata"]["labels"]["team"] = Json::string("team-" + std::to_string(i % 17));
  rs["spec"]["instances"] = Json::number(3);
  rs["spec"]["postgres"]["version"] = Json::number(15);
  rs["spec"]["postgres"]["parameters"]["max_connections"] = Json::string("200");
  rs["spec"]["postgres"]["parameters"]["shared_buffers"] = Json::string("256MB");
  rs["spec"]["replication"]["mode"] = Json::string("async");
  rs["spec"]["storage"]["size"] = Json::string("10Gi");
  return rs;
}

// The server process: fills the store, serves, and on each byte from
// `trigger` applies `updates` spec changes.
[[noreturn]] void ServeChild(int objects, int updates, int portPipe, int trigger,
                             const pgrs::e2e::TestCertificates* certs) {
  pgrs::e2e::ApiServerOptions options;
  if (certs != nullptr) {
    options.tls = true;
    options.certFile = certs->serverCertFile;
    options.keyFile = certs->serverKeyFile;
  }
  options.historyLimit = static_cast<size_t>(objects + 4 * updates + 10);
  options.bookmarkInterval = std::chrono::milliseconds(1000);
  pgrs::e2e::ApiServer server(options);
  const auto rs = pgrs::kube::ReplicaSetResource();
  for (int i = 0; i < objects; ++i) server.Call("POST", rs.Path("bench"), Object(i).serialize());
  if (!server.Start().ok()) _exit(1);
  int port = server.port();
  if (write(portPipe, &port, sizeof(port)) != sizeof(port)) _exit(1);
  char byte;
  int round = 0;
  while (read(trigger, &byte, 1) == 1) {
    ++round;
    for (int i = 0; i < updates; ++i) {
      Json patch = Json::object();
      patch["spec"]["instances"] = Json::number(1 + (round + i) % 5);
      patch["metadata"]["annotations"]["bench/round"] = Json::string(std::to_string(round));
      server.Call("PATCH", rs.Path("bench", "set-" + std::to_string(i % objects)), patch.serialize());
    }
  }
  server.Stop();
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  int objects = argc > 1 ? std::atoi(argv[1]) : 10000;
  int updates = argc > 2 ? std::atoi(argv[2]) : 10000;
  bool tls = argc > 3 && std::string(argv[3]) == "--tls";
  std::optional<pgrs::e2e::TestCertificates> certs;
  std::string certDir = "/tmp/pgrs-kube-bench-" + pgrs::RandomHex(4);
  if (tls) {
    auto made = pgrs::e2e::MakeTestCertificates(certDir);
    if (!made.ok()) {
      std::fprintf(stderr, "%s\n", made.status().ToString().c_str());
      return 1;
    }
    certs = *made;
  }
  int portPipe[2], trigger[2];
  if (pipe(portPipe) != 0 || pipe(trigger) != 0) return 1;
  auto fillStart = Clock::now();
  pid_t child = fork();
  if (child == 0) {
    close(portPipe[0]);
    close(trigger[1]);
    ServeChild(objects, updates, portPipe[1], trigger[0], certs ? &*certs : nullptr);
  }
  close(portPipe[1]);
  close(trigger[0]);
  int port = 0;
  if (read(portPipe[0], &port, sizeof(port)) != sizeof(port)) {
    std::fprintf(stderr, "the API server process failed\n");
    return 1;
  }
  double fillSeconds = std::chrono::duration<double>(Clock::now() - fillStart).count();

  pgrs::kube::ClientConfig config;
  config.server = std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port);
  if (tls) config.caData = pgrs::ReadFile(certs->caFile).value();
  auto client = pgrs::kube::Client::Create(config, {}).value();
  // A plain list first: the cost of the request and JSON parsing alone.
  double rawListSeconds = 0;
  size_t listed = 0, jsonBytes = 0;
  {
    auto listStart = Clock::now();
    auto list = client->List(pgrs::kube::ReplicaSetResource(), "bench");
    rawListSeconds = std::chrono::duration<double>(Clock::now() - listStart).count();
    if (list.ok()) {
      listed = list->items.size();
      for (const auto& item : list->items) jsonBytes += item.serialize().size();
    }
  }  // freed before measuring the cache

  malloc_trim(0);
  long rssBefore = RssKiB();
  size_t heapBefore = HeapInUse();
  pgrs::kube::Informer informer(client.get(), pgrs::kube::ReplicaSetResource(), "bench", {}, {});
  auto syncStart = Clock::now();
  informer.Start();
  if (!informer.WaitForSync(std::chrono::seconds(120))) {
    std::fprintf(stderr, "the informer did not sync\n");
    kill(child, SIGKILL);
    return 1;
  }
  double syncSeconds = std::chrono::duration<double>(Clock::now() - syncStart).count();
  // The list's temporaries are gone once the informer has moved on to its watch.
  while (informer.stats().watches == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // Freed list buffers stay mapped until trimmed; the cache is what remains.
  malloc_trim(0);
  long rssAfter = RssKiB();
  size_t heapAfter = HeapInUse();

  // Watch throughput: the server applies `updates` changes at once; time
  // until the informer has applied them all.
  double eventsPerSecond[3];
  for (int round = 0; round < 3; ++round) {
    int64_t before = informer.stats().events;
    auto start = Clock::now();
    if (write(trigger[1], "x", 1) != 1) return 1;
    while (informer.stats().events < before + updates) {
      if (Clock::now() - start > std::chrono::seconds(120)) {
        std::fprintf(stderr, "events did not arrive\n");
        kill(child, SIGKILL);
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    eventsPerSecond[round] = updates / std::chrono::duration<double>(Clock::now() - start).count();
  }
  long rssEnd = RssKiB();
  informer.Stop();
  close(trigger[1]);
  int status = 0;
  waitpid(child, &status, 0);

  if (tls) (void)pgrs::RemoveTree(certDir);
  std::printf("transport                       %s\n", tls ? "HTTPS" : "HTTP");
  std::printf("objects                         %d (listed %zu, %.0f bytes of JSON each)\n", objects, listed,
              listed ? static_cast<double>(jsonBytes) / listed : 0.0);
  std::printf("server fill (child process)     %.2f s\n", fillSeconds);
  std::printf("list, client only               %.3f s\n", rawListSeconds);
  std::printf("informer list until synced      %.3f s\n", syncSeconds);
  std::printf("cache resident memory           %.1f MiB (%.0f bytes/object; RSS %ld -> %ld KiB)\n",
              (rssAfter - rssBefore) / 1024.0, (rssAfter - rssBefore) * 1024.0 / objects, rssBefore, rssAfter);
  std::printf("cache heap in use                %.1f MiB (%.0f bytes/object)\n",
              (static_cast<double>(heapAfter) - static_cast<double>(heapBefore)) / (1024.0 * 1024.0),
              (static_cast<double>(heapAfter) - static_cast<double>(heapBefore)) / objects);
  std::printf("watch events applied            %.0f / %.0f / %.0f events/s (3 rounds of %d MODIFIED)\n",
              eventsPerSecond[0], eventsPerSecond[1], eventsPerSecond[2], updates);
  std::printf("RSS after the watch rounds      %ld KiB\n", rssEnd);
  return 0;
}
