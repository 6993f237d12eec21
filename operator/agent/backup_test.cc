// Taking a backup: the lock retry and the label read after it, with a
// stand-in pgbackrest program (the layout names it); and the agent's backup
// jobs: one at a time, idempotent by id, cancelled when the agent stops.
#include "operator/agent/backup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <condition_variable>

#include "operator/agent/temp_dir_for_test.h"
#include "operator/util/files.h"
#include "operator/util/process.h"

namespace pgrs::agent {
namespace {

using namespace std::chrono_literals;

// A pgbackrest that fails `backup` with the lock error the first
// LOCKED_TIMES times (counting in DIR/backups), then succeeds, and answers
// `info` with two backups of stanza demo.
constexpr char kFakePgBackRest[] = R"sh(#!/bin/sh
dir=$(dirname "$0")
for a in "$@"; do
  case "$a" in
    backup)
      n=$(cat "$dir/backups" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$dir/backups"
      if [ "$n" -le "$(cat "$dir/no-stanza-times" 2>/dev/null || echo 0)" ]; then
        echo "ERROR: [055]: unable to load info file 'backup.info'"; echo 'HINT: has a stanza-create been performed?'; exit 55
      fi
      if [ "$n" -le "$(cat "$dir/locked-times")" ]; then
        echo 'ERROR: [050]: unable to acquire lock on file backup.lock'; exit 50
      fi
      exit 0;;
    info)
      echo '[{"name":"demo","status":{"code":0,"message":"ok"},"backup":[
        {"label":"20261203-100000F","type":"full","timestamp":{"start":1,"stop":2}},
        {"label":"20261203-100000F_20261203-110000I","type":"incr","timestamp":{"start":3,"stop":4},
         "lsn":{"start":"0/3000028","stop":"0/3000100"},"info":{"size":100,"repository":{"delta":10}}}]}]'
      exit 0;;
  esac
done
exit 1
)sh";

class RunPgBackRestBackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    layout_ = InstanceLayout{"demo-1", dir_.path(), "/usr/lib/postgresql", {::getuid(), ::getgid(), "", ""}};
    layout_.pgbackrest = dir_.path() + "/fake-pgbackrest";
    ASSERT_TRUE(WriteFileAtomic(layout_.pgbackrest, kFakePgBackRest, 0700).ok());
    ASSERT_TRUE(MakeDirs(layout_.PgBackRestDir(), 0700).ok());
  }
  void LockedTimes(int n) { ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/locked-times", std::to_string(n), 0600).ok()); }
  int BackupsRun() {
    auto text = ReadFile(dir_.path() + "/backups");
    return text.ok() ? std::atoi(text->c_str()) : 0;
  }
  BackupCommand Command(std::chrono::milliseconds lockWait) {
    BackupCommand command;
    command.host = "127.0.0.1";
    command.stanza = "demo";
    command.type = "incr";
    command.lockWait = lockWait;
    command.timeout = 60s;
    return command;
  }

  TempDirForTest dir_{"pgrs-backup"};
  InstanceLayout layout_;
};

TEST_F(RunPgBackRestBackupTest, RetriesTheLockErrorThenReturnsTheNewestBackup) {
  LockedTimes(2);
  std::vector<std::string> progress;
  auto backup = RunPgBackRestBackup(layout_, Command(30s), [&](const std::string& line) { progress.push_back(line); });
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_EQ(backup->label, "20261203-100000F_20261203-110000I");
  EXPECT_EQ(backup->type, "incr");
  EXPECT_EQ(backup->stopLsn, "0/3000100");
  EXPECT_EQ(BackupsRun(), 3);
  ASSERT_EQ(progress.size(), 3u);
  EXPECT_EQ(progress[0], "waiting for the stanza's backup lock (another pgBackRest command holds it)");
  EXPECT_EQ(progress[2], "reading the new backup's label (pgbackrest info)");
}

TEST_F(RunPgBackRestBackupTest, AStanzaNotCreatedYetIsWaitedForLikeTheLock) {
  LockedTimes(0);
  ASSERT_TRUE(WriteFileAtomic(dir_.path() + "/no-stanza-times", "1", 0600).ok());
  std::vector<std::string> progress;
  auto backup = RunPgBackRestBackup(layout_, Command(30s), [&](const std::string& line) { progress.push_back(line); });
  ASSERT_TRUE(backup.ok()) << backup.status().ToString();
  EXPECT_EQ(BackupsRun(), 2);
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress[0], "waiting for the stanza (the primary's agent creates it once PostgreSQL runs)");
}

