// Writing the generated files into a data directory (no PostgreSQL needed):
// a second write of the same config changes nothing, and a role's files come
// and go with the role.
#include "operator/agent/configuration.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "operator/agent/temp_dir_for_test.h"
#include "operator/util/files.h"

namespace pgrs::agent {
namespace {

class WriteConfigurationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    layout_ = InstanceLayout{"t-2", dir_.path(), "/usr/lib/postgresql", {::getuid(), ::getgid(), "", ""}};
    ASSERT_TRUE(MakeDirs(layout_.DataDir(), 0700).ok());
  }
  AgentConfig Standby() {
    AgentConfig c;
    c.role = "standby";
    c.majorVersion = 15;
    c.port = 5433;
    c.upstreamHost = "127.0.0.1";
    c.upstreamPort = 5432;
    c.slotName = "pgrs_t_2";
    c.replicationPassword = "r1";
    return c;
  }
  std::string Data(const std::string& name) { return JoinPath(layout_.DataDir(), name); }
  static std::string Text(const std::string& path) {
    auto text = ReadFile(path);
    return text.ok() ? *text : "";
  }
  TempDirForTest dir_{"pgrs-configuration"};
  InstanceLayout layout_;
};

TEST_F(WriteConfigurationTest, AStandbyGetsItsFilesOnceAndAPassfileWithItsPassword) {
  auto first = WriteConfiguration(layout_, Standby());
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_TRUE(first->changed);
  EXPECT_FALSE(first->recoveryConfChanged) << "15 has standby.signal, not recovery.conf";
  EXPECT_TRUE(PathExists(Data("postgresql.conf")));
  EXPECT_TRUE(PathExists(Data("pg_hba.conf")));
  EXPECT_TRUE(PathExists(Data("standby.signal")));
  EXPECT_EQ(Text(layout_.ReplicationPassfile()), "*:*:*:pgrs_replication:r1\n");
  auto conf = Text(Data("postgresql.conf"));
  EXPECT_NE(conf.find(layout_.ReplicationPassfile()), std::string::npos) << "primary_conninfo uses the passfile";

  auto second = WriteConfiguration(layout_, Standby());
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->changed) << "nothing to reload";

  AgentConfig rotated = Standby();
  rotated.replicationPassword = "r2";
  auto third = WriteConfiguration(layout_, rotated);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(Text(layout_.ReplicationPassfile()), "*:*:*:pgrs_replication:r2\n");
}

TEST_F(WriteConfigurationTest, APassfileMadeGroupReadableByAnFsGroupIsWrittenAgainWith0600) {
  ASSERT_TRUE(WriteConfiguration(layout_, Standby()).ok());
  // What a kubelet applying fsGroup at mount leaves; libpq would ignore it.
  ASSERT_EQ(::chmod(layout_.ReplicationPassfile().c_str(), 0660), 0);
  ASSERT_TRUE(WriteConfiguration(layout_, Standby()).ok());
  EXPECT_TRUE(HasMode(layout_.ReplicationPassfile(), 0600));
  EXPECT_EQ(Text(layout_.ReplicationPassfile()), "*:*:*:pgrs_replication:r1\n");
}

TEST_F(WriteConfigurationTest, AChangedParameterChangesTheFilesAndAPrimaryLosesStandbySignal) {
  ASSERT_TRUE(WriteConfiguration(layout_, Standby()).ok());
  AgentConfig tuned = Standby();
  tuned.parameters["work_mem"] = "8MB";
  auto written = WriteConfiguration(layout_, tuned);
  ASSERT_TRUE(written.ok());
  EXPECT_TRUE(written->changed);

  AgentConfig primary = tuned;
  primary.role = "primary";
  written = WriteConfiguration(layout_, primary);
  ASSERT_TRUE(written.ok());
  EXPECT_TRUE(written->changed);
  EXPECT_FALSE(PathExists(Data("standby.signal")));
}

TEST_F(WriteConfigurationTest, Postgres11StandbyConfigurationIsInRecoveryConfWhichNeedsARestart) {
  AgentConfig old = Standby();
  old.majorVersion = 11;
  auto written = WriteConfiguration(layout_, old);
  ASSERT_TRUE(written.ok());
  EXPECT_TRUE(written->recoveryConfChanged);
  EXPECT_TRUE(PathExists(Data("recovery.conf")));
  EXPECT_TRUE(NeedsRestartForConfiguration(layout_, old, /*postmaster=*/0, written->recoveryConfChanged))
      << "recovery.conf is read at start only; nothing is signalled";
}

}  // namespace
}  // namespace pgrs::agent
