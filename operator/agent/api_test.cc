// The agent's HTTP handlers over a stand-in for the agent: answers and
// codes, and which calls count as the controller's contact.
#include "operator/agent/api.h"

#include <gtest/gtest.h>

namespace pgrs::agent {
namespace {

class AgentApiTest : public ::testing::Test {
 protected:
  AgentApi Api() {
    return AgentApi(AgentApiCalls{
        .status = [this] { return status_; },
        .setConfig = [this](const AgentConfig& c) { received_ = c; return setConfigResult_; },
        .ready = [this] { return ready_; },
        .controllerContact = [this] { ++contacts_; },
        .startBackup =
            [this](const BackupRequest& r) -> Result<BackupJob> {
              requests_.push_back(r);
              return startBackupResult_;
            },
        .backupJob = [this] { return backupJob_; },
    });
  }
  static AgentConfig Primary() {
    AgentConfig c;
    c.role = "primary";
    c.port = 5433;
    return c;
  }
  AgentStatus status_;
  AgentConfig received_;
  Status setConfigResult_ = Status::Ok();
  bool ready_ = false;
  int contacts_ = 0;
  std::vector<BackupRequest> requests_;
  Result<BackupJob> startBackupResult_ = Status::Internal("not set");
  std::optional<BackupJob> backupJob_;
};

TEST_F(AgentApiTest, AnAcceptedConfigIsAnsweredWithItsHash) {
  AgentConfig config = Primary();
  HttpResponse r = Api().PutConfig(HttpRequest{"PUT", "/config", "", EncodeAgentConfig(config)});
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(r.body, "{\"configHash\":\"" + ConfigHash(config) + "\"}");
  EXPECT_EQ(received_.port, 5433);
  EXPECT_EQ(contacts_, 1);
}

TEST_F(AgentApiTest, ABadOrRefusedConfigIsAnErrorButStillTheControllersContact) {
  HttpResponse bad = Api().PutConfig(HttpRequest{"PUT", "/config", "", "{not json"});
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("\"error\""), std::string::npos);
  setConfigResult_ = Status::Conflict("major version change 15 -> 16 needs an upgrade, which pgrs does not do");
  HttpResponse refused = Api().PutConfig(HttpRequest{"PUT", "/config", "", EncodeAgentConfig(Primary())});
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(refused.body,
            "{\"error\":\"major version change 15 -> 16 needs an upgrade, which pgrs does not do\"}");
  EXPECT_EQ(contacts_, 2);
}

TEST_F(AgentApiTest, StatusIsTheAgentsAndCountsAsContactWhileTheProbesDoNot) {
  status_.name = "t-1";
  status_.state = kStateRunning;
  HttpResponse r = Api().GetStatus();
  EXPECT_EQ(r.status, 200);
  auto decoded = DecodeAgentStatus(r.body);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->name, "t-1");
  EXPECT_EQ(decoded->state, kStateRunning);
  EXPECT_EQ(contacts_, 1);

  EXPECT_EQ(Api().Healthz().status, 200);
  EXPECT_EQ(Api().Readyz().status, 503);
  ready_ = true;
  EXPECT_EQ(Api().Readyz().status, 200);
  EXPECT_EQ(Api().Readyz().body, R"({"ready":true})");
  EXPECT_EQ(contacts_, 1) << "kubelet probes are not the controller";
}

BackupJob RunningJob(const std::string& id, const std::string& type) {
  BackupJob job;
  job.id = id;
  job.type = type;
  job.state = kBackupRunning;
  job.progress = "backing up t from primary t-1 (" + type + ")";
  job.startedMs = 1764772800000;
  return job;
}

HttpRequest PostBackupRequest(const std::string& body) { return HttpRequest{"POST", "/backup", "", body}; }