TEST_F(RunPgBackRestBackupTest, ALockHeldLongerThanTheLockWaitIsTheFailure) {
  LockedTimes(1000);
  auto backup = RunPgBackRestBackup(layout_, Command(1500ms));
  ASSERT_FALSE(backup.ok());
  EXPECT_EQ(backup.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(backup.status().message().find("pgbackrest backup failed (exit code 50): ERROR: [050]"),
            std::string::npos)
      << backup.status().message();
  EXPECT_LE(BackupsRun(), 3);
}

TEST_F(RunPgBackRestBackupTest, CancelledWhileWaitingForTheLockItStopsWithinASecond) {
  LockedTimes(1000);
  std::atomic<bool> cancelled{false};
  BackupCommand command = Command(60s);
  command.cancelled = &cancelled;
  std::thread canceller([&] {
    std::this_thread::sleep_for(300ms);
    cancelled = true;
  });
  const auto start = std::chrono::steady_clock::now();
  auto backup = RunPgBackRestBackup(layout_, command);
  canceller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  ASSERT_FALSE(backup.ok());
  EXPECT_EQ(backup.status().message(), "pgbackrest backup: cancelled (stopping)");
}

// A run the test releases by hand.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

bool EventuallyState(const BackupJobs& jobs, const std::string& state) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto job = jobs.Current();
    if (job && job->state == state) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

class BackupJobsTest : public ::testing::Test {
 protected:
  // A plan whose run waits for the gate, then returns `result`.
  BackupJobs::Prepare Preparing(Result<BackupInfo> result) {
    return [this, result](const BackupRequest& request) -> Result<BackupJobs::Plan> {
      ++prepared_;
      BackupJobs::Plan plan;
      plan.progress = "backing up demo from primary demo-1 (" + request.type + ")";
      plan.run = [this, result](const std::function<void(const std::string&)>& progress,
                                const std::atomic<bool>&) -> Result<BackupInfo> {
        progress("copying");
        gate_.Wait();
        return result;
      };
      return plan;
    };
  }
  BackupInfo Info(const std::string& label) {
    BackupInfo b;
    b.label = label;
    b.type = "full";
    return b;
  }

  Gate gate_;
  int prepared_ = 0;
};

BackupRequest Req(const std::string& id, const std::string& type) {
  BackupRequest request;
  request.id = id;
  request.type = type;
  return request;
}

TEST_F(BackupJobsTest, OneJobAtATimeIdempotentByIdAndCompletedWithItsBackup) {
  BackupJobs jobs("demo-1");
  EXPECT_FALSE(jobs.Current().has_value());
  auto first = jobs.Start(Req("b1", "full"), Preparing(Info("L1")));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->state, kBackupRunning);
  EXPECT_EQ(first->progress, "backing up demo from primary demo-1 (full)");
  EXPECT_GT(first->startedMs, 0);
  // The same id again: the running job, nothing prepared or started.
  auto again = jobs.Start(Req("b1", "full"), Preparing(Info("other")));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->id, "b1");
  EXPECT_EQ(prepared_, 1);
  // Another id while it runs: Conflict.
  auto other = jobs.Start(Req("b2", "incr"), Preparing(Info("L2")));
  EXPECT_EQ(other.status().code(), StatusCode::kConflict);
  EXPECT_EQ(other.status().message(), "backup b1 is running on demo-1 (one at a time)");
  EXPECT_EQ(prepared_, 1);

  gate_.Open();
  ASSERT_TRUE(EventuallyState(jobs, kBackupCompleted));
  BackupJob done = *jobs.Current();
  EXPECT_EQ(done.label, "L1");
  ASSERT_TRUE(done.backup.has_value());
  EXPECT_EQ(done.backup->label, "L1");
  EXPECT_GE(done.finishedMs, done.startedMs);
  EXPECT_EQ(done.progress, "");
  // Asked again after it finished: the finished job, still nothing started.
  auto after = jobs.Start(Req("b1", "full"), Preparing(Info("other")));
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, done);
  EXPECT_EQ(prepared_, 1);
  // A new id starts a new job.
  auto next = jobs.Start(Req("b2", "incr"), Preparing(Info("L2")));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(prepared_, 2);
  ASSERT_TRUE(EventuallyState(jobs, kBackupCompleted));
  EXPECT_EQ(jobs.Current()->label, "L2");
  EXPECT_EQ(jobs.Current()->type, "incr");
}

TEST_F(BackupJobsTest, AnInstanceThatCannotBackUpStartsNothingAndAFailedRunKeepsItsError) {
  BackupJobs jobs("demo-2");
  auto refused = jobs.Start(Req("b1", "full"), [](const BackupRequest&) -> Result<BackupJobs::Plan> {
    return Status::Unavailable("instance demo-2 is not the primary (role standby)");
  });
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(jobs.Current().has_value());

  gate_.Open();
  ASSERT_TRUE(jobs.Start(Req("b1", "full"), Preparing(Status::Unavailable("pgbackrest backup failed (exit code 56)"))).ok());
  ASSERT_TRUE(EventuallyState(jobs, kBackupFailed));
  EXPECT_EQ(jobs.Current()->error, "pgbackrest backup failed (exit code 56)");
  EXPECT_EQ(jobs.Current()->label, "");
  EXPECT_FALSE(jobs.Current()->backup.has_value());
}

TEST_F(BackupJobsTest, StoppingKillsTheRunningCommandAtOnceAndRefusesNewJobs) {
  BackupJobs jobs("demo-1");
  auto started = jobs.Start(Req("b1", "full"), [](const BackupRequest&) -> Result<BackupJobs::Plan> {
    BackupJobs::Plan plan;
    plan.run = [](const std::function<void(const std::string&)>&,
                  const std::atomic<bool>& cancelled) -> Result<BackupInfo> {
      ProcessSpec sleep;
      sleep.argv = {"/bin/sleep", "60"};
      auto result = RunCommand(sleep, 120s, {}, &cancelled);
      if (!result.ok()) return result.status();
      return Status::Internal("sleep ended by itself");
    };
    return plan;
  });
  ASSERT_TRUE(started.ok());
  const auto before = std::chrono::steady_clock::now();
  jobs.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);
  ASSERT_EQ(jobs.Current()->state, kBackupFailed);
  EXPECT_EQ(jobs.Current()->error, "/bin/sleep: cancelled");
  auto refused = jobs.Start(Req("b2", "full"), Preparing(Info("L2")));
  EXPECT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(prepared_, 0);
}

}  // namespace
}  // namespace pgrs::agent
