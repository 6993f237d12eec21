// Bootstrapping without PostgreSQL: pg_basebackup's progress lines, initdb's
// arguments per major version, and what EnsureDataDirectory refuses.
#include "operator/agent/bootstrap.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "operator/agent/temp_dir_for_test.h"
#include "operator/util/files.h"

namespace pgrs::agent {
namespace {

TEST(ParseBasebackupProgress, ProgressLinesGiveCopiedTotalAndPercent) {
  auto p = ParseBasebackupProgress("  12345/23732 kB (52%), 0/1 tablespace");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->copiedKB, "12345");
  EXPECT_EQ(p->totalKB, "23732");
  EXPECT_EQ(p->percent, "52");
  p = ParseBasebackupProgress("23741/23741 kB (100%), 1/1 tablespace (/var/lib/pgrs/demo-2/data.clone/base/1/1259)");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->percent, "100");
  EXPECT_FALSE(ParseBasebackupProgress("pg_basebackup: initiating base backup, waiting for checkpoint to complete"));
  EXPECT_FALSE(ParseBasebackupProgress("pg_basebackup: error: could not connect to server"));
}

TEST(InitdbArguments, BeforePostgres14LocalConnectionsAlsoNeedScram) {
  auto args15 = InitdbArguments(15, "/d.initdb", "/pw", false);
  EXPECT_EQ(args15, (std::vector<std::string>{"-D", "/d.initdb", "-U", "postgres", "--pwfile=/pw",
                                              "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"}));
  auto args13 = InitdbArguments(13, "/d.initdb", "/pw", false);
  ASSERT_EQ(args13.size(), args15.size() + 1);
  EXPECT_EQ(args13.back(), "--auth-local=scram-sha-256");
}

// spec.postgres.dataChecksums (default true) on every major; off, initdb
// gets no checksum flag at all.
TEST(InitdbArguments, DataChecksumsOnlyWhenAskedFor) {
  for (int major = 11; major <= 17; ++major) {
    auto on = InitdbArguments(major, "/d.initdb", "/pw", true);
    auto off = InitdbArguments(major, "/d.initdb", "/pw", false);
    EXPECT_EQ(std::count(on.begin(), on.end(), "--data-checksums"), 1) << major;
    EXPECT_EQ(std::count(off.begin(), off.end(), "--data-checksums"), 0) << major;
    EXPECT_EQ(on.size(), off.size() + 1) << major;
  }
}

class EnsureDataDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    layout_ = InstanceLayout{"t-1", dir_.path(), dir_.path() + "/no-postgresql", {}};
  }
  TempDirForTest dir_{"pgrs-bootstrap"};
  InstanceLayout layout_;
  std::vector<std::string> states_;
  BootstrapProgress progress_ = [this](const std::string& state, const std::string&) { states_.push_back(state); };
};

TEST_F(EnsureDataDirectoryTest, AnExistingDirectoryOfAnotherMajorVersionIsRefusedAndLeftAlone) {
  ASSERT_TRUE(MakeDirs(layout_.DataDir(), 0700).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(layout_.DataDir(), "PG_VERSION"), "14\n").ok());
  AgentConfig config;
  config.majorVersion = 15;
  Status st = EnsureDataDirectory(layout_, config, progress_);
  EXPECT_EQ(st.code(), StatusCode::kInvalid);
  EXPECT_EQ(st.message(), "data directory holds PostgreSQL 14 but spec.postgres.version is 15");
  EXPECT_TRUE(PathExists(JoinPath(layout_.DataDir(), "PG_VERSION")));
  config.majorVersion = 14;
  EXPECT_TRUE(EnsureDataDirectory(layout_, config, progress_).ok());
  EXPECT_TRUE(states_.empty()) << "nothing to bootstrap";
}

TEST_F(EnsureDataDirectoryTest, WithoutTheMajorVersionInstalledNothingIsBootstrapped) {
  AgentConfig config;
  config.role = "primary";
  config.majorVersion = 15;
  Status st = EnsureDataDirectory(layout_, config, progress_);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("PostgreSQL 15 is not installed"), std::string::npos) << st.message();
  EXPECT_TRUE(states_.empty());
  EXPECT_FALSE(PathExists(layout_.DataDir()));
}

}  // namespace
}  // namespace pgrs::agent
