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

}  // namespace
}  // namespace pgrs::agent
