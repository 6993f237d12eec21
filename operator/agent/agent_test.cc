// The instance agent in-process with a real PostgreSQL (run as root: the
// agent runs PostgreSQL as the OS user postgres): readiness, the
// --postgres-listen override, and a crashed primary whose controller is
// silent.
#include "operator/agent/agent.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "operator/lease/lease.h"
#include "operator/util/files.h"
#include "operator/util/random.h"

namespace pgrs::agent {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return condition();
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PathExists("/usr/lib/postgresql/15/bin/postgres")) GTEST_SKIP() << "PostgreSQL 15 is not installed";
    dir_ = "/tmp/pgrs-agent-test-" + RandomHex(6);
    ASSERT_TRUE(MakeDirs(dir_, 0755).ok());
    int base = 21000 + static_cast<int>(std::stoul(RandomHex(1), nullptr, 16)) * 8;  // 21000..23040
    apiPort_ = base;
    pgPort_ = base + 1;
    lease_ = "file:" + dir_ + "/lease.json";
  }
  void TearDown() override {
    agent_.reset();
    if (!dir_.empty()) RemoveTree(dir_).ok();
  }
  void StartAgent(std::chrono::milliseconds controllerSilence, std::chrono::milliseconds shutdownHandover = {}) {
    AgentOptions options;
    options.shutdownHandover = shutdownHandover;
    options.name = "t-1";
    options.instanceDir = dir_ + "/t-1";
    options.listenAddress = "127.0.0.1:" + std::to_string(apiPort_);
    options.token = "token";
    options.postgresListen = "127.0.0.1";
    options.controllerSilence = controllerSilence;
    agent_ = std::make_unique<InstanceAgent>(options);
    ASSERT_TRUE(agent_->Start().ok());
  }
  AgentConfig PrimaryConfig() {
    AgentConfig c;
    c.role = "primary";
    c.port = pgPort_;
    // Not an address of this machine: PostgreSQL starts only because
    // --postgres-listen overrides it.
    c.listenAddresses = "192.0.2.1";
    c.superuserPassword = "secret";
    c.replicationPassword = "secret2";
    c.restartOnCrash = false;
    c.lease = lease_;
    return c;
  }
  // What the controller's observer does: GET /status over HTTP.
  bool PollStatus() {
    auto r = HttpCall("GET", "http://127.0.0.1:" + std::to_string(apiPort_) + "/status", "", "token", 2s);
    return r.ok() && r->status == 200;
  }
  // A controller that observes the agent (GET /status every 100 ms) for as
  // long as it lives; stopped and joined also when an assertion ends the test.
  class ControllerPolling {
   public:
    explicit ControllerPolling(AgentTest* test)
        : thread_([this, test] {
            while (!stop_) {
              test->PollStatus();
              std::this_thread::sleep_for(100ms);
            }
          }) {}
    ~ControllerPolling() {
      stop_ = true;
      thread_.join();
    }

   private:
    std::atomic<bool> stop_{false};
    std::thread thread_;
  };
  void StartRunningPrimary(std::chrono::milliseconds shutdownHandover, bool handover) {
    ASSERT_TRUE(lease::OpenLease(lease_).value()->Acquire("t-1", "", 5, false).ok());
    StartAgent(60s, shutdownHandover);
    AgentConfig config = PrimaryConfig();
    config.handoverOnShutdown = handover;
    ASSERT_TRUE(agent_->SetConfig(config).ok());
    ASSERT_TRUE(WaitFor([&] { return agent_->CurrentStatus().state == kStateRunning; }, 60s))
        << agent_->CurrentStatus().lastError;
  }
  int Readyz() {
    auto r = HttpCall("GET", "http://127.0.0.1:" + std::to_string(apiPort_) + "/readyz", "", "", 2s);
    return r.ok() ? r->status : -1;
  }

  std::string dir_;
  int apiPort_ = 0;
  int pgPort_ = 0;
  std::string lease_;
  std::unique_ptr<InstanceAgent> agent_;
};

