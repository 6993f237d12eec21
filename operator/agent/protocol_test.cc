// The backup messages of the agent's protocol: round trips, and the
// requests a controller must not send.
#include "operator/agent/protocol.h"

#include <gtest/gtest.h>

namespace pgrs::agent {
namespace {

TEST(BackupRequestCodecTest, RoundTrips) {
  BackupRequest request;
  request.id = "bk-nightly-1";
  request.type = "incr";
  auto decoded = DecodeBackupRequest(EncodeBackupRequest(request));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, request);
  // From a standby in another Pod.
  request.standby = "bk-2";
  request.standbyHost = "10.0.0.2";
  request.standbyServerPort = 8432;
  request.standbyPort = 5432;
  decoded = DecodeBackupRequest(EncodeBackupRequest(request));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, request);
  auto badPort = DecodeBackupRequest(R"({"id":"x","type":"full","standbyHost":"10.0.0.2","standbyPort":5432})");
  ASSERT_FALSE(badPort.ok());
  EXPECT_EQ(badPort.status().message(),
            "backup request: standbyServerPort and standbyPort: must be between 1 and 65535");
}

TEST(BackupRequestCodecTest, ABadBodyOrTypeOrMissingIdIsInvalidNamingTheField) {
  struct Row {
    std::string body;
    std::string says;
  };
  for (const Row& row : std::vector<Row>{
           {"{not json", "backup request: "},
           {"[]", "backup request: not a JSON object"},
           {R"({"type":"full"})", "backup request: id: required"},
           {R"({"id":"a","type":"weekly"})", "backup request: type: must be full, diff or incr (not \"weekly\")"},
           {R"({"id":"a"})", "backup request: type: must be full, diff or incr"},
       }) {
    auto decoded = DecodeBackupRequest(row.body);
    ASSERT_FALSE(decoded.ok()) << row.body;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalid) << row.body;
    EXPECT_NE(decoded.status().message().find(row.says), std::string::npos) << decoded.status().message();
  }
}

TEST(BackupJobCodecTest, RoundTripsRunningAndCompletedJobs) {
  BackupJob running;
  running.id = "b1";
  running.type = "full";
  running.state = kBackupRunning;
  running.progress = "backing up bk from primary bk-1 (full)";
  running.startedMs = 1764772800123;
  auto decoded = DecodeBackupJob(EncodeBackupJob(running));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, running);
  EXPECT_FALSE(decoded->backup.has_value());

  BackupJob completed = running;
  completed.state = kBackupCompleted;
  completed.progress.clear();
  completed.label = "20261203-114157F";
  completed.finishedMs = 1764772830456;
  completed.backup = BackupInfo{"20261203-114157F", "full", 1764772801, 1764772829, "0/2000028", "0/2000138",
                                23732000, 3100000};
  decoded = DecodeBackupJob(EncodeBackupJob(completed));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, completed);

  BackupJob failed = running;
  failed.state = kBackupFailed;
  failed.error = "instance bk-1: pgbackrest backup failed (exit code 56): \"quoted\"\nsecond line";
  decoded = DecodeBackupJob(EncodeBackupJob(failed));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, failed);
  EXPECT_EQ(DecodeBackupJob("nope").status().code(), StatusCode::kInvalid);
}

// Found by fuzz/agent_protocol_fuzzer: a number no integer type holds was
// cast to one (undefined behaviour), and a port above 2^32 wrapped into range.
TEST(ProtocolIntegersTest, ANumberThatIsNoIntegerOfTheFieldIsInvalidNamingTheField) {
  struct Row {
    std::string text;
    std::string says;
  };
  const std::string primary = R"({"role":"primary","port":)";
  for (const Row& row : std::vector<Row>{
           {primary + "4294972728}", "config: port: not a 32-bit integer: 4294972728"},
           {primary + "1e300}", "config: port: not a 32-bit integer"},
           {primary + "5432.5}", "config: port: not a 32-bit integer"},
           {primary + R"(5432,"backupS3":{"endpoint":"e","bucket":"b","port":-1e19}})", "config: port: not a 32-bit"},
       }) {
    auto decoded = DecodeAgentConfig(row.text);
    ASSERT_FALSE(decoded.ok()) << row.text;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalid) << row.text;
    EXPECT_NE(decoded.status().message().find(row.says), std::string::npos) << decoded.status().message();
  }
  auto status = DecodeAgentStatus(R"({"repository":{"checkedMs":1,"backups":[{"startTime":1e300}]}})");
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.status().message().find("agent status: startTime: not an integer"), std::string::npos)
      << status.status().message();
  auto job = DecodeBackupJob(R"({"id":"a","startedMs":18446744073709551615})");
  ASSERT_FALSE(job.ok());
  EXPECT_NE(job.status().message().find("backup job: startedMs: not an integer"), std::string::npos);

  // Whole numbers written as doubles still read.
  auto config = DecodeAgentConfig(primary + "5432.0}");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->port, 5432);
}

}  // namespace
}  // namespace pgrs::agent
