#include "operator/agent/backup.h"

#include "operator/agent/archiving.h"
#include "operator/util/log.h"
#include "operator/util/process.h"

namespace pgrs::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

int64_t SystemNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool Cancelled(const std::atomic<bool>* cancelled) { return cancelled != nullptr && cancelled->load(); }

// Sleeps `pause`, or less when cancelled.
void Pause(std::chrono::milliseconds pause, const std::atomic<bool>* cancelled) {
  const auto until = Clock::now() + pause;
  while (Clock::now() < until && !Cancelled(cancelled)) std::this_thread::sleep_for(100ms);
}

}  // namespace

Result<BackupInfo> RunPgBackRestBackup(const InstanceLayout& layout, const BackupCommand& command,
                                       const std::function<void(const std::string&)>& progress) {
  std::vector<std::string> args = {"backup", "--type=" + command.type};
  args.insert(args.end(), command.extraArgs.begin(), command.extraArgs.end());
  const auto start = Clock::now();
  const auto deadline = start + command.timeout;
  const auto lockDeadline = std::min(deadline, start + command.lockWait);
  Result<CommandResult> backup = Status::Unavailable("not run");
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    backup = RunCommand(PgBackRestProgram(layout, command.host, command.stanza, args),
                        std::max<std::chrono::milliseconds>(left, 1ms), {}, command.cancelled);
    if (!backup.ok() || backup->exitCode != kPgBackRestLockError || Clock::now() + 1s >= lockDeadline ||
        Cancelled(command.cancelled)) {
      break;
    }
    if (progress) progress("waiting for the stanza's backup lock (another pgBackRest command holds it)");
    Pause(1s, command.cancelled);
  }
  if (Cancelled(command.cancelled)) return Status::Unavailable("pgbackrest backup: cancelled (stopping)");
  if (!backup.ok()) return Status::Unavailable("pgbackrest backup: " + backup.status().message());
  if (!backup->ok()) {
    return Status::Unavailable("pgbackrest backup failed (exit code " + std::to_string(backup->exitCode) +
                               "): " + backup->output);
  }
  if (progress) progress("reading the new backup's label (pgbackrest info)");
  auto info = RunCommand(PgBackRestInfoProgram(layout, command.host, command.stanza), 60s, {}, command.cancelled);
  Result<BackupInfo> newest = info.ok() ? NewestBackup(info->output, command.stanza) : info.status();
  if (!newest.ok()) {
    return Status::Unavailable("the backup finished but its label is unknown: " + newest.status().message());
  }
  return newest;
}

Result<BackupJob> BackupJobs::Start(const BackupRequest& request, const Prepare& prepare) {
  std::lock_guard<std::mutex> lock(mu_);
  if (job_ && job_->id == request.id) return *job_;
  if (job_ && job_->state == kBackupRunning) {
    return Status::Conflict("backup " + job_->id + " is running on " + instance_ + " (one at a time)");
  }
  if (stopping_) return Status::Unavailable("the agent of " + instance_ + " is stopping");
  auto plan = prepare(request);
  if (!plan.ok()) return plan.status();
  // The last job's thread has finished (its job is no longer Running).
  if (thread_.joinable()) thread_.join();
  BackupJob job;
  job.id = request.id;
  job.type = request.type;
  job.state = kBackupRunning;
  job.progress = plan->progress;
  job.startedMs = SystemNowMs();
  job_ = job;
  spdlog::info("backup started instance={} id={} type={}", instance_, job.id, job.type);
  thread_ = std::thread([this, id = job.id, run = std::move(plan->run)] {
    auto result = run(
        [this, &id](const std::string& line) {
          std::lock_guard<std::mutex> lock(mu_);
          if (job_ && job_->id == id) job_->progress = line;
        },
        cancelled_);
    Finish(id, result);
  });
  return job;
}

void BackupJobs::Finish(const std::string& id, const Result<BackupInfo>& result) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!job_ || job_->id != id) return;
  BackupJob& job = *job_;
  job.finishedMs = SystemNowMs();
  job.progress.clear();
  if (result.ok()) {
    job.state = kBackupCompleted;
    job.label = result->label;
    job.backup = *result;
    spdlog::info("backup completed instance={} id={} type={} label={} durationMs={}", instance_, id, job.type,
                 job.label, job.finishedMs - job.startedMs);
  } else {
    job.state = kBackupFailed;
    job.error = result.status().message();
    spdlog::warn("backup failed instance={} id={} type={} durationMs={} error=\"{}\"", instance_, id, job.type,
                 job.finishedMs - job.startedMs, job.error);
  }
}

std::optional<BackupJob> BackupJobs::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return job_;
}

void BackupJobs::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  stopping_ = true;
  cancelled_ = true;
}

void BackupJobs::Stop() {
  Cancel();
  // No Start assigns thread_ once stopping_ is set.
  if (thread_.joinable()) thread_.join();
}

}  // namespace pgrs::agent