TEST_F(AgentTest, ACrashedPrimaryRestartsInPlaceWhenTheControllerIsSilentAndTheLeaseIsStillItsOwn) {
  ASSERT_TRUE(lease::OpenLease(lease_).value()->Acquire("t-1", "", 5, false).ok());
  StartAgent(3s);
  EXPECT_EQ(Readyz(), 503) << "no PostgreSQL yet";
  ASSERT_TRUE(agent_->SetConfig(PrimaryConfig()).ok());
  ASSERT_TRUE(WaitFor([&] { return agent_->CurrentStatus().state == kStateRunning; }, 60s))
      << agent_->CurrentStatus().lastError;
  ASSERT_TRUE(WaitFor([&] { return Readyz() == 200; }, 5s));

  pid_t pid = static_cast<pid_t>(agent_->CurrentStatus().postmasterPid);
  ASSERT_GT(pid, 0);
  auto crashed = Clock::now();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return agent_->CurrentStatus().state == kStatePrimaryDown; }, 5s));
  EXPECT_TRUE(WaitFor([&] { return Readyz() == 503; }, 2s));
  // The controller looks once, then goes away.
  auto polled = HttpCall("GET", "http://127.0.0.1:" + std::to_string(apiPort_) + "/status", "", "token", 2s);
  ASSERT_TRUE(polled.ok() && polled->status == 200);
  auto lastContact = Clock::now();
  EXPECT_EQ(agent_->CurrentStatus().state, kStatePrimaryDown);
  // Nobody calls PUT /config or GET /status (the in-process calls here do
  // not count): after the silence, it restarts while holding the lease.
  ASSERT_TRUE(WaitFor([&] { return agent_->CurrentStatus().state == kStateRunning; }, 30s))
      << agent_->CurrentStatus().state << " " << agent_->CurrentStatus().lastError;
  EXPECT_GE(Clock::now() - lastContact, 3s) << "it waited for the controller first";
  EXPECT_LT(Clock::now() - crashed, 20s);
  EXPECT_GE(agent_->CurrentStatus().restarts, 1);
  EXPECT_TRUE(WaitFor([&] { return Readyz() == 200; }, 5s));
  EXPECT_EQ(lease::OpenLease(lease_).value()->Get()->holder, "t-1");
}

TEST_F(AgentTest, ACrashedPrimaryWhoseLeaseWasHandedOverStaysDown) {
  ASSERT_TRUE(lease::OpenLease(lease_).value()->Acquire("t-1", "", 5, false).ok());
  StartAgent(2s);
  ASSERT_TRUE(agent_->SetConfig(PrimaryConfig()).ok());
  ASSERT_TRUE(WaitFor([&] { return agent_->CurrentStatus().state == kStateRunning; }, 60s))
      << agent_->CurrentStatus().lastError;
  ASSERT_EQ(::kill(static_cast<pid_t>(agent_->CurrentStatus().postmasterPid), SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return agent_->CurrentStatus().state == kStatePrimaryDown; }, 5s));
  // The controller promoted another instance, then went away.
  ASSERT_TRUE(lease::OpenLease(lease_).value()->Acquire("t-2", "t-1", 5, /*holderFenced=*/true).ok());
  std::this_thread::sleep_for(4s);  // twice the silence: a window in which it must not start
  auto status = agent_->CurrentStatus();
  EXPECT_FALSE(status.postgresRunning) << status.state;
  EXPECT_NE(status.state, kStateRunning);
  EXPECT_EQ(Readyz(), 503);
}

