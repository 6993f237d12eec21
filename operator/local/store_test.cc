// The state directory's run lock and control-plane record, as `get` and
// `wait` read them, with a real process holding the lock and dying.
#include "operator/local/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "operator/agent/temp_dir_for_test.h"
#include "operator/util/files.h"

namespace pgrs::local {
namespace {

using namespace std::chrono_literals;

// A child that takes the run lock, says so through a pipe, and sleeps
// until it is killed.
pid_t HoldLockInChild(const std::string& dir) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    auto lock = RunLock::Acquire(dir);
    char ok = lock.ok() ? '1' : '0';
    (void)!::write(fds[1], &ok, 1);
    while (true) ::pause();
  }
  ::close(fds[1]);
  char ok = '0';
  (void)!::read(fds[0], &ok, 1);
  ::close(fds[0]);
  return ok == '1' ? pid : -1;
}

TEST(RunLockTest, HeldByALiveProcessAndFreedWhenItIsKilled) {
  agent::TempDirForTest dir("pgrs-run-lock");
  ASSERT_FALSE(dir.path().empty());
  EXPECT_EQ(RunLock::Holder(dir.path()), 0);
  pid_t child = HoldLockInChild(dir.path());
  ASSERT_GT(child, 0);
  EXPECT_EQ(RunLock::Holder(dir.path()), child);
  // Asking does not take it: the holder keeps it, a second run is refused.
  EXPECT_TRUE(RunLock::IsHeld(dir.path()));
  auto second = RunLock::Acquire(dir.path());
  EXPECT_EQ(second.status().code(), StatusCode::kConflict);
  ::kill(child, SIGKILL);
  int status;
  ::waitpid(child, &status, 0);
  EXPECT_EQ(RunLock::Holder(dir.path()), 0);
  EXPECT_TRUE(RunLock::Acquire(dir.path()).ok());
}

TEST(ControlPlaneRecordTest, CrashedRunIsReportedWithTheTimeOfItsLastPass) {
  agent::TempDirForTest dir("pgrs-control-plane");
  ASSERT_FALSE(dir.path().empty());
  LocalStore store(dir.path());
  EXPECT_EQ(store.AssessControlPlane().kind, reconcilers::ControlPlaneKind::kNeverRan);
  pid_t child = HoldLockInChild(dir.path());
  ASSERT_GT(child, 0);
  const std::string now = api::FormatTime(std::chrono::system_clock::now());
  ASSERT_TRUE(store.WriteControlPlane({child, now, "", ""}).ok());
  EXPECT_EQ(store.AssessControlPlane().kind, reconcilers::ControlPlaneKind::kStarting);
  ASSERT_TRUE(store.WriteControlPlane({child, now, now, ""}).ok());
  EXPECT_EQ(store.AssessControlPlane().kind, reconcilers::ControlPlaneKind::kRunning);
  ::kill(child, SIGKILL);
  int status;
  ::waitpid(child, &status, 0);
  auto state = store.AssessControlPlane();
  EXPECT_EQ(state.kind, reconcilers::ControlPlaneKind::kCrashed);
  EXPECT_EQ(state.since, now);
  EXPECT_NE(state.message.find("pid " + std::to_string(child) + " ended without a clean stop"), std::string::npos)
      << state.message;
}

TEST(LocalStoreApplyTest, OverlappingPortsAreRefusedAndNothingIsStored) {
  agent::TempDirForTest dir("pgrs-store-ports");
  ASSERT_FALSE(dir.path().empty());
  LocalStore store(dir.path());
  api::PostgresReplicaSet a;
  a.metadata.name = "a";
  a.spec.instances = 3;
  a.spec.local.basePort = 20000;
  std::string outcome;
  ASSERT_TRUE(store.Apply(a, &outcome).ok());
  api::PostgresReplicaSet b = a;
  b.metadata.name = "b";
  b.spec.local.basePort = 20002;
  auto refused = store.Apply(b, &outcome);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalid);
  EXPECT_NE(refused.status().message().find("postgresreplicaset b: spec.local.basePort: ports 20002-20004 overlap"),
            std::string::npos)
      << refused.status().message();
  EXPECT_EQ(store.ListNames(), std::vector<std::string>{"a"});
  EXPECT_FALSE(PathExists(store.SetDir("b")));
  b.spec.local.basePort = 20003;
  EXPECT_TRUE(store.Apply(b, &outcome).ok());
}

}  // namespace
}  // namespace pgrs::local
