// End to end, with real PostgreSQL 15: a local replica set is created,
// replicates, scales, survives a standby crash and a control-plane restart.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>

#include "e2e/local/harness.h"
#include "operator/util/files.h"

namespace pgrs::e2e {
namespace {

using namespace std::chrono_literals;

int CountRows(LocalCluster& c, const std::string& set, int port, const std::string& table) {
  auto rows = c.Sql(set, port, "SELECT count(*) FROM " + table);
  return rows.ok() && !rows->empty() ? std::atoi((*rows)[0][0]->c_str()) : -1;
}

std::vector<std::string> StreamingStandbys(LocalCluster& c, const std::string& set, int primaryPort) {
  std::vector<std::string> names;
  auto rows = c.Sql(set, primaryPort, "SELECT application_name FROM pg_stat_replication WHERE state = 'streaming' "
                                      "ORDER BY application_name");
  if (rows.ok()) {
    for (const auto& r : *rows) names.push_back(r[0].value_or(""));
  }
  return names;
}

std::vector<std::string> InstanceNames(const api::PostgresReplicaSet& set) {
  std::vector<std::string> names;
  for (const auto& i : set.status.instances) names.push_back(i.name);
  return names;
}

TEST(LocalReplicaSet, ThreeInstancesReplicateAndStandbysRefuseWrites) {
  LocalCluster c;
  int base = FreePortRange(3);
  ASSERT_GT(base, 0);
  c.StartRun();
  auto applied = c.ApplyText(Manifest("demo", 3, base));
  ASSERT_EQ(applied.exitCode, 0) << applied.output;
  ASSERT_TRUE(c.WaitReady("demo"));

  auto set = c.Get("demo");
  EXPECT_EQ(set.status.currentPrimary, "demo-1");
  EXPECT_EQ(set.status.readyInstances, 3);
  EXPECT_EQ(set.status.timeline, 1);
  ASSERT_EQ(set.status.instances.size(), 3u);
  EXPECT_EQ(set.status.instances[0].role, "primary");
  EXPECT_EQ(set.status.instances[1].state, "Streaming");
  EXPECT_EQ(set.status.instances[2].state, "Streaming");

  // The primary sees both standbys streaming.
  EXPECT_EQ(StreamingStandbys(c, "demo", base), (std::vector<std::string>{"demo-2", "demo-3"}));
  auto slots = c.Sql("demo", base, "SELECT slot_name FROM pg_replication_slots WHERE active ORDER BY 1");
  ASSERT_TRUE(slots.ok());
  ASSERT_EQ(slots->size(), 2u);
  EXPECT_EQ((*slots)[0][0], "pgrs_demo_2");

  // A row written through the read-write connection string reaches both standbys.
  auto rw = c.SqlConnInfo(set.status.connection.readWrite,
                          "CREATE TABLE items (id int primary key); INSERT INTO items VALUES (1), (2), (3)");
  ASSERT_TRUE(rw.ok()) << rw.status().ToString();
  for (int port : {base + 1, base + 2}) {
    EXPECT_TRUE(Eventually([&] { return CountRows(c, "demo", port, "items") == 3; }, 10s)) << "port " << port;
  }

  // Standbys refuse writes; the read-only string lands on a standby.
  auto write = c.Sql("demo", base + 1, "INSERT INTO items VALUES (4)");
  ASSERT_FALSE(write.ok());
  EXPECT_NE(write.status().message().find("cannot execute INSERT in a read-only transaction"), std::string::npos)
      << write.status().message();
  auto ro = c.SqlConnInfo(set.status.connection.readOnly, "SELECT pg_is_in_recovery()");
  ASSERT_TRUE(ro.ok()) << ro.status().ToString();
  EXPECT_EQ((*ro)[0][0], "t");

  // The same strings work with psql as they are (the README promises it).
  auto psql = c.Local("psql", {"demo", "--", "-Atc", "SELECT count(*) FROM items"});
  EXPECT_EQ(psql.exitCode, 0) << psql.output;
  EXPECT_EQ(psql.output, "3\n");

  // The table view names every instance with its role and state.
  auto table = c.Local("get", {"demo"});
  EXPECT_NE(table.output.find("demo-2    standby  Streaming"), std::string::npos) << table.output;
}

TEST(LocalReplicaSet, ScalesUpAndDownRemovingHighestStandbysFirst) {
  LocalCluster c;
  int base = FreePortRange(4);
  ASSERT_GT(base, 0);
  c.StartRun();
  ASSERT_EQ(c.ApplyText(Manifest("scale", 3, base)).exitCode, 0);
  ASSERT_TRUE(c.WaitReady("scale"));
  ASSERT_TRUE(c.Sql("scale", base, "CREATE TABLE t AS SELECT generate_series(1, 100) AS id").ok());

  ASSERT_EQ(c.ApplyText(Manifest("scale", 4, base)).exitCode, 0);
  ASSERT_TRUE(c.WaitReady("scale"));
  auto set = c.Get("scale");
  EXPECT_EQ(set.metadata.generation, 2);
  EXPECT_EQ(InstanceNames(set), (std::vector<std::string>{"scale-1", "scale-2", "scale-3", "scale-4"}));
  EXPECT_EQ(StreamingStandbys(c, "scale", base), (std::vector<std::string>{"scale-2", "scale-3", "scale-4"}));
  EXPECT_TRUE(Eventually([&] { return CountRows(c, "scale", base + 3, "t") == 100; }, 10s));

  ASSERT_EQ(c.ApplyText(Manifest("scale", 2, base)).exitCode, 0);
  ASSERT_TRUE(c.WaitReady("scale"));
  set = c.Get("scale");
  EXPECT_EQ(InstanceNames(set), (std::vector<std::string>{"scale-1", "scale-2"}));
  EXPECT_EQ(StreamingStandbys(c, "scale", base), (std::vector<std::string>{"scale-2"}));
  EXPECT_FALSE(PathExists(c.InstanceDir("scale", "scale-3")));
  EXPECT_FALSE(PathExists(c.InstanceDir("scale", "scale-4")));
  // The removed standbys' slots are dropped, so they hold no WAL back.
  EXPECT_TRUE(Eventually([&] {
    auto slots = c.Sql("scale", base, "SELECT string_agg(slot_name, ',' ORDER BY slot_name) FROM pg_replication_slots");
    return slots.ok() && (*slots)[0][0] == std::optional<std::string>("pgrs_scale_2");
  }, 10s));
}

TEST(LocalReplicaSet, KilledStandbyPostmasterComesBackStreaming) {
  LocalCluster c;
  int base = FreePortRange(2);
  ASSERT_GT(base, 0);
  c.StartRun();
  ASSERT_EQ(c.ApplyText(Manifest("crash", 2, base)).exitCode, 0);
  ASSERT_TRUE(c.WaitReady("crash"));
  pid_t before = c.PostmasterPid("crash", "crash-2");
  ASSERT_GT(before, 0);
  ASSERT_EQ(::kill(before, SIGKILL), 0);

  // The agent restarts it; it streams again and sees new writes.
  EXPECT_TRUE(Eventually([&] {
    pid_t now = c.PostmasterPid("crash", "crash-2");
    return now > 0 && now != before && StreamingStandbys(c, "crash", base) == std::vector<std::string>{"crash-2"};
  }, 60s));
  ASSERT_TRUE(c.Sql("crash", base, "CREATE TABLE after_crash AS SELECT 1 AS id").ok());
  EXPECT_TRUE(Eventually([&] { return CountRows(c, "crash", base + 1, "after_crash") == 1; }, 10s));
  EXPECT_TRUE(c.WaitReady("crash"));
}

TEST(LocalReplicaSet, RestartedControlPlaneAdoptsInstancesWithoutRecloning) {
  LocalCluster c;
  int base = FreePortRange(3);
  ASSERT_GT(base, 0);
  c.StartRun();
  ASSERT_EQ(c.ApplyText(Manifest("adopt", 3, base)).exitCode, 0);
  ASSERT_TRUE(c.WaitReady("adopt"));
  ASSERT_TRUE(c.Sql("adopt", base, "CREATE TABLE kept AS SELECT generate_series(1, 1000) AS id").ok());
  for (int port : {base + 1, base + 2}) {
    ASSERT_TRUE(Eventually([&] { return CountRows(c, "adopt", port, "kept") == 1000; }, 10s));
  }
  auto standbyLog = ReadFile(c.InstanceDir("adopt", "adopt-2") + "/agent.log");
  ASSERT_TRUE(standbyLog.ok());
  size_t clonesBefore = std::count(standbyLog->begin(), standbyLog->end(), '\n');  // lines so far

  // A clean stop leaves no agent and no PostgreSQL behind.
  EXPECT_EQ(c.StopRun(), 0);
  EXPECT_TRUE(c.ProcessesUsingStateDir().empty());
  EXPECT_FALSE(c.Sql("adopt", base, "SELECT 1").ok());

  c.StartRun();
  ASSERT_TRUE(c.WaitReady("adopt"));
  auto set = c.Get("adopt");
  EXPECT_EQ(set.status.currentPrimary, "adopt-1");
  for (int port : {base, base + 1, base + 2}) EXPECT_EQ(CountRows(c, "adopt", port, "kept"), 1000) << port;
  // The standby's agent log, after the restart, shows no second clone.
  auto after = ReadFile(c.InstanceDir("adopt", "adopt-2") + "/agent.log");
  ASSERT_TRUE(after.ok());
  std::string tail = after->substr(std::min(after->size(), standbyLog->size()));
  EXPECT_EQ(tail.find("cloning data directory"), std::string::npos) << tail;
  EXPECT_GT(std::count(after->begin(), after->end(), '\n'), static_cast<long>(clonesBefore));
}

TEST(LocalReplicaSet, DeleteStopsAndRemovesEverything) {
  LocalCluster c;
  int base = FreePortRange(2);
  ASSERT_GT(base, 0);
  c.StartRun();
  ASSERT_EQ(c.ApplyText(Manifest("gone", 2, base)).exitCode, 0);
  ASSERT_TRUE(c.WaitReady("gone"));
  auto deleted = c.Local("delete", {"gone"});
  EXPECT_EQ(deleted.exitCode, 0) << deleted.output;
  EXPECT_FALSE(PathExists(c.stateDir() + "/sets/gone"));
  EXPECT_FALSE(c.Sql("gone", base, "SELECT 1").ok());
  std::vector<pid_t> left = c.ProcessesUsingStateDir();
  left.erase(std::remove(left.begin(), left.end(), c.runPid()), left.end());
  EXPECT_TRUE(left.empty());
}

}  // namespace
}  // namespace pgrs::e2e