TEST_F(AgentTest, AShutdownPrimaryKeepsRunningUntilTheControllerHasHandedItOver) {
  StartRunningPrimary(20s, /*handover=*/true);
  ControllerPolling controller(this);
  agent_->RequestShutdown();
  EXPECT_TRUE(WaitFor([&] { return agent_->CurrentStatus().shuttingDown; }, 2s));
  // A standby could take over: PostgreSQL keeps serving, the lease renewed.
  int64_t renewedBefore = agent_->CurrentStatus().lastRenewMs;
  EXPECT_FALSE(WaitFor([&] { return !agent_->CurrentStatus().postgresRunning || agent_->Stopped(); }, 2500ms));
  EXPECT_GT(agent_->CurrentStatus().lastRenewMs, renewedBefore);
  EXPECT_EQ(Readyz(), 200);

  // The controller's hand-over: a fast shutdown first...
  AgentConfig fenced = PrimaryConfig();
  fenced.handoverOnShutdown = true;
  fenced.fenced = true;
  fenced.fenceMode = "fast";
  ASSERT_TRUE(agent_->SetConfig(fenced).ok());
  ASSERT_TRUE(WaitFor([&] { return !agent_->CurrentStatus().postgresRunning; }, 30s));
  auto status = agent_->CurrentStatus();
  EXPECT_TRUE(status.fenced);
  EXPECT_GT(status.checkpointLsn, 0u) << "the shutdown checkpoint the new primary must receive";
  // ...and the agent stays (answering with that checkpoint) until the lease
  // has gone to the new primary.
  EXPECT_FALSE(WaitFor([&] { return agent_->Stopped(); }, 1s));
  ASSERT_TRUE(lease::OpenLease(lease_).value()->Acquire("t-2", "t-1", 5, /*holderFenced=*/true).ok());
  EXPECT_TRUE(WaitFor([&] { return agent_->Stopped(); }, 5s));
}

// The controller saw the Pod terminating first and fenced the primary (fast)
// before SIGTERM reached the agent: it still stays until the lease moved, so
// that the controller reads the shutdown checkpoint instead of waiting out
// the lease (seen in pod_delete_bench: 5 s write gaps instead of 0.5 s).
TEST_F(AgentTest, ASignalAfterThePlannedFenceStillWaitsForTheLeaseToMove) {
  StartRunningPrimary(20s, /*handover=*/true);
  ControllerPolling controller(this);
  AgentConfig fenced = PrimaryConfig();
  fenced.fenced = true;
  fenced.fenceMode = "fast";
  fenced.handoverOnShutdown = false;  // no standby streams once the primary is stopped
  ASSERT_TRUE(agent_->SetConfig(fenced).ok());
  ASSERT_TRUE(WaitFor([&] { return agent_->CurrentStatus().fenced && !agent_->CurrentStatus().postgresRunning; }, 30s));
  agent_->RequestShutdown();
  EXPECT_FALSE(WaitFor([&] { return agent_->Stopped(); }, 1500ms)) << "left before the lease moved";
  EXPECT_GT(agent_->CurrentStatus().checkpointLsn, 0u);
  ASSERT_TRUE(lease::OpenLease(lease_).value()->Acquire("t-2", "t-1", 5, /*holderFenced=*/true).ok());
  EXPECT_TRUE(WaitFor([&] { return agent_->Stopped(); }, 5s));
}

TEST_F(AgentTest, AShutdownPrimaryStopsAtOnceWithoutAHandOverAndSoonWithoutAController) {
  StartRunningPrimary(20s, /*handover=*/false);
  auto asked = Clock::now();
  agent_->RequestShutdown();
  ASSERT_TRUE(WaitFor([&] { return agent_->Stopped(); }, 15s));
  EXPECT_LT(Clock::now() - asked, 10s) << "no hand-over to wait for";
  agent_.reset();

  // A hand-over would follow, but nobody asks for its status: it does not
  // wait out its whole budget for a controller that is gone.
  RemoveTree(dir_ + "/t-1").ok();
  StartRunningPrimary(20s, /*handover=*/true);
  asked = Clock::now();
  agent_->RequestShutdown();
  ASSERT_TRUE(WaitFor([&] { return agent_->Stopped(); }, 20s));
  EXPECT_LT(Clock::now() - asked, 12s);
  EXPECT_FALSE(agent_->CurrentStatus().postgresRunning);
}

TEST_F(AgentTest, ADataDirectoryMadeGroupWritableByAnFsGroupIsCorrectedBeforeStart) {
  StartRunningPrimary(0ms, false);
  agent_.reset();
  // What a kubelet applying fsGroup at every mount leaves behind.
  const std::string data = dir_ + "/t-1/data";
  ASSERT_EQ(::chmod(data.c_str(), 02770), 0);
  StartAgent(60s);
  ASSERT_TRUE(agent_->SetConfig(PrimaryConfig()).ok());
  ASSERT_TRUE(WaitFor([&] { return agent_->CurrentStatus().state == kStateRunning; }, 60s))
      << agent_->CurrentStatus().lastError;
  struct stat st;
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

}  // namespace
}  // namespace pgrs::agent
