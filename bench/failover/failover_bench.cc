// Benchmark: seconds of write unavailability (last acknowledged write before
// the event -> first acknowledged write after) for
//   - SIGKILL of the primary's postmaster (async and sync/required),
//   - SIGKILL of the primary's agent and postmaster together,
//   - SIGSTOP of the primary's postmaster (a hang: detection, then fencing),
//   - a planned switchover,
// with a writer committing a row every ~20 ms through status.connection.
// readWrite. Prints a Markdown section for bench/RESULTS.md.
// Usage: PGRS_BINARY=build/operator/pgrs build/bench/failover/failover_bench [TRIALS]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "e2e/local/harness.h"
#include "e2e/local/workload.h"
#include "operator/util/files.h"

using namespace pgrs;
using namespace pgrs::e2e;
using namespace std::chrono_literals;

namespace {

struct Stats {
  double median, p90, max;
};

Stats Summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  auto at = [&](double q) { return v[std::min(v.size() - 1, static_cast<size_t>(q * (v.size() - 1) + 0.5))]; };
  double median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return {median, at(0.9), v.back()};
}

enum class Event { kPostmasterKill, kAgentAndPostmasterKill, kPostmasterHang, kSwitchover };

// Runs `trials` events on one replica set; returns the unavailability of each.
std::vector<double> Measure(const std::string& name, Event event, const std::string& extraSpec, int trials) {
  LocalCluster c;
  int base = FreePortRange(3);
  c.StartRun();
  c.ApplyText(Manifest(name, 3, base, extraSpec));
  if (!c.WaitReady(name, 180s)) return {};
  c.Sql(name, base, "CREATE TABLE ledger (id bigint PRIMARY KEY)").ok();
  Writer writer(c.Get(name).status.connection.readWrite, "ledger");
  writer.Start();
  writer.WaitForMoreAcks(20, 10s);
  std::vector<double> gaps;
  for (int t = 0; t < trials; ++t) {
    auto set = c.Get(name);
    std::string primary = set.status.currentPrimary;
    auto before = std::chrono::steady_clock::now();
    if (event == Event::kSwitchover) {
      std::string target = api::InstanceName(name, api::InstanceIndex(name, primary) % 3 + 1);
      auto result = c.Local("switchover", {name, "--to", target, "--timeout", "60s"});
      if (result.exitCode != 0) std::fprintf(stderr, "switchover failed: %s\n", result.output.c_str());
    } else if (event == Event::kPostmasterHang) {
      pid_t postmaster = c.PostmasterPid(name, primary);
      ::kill(postmaster, SIGSTOP);
      Eventually([&] { return c.Get(name).status.currentPrimary != primary; }, 60s);
      ::kill(postmaster, SIGCONT);
    } else {
      if (event == Event::kAgentAndPostmasterKill) ::kill(c.AgentPid(primary), SIGKILL);
      ::kill(c.PostmasterPid(name, primary), SIGKILL);
      Eventually([&] { return c.Get(name).status.currentPrimary != primary; }, 60s);
    }
    writer.WaitForMoreAcks(20, 30s);
    gaps.push_back(writer.LongestGapAround(before));
    std::fprintf(stderr, "%s trial %d: %.3f s\n", name.c_str(), t + 1, gaps.back());
    c.WaitReady(name, 180s);
    writer.WaitForMoreAcks(10, 10s);
  }
  writer.Stop();
  return gaps;
}

}  // namespace

int main(int argc, char** argv) {
  int trials = argc > 1 ? std::atoi(argv[1]) : 10;
  struct Row {
    const char* what;
    Event event;
    std::string spec;
  };
  std::vector<Row> rows = {
      {"postmaster SIGKILL, async", Event::kPostmasterKill, ""},
      {"postmaster SIGKILL, sync (ANY 1, required)", Event::kPostmasterKill,
       "  replication:\n    mode: sync\n    syncReplicas: 1\n"},
      {"agent + postmaster SIGKILL, async", Event::kAgentAndPostmasterKill, ""},
      {"postmaster SIGSTOP (hang; detectionSeconds 5), async", Event::kPostmasterHang, ""},
      {"switchover, async", Event::kSwitchover, ""},
  };
  // Optional: --tls=off (spec.tls.enabled false for every row) and
  // --rows=1,5 (only those rows, counted from 1).
  std::string extraSpec, only;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--tls=off") extraSpec = "  tls:\n    enabled: false\n";
    if (arg.rfind("--rows=", 0) == 0) only = "," + arg.substr(7) + ",";
  }
  std::string out = "| event | trials | median (s) | p90 (s) | max (s) |\n| --- | --- | --- | --- | --- |\n";
  int n = 0;
  for (const auto& row : rows) {
    ++n;
    if (!only.empty() && only.find("," + std::to_string(n) + ",") == std::string::npos) continue;
    auto gaps = Measure("bench" + std::to_string(n), row.event, row.spec + extraSpec, trials);
    if (gaps.empty()) {
      out += "| " + std::string(row.what) + " | 0 | failed | | |\n";
      continue;
    }
    Stats s = Summarize(gaps);
    char line[256];
    std::snprintf(line, sizeof(line), "| %s | %zu | %.2f | %.2f | %.2f |\n", row.what, gaps.size(), s.median, s.p90,
                  s.max);
    out += line;
  }
  std::printf("%s", out.c_str());
  return 0;
}