TEST_F(AgentApiTest, ABackupRequestIsAcceptedWith202AndTheJob) {
  startBackupResult_ = RunningJob("b1", "full");
  HttpResponse r = Api().PostBackup(PostBackupRequest(R"({"id":"b1","type":"full"})"));
  EXPECT_EQ(r.status, 202);
  auto job = DecodeBackupJob(r.body);
  ASSERT_TRUE(job.ok()) << r.body;
  EXPECT_EQ(*job, RunningJob("b1", "full"));
  ASSERT_EQ(requests_.size(), 1u);
  EXPECT_EQ(requests_[0].id, "b1");
  EXPECT_EQ(requests_[0].type, "full");
  EXPECT_EQ(contacts_, 0) << "only PUT /config and GET /status are the controller's contact";
}

TEST_F(AgentApiTest, TheSameIdAgainIsAnsweredWithTheJobTheAgentHas) {
  // The agent (BackupJobs) answers an id it knows with its job, started or
  // finished: the API passes that on as 202, whatever the job's state.
  BackupJob completed = RunningJob("b1", "full");
  completed.state = kBackupCompleted;
  completed.label = "20261203-114157F";
  completed.backup = BackupInfo{"20261203-114157F", "full", 1, 2, "0/2000028", "0/2000100", 10, 5};
  startBackupResult_ = completed;
  HttpResponse r = Api().PostBackup(PostBackupRequest(R"({"id":"b1","type":"full"})"));
  EXPECT_EQ(r.status, 202);
  EXPECT_EQ(*DecodeBackupJob(r.body), completed);
}

TEST_F(AgentApiTest, ABackupRefusedIs409WhileAnotherRuns503WhenItCannotAnd400ForABadRequest) {
  struct Row {
    std::string body;
    Status refusal;  // what the agent answers (unused when the body is bad)
    int code;
    std::string says;
    size_t asked;  // requests the agent saw so far
  };
  std::vector<Row> rows = {
      {R"({"id":"b2","type":"full"})", Status::Conflict("backup b1 is running on t-1 (one at a time)"), 409,
       "backup b1 is running on t-1 (one at a time)", 1},
      {R"({"id":"b2","type":"full"})", Status::Unavailable("instance t-2 is not the primary (role standby)"), 503,
       "instance t-2 is not the primary (role standby)", 2},
      {R"({"id":"b2","type":"full"})", Status::Unavailable("instance t-1: its set has no spec.backup"), 503,
       "instance t-1: its set has no spec.backup", 3},
      {R"({"id":"b2","type":"weekly"})", Status::Ok(), 400, "type: must be full, diff or incr", 3},
      {R"({"type":"full"})", Status::Ok(), 400, "id: required", 3},
      {"{not json", Status::Ok(), 400, "backup request: ", 3},
  };
  for (const Row& row : rows) {
    // Assigned from a Status alone: GCC 12 sees a Result<BackupJob> built
    // in a conditional expression as maybe-uninitialized (-Werror).
    startBackupResult_ = row.refusal.ok() ? Status::Internal("must not be asked") : row.refusal;
    HttpResponse r = Api().PostBackup(PostBackupRequest(row.body));
    EXPECT_EQ(r.status, row.code) << row.body << " " << r.body;
    EXPECT_NE(r.body.find("\"error\":\""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(row.says), std::string::npos) << r.body;
    EXPECT_EQ(requests_.size(), row.asked) << row.body;
  }
}

TEST_F(AgentApiTest, GetBackupIs404BeforeTheFirstAnd200WithTheJobAfter) {
  HttpResponse none = Api().GetBackup();
  EXPECT_EQ(none.status, 404);
  EXPECT_NE(none.body.find("no backup was asked of this agent since it started"), std::string::npos) << none.body;
  BackupJob failed = RunningJob("b1", "incr");
  failed.state = kBackupFailed;
  failed.error = "instance t-1: pgbackrest backup failed (exit code 56): ERROR: [056]: unable to find primary";
  failed.finishedMs = 1764772900000;
  backupJob_ = failed;
  HttpResponse r = Api().GetBackup();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(*DecodeBackupJob(r.body), failed);
  EXPECT_EQ(contacts_, 0);
}

}  // namespace
}  // namespace pgrs::agent
