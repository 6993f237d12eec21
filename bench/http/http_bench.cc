// The agent API's transport: GET /status (a ~400-byte JSON body, bearer
// token checked) over plain HTTP and over HTTPS with mutual TLS, on a new
// connection per call (HttpCall) and on a kept-alive one (HttpClient).
// Sequential calls from one thread, as the observer polls one agent; server
// and client in this process, on loopback. Prints one markdown table row
// per transport and connection mode: median and min–max over the rounds of
// calls per second, p50 and p99 latency.
//
// Usage: http_bench [rounds=5] [calls per round=1000] [certificate dir]
// Certificates: e2e/kube's test CA (RSA 2048), a client certificate signed
// by it; or those in `certificate dir` (ca.crt, server.crt, server.key,
// client.crt, client.key, server's SAN IP:127.0.0.1). OpenSSL 3 defaults
// (TLS 1.3).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "e2e/kube/apiserver.h"
#include "e2e/kube/operator_process.h"
#include "operator/util/files.h"
#include "operator/util/http.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct Round {
  double callsPerSecond;
  double p50Ms, p99Ms;
  double cpuMsPerCall;  // user + system time of the process (client and server)
};

double CpuMs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3; };
  return ms(u.ru_utime) + ms(u.ru_stime);
}

double Quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

Round Measure(int calls, const std::function<bool()>& call) {
  std::vector<double> latencies;
  latencies.reserve(calls);
  auto start = Clock::now();
  double cpuStart = CpuMs();
  for (int i = 0; i < calls; ++i) {
    auto t0 = Clock::now();
    if (!call()) {
      std::fprintf(stderr, "call failed\n");
      std::exit(1);
    }
    latencies.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return {calls / seconds, Quantile(latencies, 0.5), Quantile(latencies, 0.99), (CpuMs() - cpuStart) / calls};
}

std::string Cell(std::vector<double> v, const char* format) {
  std::sort(v.begin(), v.end());
  char buf[128];
  std::string f = std::string(format) + " (" + format + "–" + format + ")";
  std::snprintf(buf, sizeof(buf), f.c_str(), v[v.size() / 2], v.front(), v.back());
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  int calls = argc > 2 ? std::atoi(argv[2]) : 1000;
  std::string dir = "/tmp/pgrs-http-bench";
  (void)pgrs::RemoveTree(dir);
  pgrs::Result<pgrs::e2e::TestCertificates> certs = pgrs::e2e::TestCertificates{};
  if (argc > 3) {
    std::string d = argv[3];
    certs->caFile = d + "/ca.crt";
    certs->serverCertFile = d + "/server.crt";
    certs->serverKeyFile = d + "/server.key";
    certs->clientCertFile = d + "/client.crt";
    certs->clientKeyFile = d + "/client.key";
  } else {
    certs = pgrs::e2e::MakeTestCertificates(dir);
  }
  if (!certs.ok()) {
    std::fprintf(stderr, "certificates: %s\n", certs.status().message().c_str());
    return 1;
  }
  const std::string body(400, 'x');
  auto status = [&body](const pgrs::HttpRequest&) { return pgrs::HttpResponse{200, "{\"pad\":\"" + body + "\"}"}; };

  int plainPort = pgrs::e2e::FreePort();
  pgrs::HttpServer plain("127.0.0.1:" + std::to_string(plainPort), "token");
  plain.Handle("GET", "/status", status);
  pgrs::HttpServer tls("127.0.0.1:0", "token",
                       pgrs::TlsFiles{certs->serverCertFile, certs->serverKeyFile, certs->caFile, ""});
  tls.Handle("GET", "/status", status);
  if (!plain.Start().ok() || !tls.Start().ok()) {
    std::fprintf(stderr, "servers did not start\n");
    return 1;
  }
  const std::string plainUrl = "http://127.0.0.1:" + std::to_string(plainPort);
  const std::string tlsUrl = "https://127.0.0.1:" + std::to_string(tls.Port());
  const pgrs::TlsFiles client{certs->clientCertFile, certs->clientKeyFile, certs->caFile, ""};

  struct Mode {
    std::string name;
    std::function<bool()> call;
  };
  pgrs::HttpClient plainClient(plainUrl, 5s), tlsClient(tlsUrl, 5s, client);
  auto ok = [](const pgrs::Result<pgrs::HttpResponse>& r) { return r.ok() && r->status == 200; };
  std::vector<Mode> modes = {
      {"HTTP, new connection per call",
       [&] { return ok(pgrs::HttpCall("GET", plainUrl + "/status", "", "token", 5s)); }},
      {"HTTPS + mTLS, new connection per call",
       [&] { return ok(pgrs::HttpCall("GET", tlsUrl + "/status", "", "token", 5s, client)); }},
      {"HTTP, kept-alive connection", [&] { return ok(plainClient.Call("GET", "/status", "", "token")); }},
      {"HTTPS + mTLS, kept-alive connection", [&] { return ok(tlsClient.Call("GET", "/status", "", "token")); }},
  };
  std::printf(
      "| transport, connection | calls/s | p50 (ms) | p99 (ms) | CPU per call, both ends (ms) |\n"
      "| --- | --- | --- | --- | --- |\n");
  for (auto& mode : modes) {
    Measure(std::max(1, calls / 10), mode.call);  // warm-up
    std::vector<double> rps, p50, p99, cpu;
    for (int r = 0; r < rounds; ++r) {
      auto round = Measure(calls, mode.call);
      rps.push_back(round.callsPerSecond);
      p50.push_back(round.p50Ms);
      p99.push_back(round.p99Ms);
      cpu.push_back(round.cpuMsPerCall);
    }
    std::printf("| %s | %s | %s | %s | %s |\n", mode.name.c_str(), Cell(rps, "%.0f").c_str(), Cell(p50, "%.3f").c_str(),
                Cell(p99, "%.3f").c_str(), Cell(cpu, "%.3f").c_str());
    std::fflush(stdout);
  }
  plain.Stop();
  tls.Stop();
  (void)pgrs::RemoveTree(dir);
  return 0;
}
