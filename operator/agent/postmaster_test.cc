// pg_controldata's output as the agent reads it: the checkpoint a fenced
// primary reports, and whether a primary was shut down cleanly.
#include "operator/agent/postmaster.h"

#include <gtest/gtest.h>

namespace pgrs::agent {
namespace {

// PostgreSQL 15, LC_ALL=C, right after initdb (abridged after wal_level).
constexpr char kShutDown[] = R"(pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7715008282364598816
Database cluster state:               shut down
pg_control last modified:             Thu Dec  3 09:32:27 2026
Latest checkpoint location:           0/1500718
Latest checkpoint's REDO location:    0/1500718
Latest checkpoint's REDO WAL file:    000000010000000000000001
Latest checkpoint's TimeLineID:       1
Latest checkpoint's PrevTimeLineID:   1
Latest checkpoint's full_page_writes: on
Latest checkpoint's NextXID:          0:724
Time of latest checkpoint:            Thu Dec  3 09:32:27 2026
Fake LSN counter for unlogged rels:   0/3E8
Minimum recovery ending location:     0/0
Min recovery ending loc's timeline:   0
wal_level setting:                    replica
)";

// A primary killed after a failover to timeline 3.
constexpr char kInProduction[] = R"(pg_control version number:            1300
Database cluster state:               in production
Latest checkpoint location:           0/5000060
Latest checkpoint's REDO location:    0/5000028
Latest checkpoint's TimeLineID:       3
Latest checkpoint's PrevTimeLineID:   2
Min recovery ending loc's timeline:   0
)";

TEST(ParseControlData, ACleanlyShutDownDirectoryGivesItsCheckpointAndTimeline) {
  ControlData data = ParseControlData(kShutDown);
  EXPECT_EQ(data.state, "shut down");
  EXPECT_EQ(data.checkpointLsn, 0x1500718u) << "the checkpoint location, not the REDO location";
  EXPECT_EQ(data.timeline, 1);
}

TEST(ParseControlData, APrimaryThatCrashedIsInProductionOnItsLatestTimeline) {
  ControlData data = ParseControlData(kInProduction);
  EXPECT_EQ(data.state, "in production");
  EXPECT_EQ(data.checkpointLsn, 0x5000060u);
  EXPECT_EQ(data.timeline, 3) << "not PrevTimeLineID, not the min recovery timeline";
}

TEST(ParseControlData, OutputWithoutTheFieldsLeavesThemZero) {
  ControlData data = ParseControlData("pg_controldata: error: could not open file \"global/pg_control\"\n");
  EXPECT_EQ(data.checkpointLsn, 0u);
  EXPECT_EQ(data.timeline, 0);
  EXPECT_EQ(data.state, "");
}

TEST(LocalParams, TheAgentConnectsToTheFirstListenAddressOrLoopbackWhenItListensEverywhere) {
  AgentConfig config;
  config.port = 5433;
  config.superuserPassword = "pw";
  for (const auto& [listen, host] : std::vector<std::pair<std::string, std::string>>{
           {"10.0.0.7,127.0.0.1", "10.0.0.7"}, {"*", "127.0.0.1"}, {"0.0.0.0", "127.0.0.1"}, {"", "127.0.0.1"}}) {
    config.listenAddresses = listen;
    pq::ConnectionParams p = LocalParams(InstanceLayout{}, config);
    EXPECT_EQ(p.host, host) << listen;
    EXPECT_EQ(p.port, 5433);
    EXPECT_EQ(p.user, "postgres");
    EXPECT_EQ(p.password, "pw");
    EXPECT_EQ(p.sslRootCert, "") << "TLS off";
  }
}

TEST(LocalParams, WithTlsTheAgentVerifiesItsServerAgainstTheSetsCa) {
  AgentConfig config;
  config.port = 5433;
  config.tls = TlsConfig{};
  InstanceLayout layout;
  layout.instanceDir = "/var/lib/pgrs/i";
  pq::ConnectionParams p = LocalParams(layout, config);
  EXPECT_EQ(p.sslRootCert, "/var/lib/pgrs/i/tls/ca.crt");
  EXPECT_NE(pq::ConnInfo(p).find("sslmode=verify-full sslrootcert=/var/lib/pgrs/i/tls/ca.crt"), std::string::npos)
      << pq::ConnInfo(p);
}

}  // namespace
}  // namespace pgrs::agent
