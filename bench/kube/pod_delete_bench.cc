// Benchmark: seconds of write unavailability when the primary's Pod is
// deleted while its node is cordoned (what a node drain does: the Pod
// cannot come back until the node is uncordoned; the benchmark uncordons it
// once a new primary writes, and waits for the set to be healthy again), in
// the Kubernetes mode without a cluster: the test API server (graceful Pod
// deletion), the process kubelet (SIGTERM, then the grace period) and two
// `pgrs operator` replicas, real PostgreSQL 15. A writer commits a row
// every ~20 ms through the Pods' addresses (multi-host,
// target_session_attrs=read-write); the number is the longest gap between
// two acknowledged commits around each deletion. Also counts acknowledged
// rows missing afterwards. Prints a Markdown table row for bench/RESULTS.md.
// Usage: PGRS_BINARY=build/operator/pgrs build/bench/kube/pod_delete_bench [TRIALS] [HANDOVER]
// HANDOVER is the operator's --instance-shutdown-handover (default 20s;
// 0s: the primary's agent stops at once, as before the hand-over existed).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "e2e/local/workload.h"
#include "e2e/operator/kube_env.h"

using namespace pgrs;
using namespace pgrs::e2e;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  const int trials = argc > 1 ? std::atoi(argv[1]) : 10;
  const std::string handover = argc > 2 ? argv[2] : "20s";
  const std::string label = "primary Pod deleted, --instance-shutdown-handover " + handover;
  spdlog::set_default_logger(spdlog::stderr_logger_mt("bench"));  // stdout is the table row
  KubeEnvironment env;
  env.operatorArgs = {"--instance-shutdown-handover", handover};
  if (Status st = env.Start(); !st.ok()) {
    std::fprintf(stderr, "start: %s\n", st.ToString().c_str());
    return 1;
  }
  const std::string set = "bench";
  if (!env.Apply(set, 3) || !env.WaitHealthy(set, 3, 180s)) {
    std::fprintf(stderr, "the set did not become healthy\n");
    env.Stop(true);
    return 1;
  }
  {
    auto app = env.Connect(env.Primary(set), true);
    if (!app.ok() || !(*app)->Exec("CREATE TABLE ledger (id bigint PRIMARY KEY)").ok()) {
      std::fprintf(stderr, "create table failed\n");
      env.Stop(true);
      return 1;
    }
  }
  const std::string password = env.SecretValue(set + "-app", "password");
  Writer writer([&] { return env.PodConninfo(set, password); }, "ledger");
  writer.Start();
  writer.WaitForMoreAcks(20, 20s);
  std::vector<double> gaps;
  for (int t = 0; t < trials; ++t) {
    const std::string primary = env.Primary(set);
    const std::string uid = kube::UidOf(env.Pod(primary));
    env.kubelet_->Cordon(true);
    auto before = std::chrono::steady_clock::now();
    env.server_->CallJson("DELETE", kube::PodResource().Path(KubeEnvironment::kNs, primary));
    WaitFor([&] { return env.Primary(set) != primary; }, 60s);
    writer.WaitForMoreAcks(20, 30s);
    env.kubelet_->Cordon(false);
    gaps.push_back(writer.LongestGapAround(before));
    std::fprintf(stderr, "trial %d: %s deleted, %s promoted, longest write gap %.3f s\n", t + 1, primary.c_str(),
                 env.Primary(set).c_str(), gaps.back());
    env.WaitReplaced(primary, uid, 60s);
    env.WaitHealthy(set, 3, 180s);
    writer.WaitForMoreAcks(10, 10s);
  }
  writer.Stop();
  std::set<int64_t> present = env.Rows(env.Primary(set), "ledger");
  int missing = 0;
  for (const auto& ack : writer.Acknowledged()) missing += present.count(ack.id) ? 0 : 1;
  int planned = 0, unplanned = 0;
  env.CountFailovers(set, &planned, &unplanned);
  env.Stop(false);

  std::sort(gaps.begin(), gaps.end());
  auto at = [&](double q) { return gaps[std::min(gaps.size() - 1, static_cast<size_t>(q * (gaps.size() - 1) + 0.5))]; };
  double median = gaps.size() % 2 ? gaps[gaps.size() / 2] : (gaps[gaps.size() / 2 - 1] + gaps[gaps.size() / 2]) / 2;
  std::printf("| %s | %zu | %.2f | %.2f | %.2f | %.2f | %d planned, %d unplanned | %d |\n", label.c_str(), gaps.size(),
              median, gaps.front(), at(0.9), gaps.back(), planned, unplanned, missing);
  return 0;
}
