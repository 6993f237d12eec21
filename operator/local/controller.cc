#include "operator/local/controller.h"

#include "operator/control/pass.h"
#include "operator/local/backup.h"
#include "operator/util/log.h"
#include "reconcilers/backup_schedule.h"

namespace pgrs::local {

using namespace std::chrono_literals;

namespace {
// A scheduled backup that has not finished after this long is stopped and
// reported as failed.
constexpr std::chrono::milliseconds kScheduledBackupTimeout = 12h;
}  // namespace

std::chrono::milliseconds LocalController::ReconcileAll() {
  std::chrono::milliseconds next = 1000ms;
  for (const auto& name : store_.ListNames()) next = std::min(next, ReconcileOne(name));
  return next;
}

void LocalController::MarkAllStopped() {
  std::string now = api::FormatTime(std::chrono::system_clock::now());
  for (const auto& name : store_.ListNames()) {
    auto set = store_.Get(name);
    if (!set.ok()) continue;
    api::ReplicaSetStatus status = set->status;
    status.phase = "Stopped";
    status.readyInstances = 0;
    for (auto& instance : status.instances) {
      instance.state = "Stopped";
      instance.lagBytes.reset();
      instance.lagSeconds.reset();
      instance.message.clear();
    }
    for (auto& c : status.conditions) {
      std::string wanted = c.type == "Ready" ? "False" : "Unknown";
      if (c.status != wanted) c.lastTransitionTime = now;
      c.status = wanted;
      c.reason = "ControlPlaneStopped";
      c.message = "pgrs local run is not running; its instances were stopped with it";
    }
    Status st = store_.WriteStatus(name, status);
    if (!st.ok()) spdlog::warn("cannot write status set={} error=\"{}\"", name, st.message());
  }
}

void LocalController::TearDown(const api::PostgresReplicaSet& set) {
  spdlog::info("deleting replica set set={}", set.metadata.name);
  for (const auto& instance : runtime_.ListInstances(set)) {
    Status st = runtime_.DeleteInstance(set, instance.name);
    if (!st.ok()) {
      spdlog::error("could not delete instance set={} instance={} error=\"{}\"", set.metadata.name, instance.name,
                    st.message());
      return;
    }
    spdlog::info("deleted instance set={} instance={}", set.metadata.name, instance.name);
  }
  scheduled_.erase(set.metadata.name);  // its instances are gone, so is the backup
  Status st = store_.Remove(set.metadata.name);
  if (!st.ok()) spdlog::error("could not remove set={} error=\"{}\"", set.metadata.name, st.message());
  else spdlog::info("deleted replica set set={}", set.metadata.name);
  lastSummary_.erase(set.metadata.name);
}

std::chrono::milliseconds LocalController::ReconcileOne(const std::string& name) {
  auto object = store_.Get(name);
  if (!object.ok()) {
    spdlog::error("cannot read replica set set={} error=\"{}\"", name, object.status().message());
    return 2000ms;
  }
  api::PostgresReplicaSet& set = *object;
  if (!set.metadata.deletionTimestamp.empty()) {
    TearDown(set);
    return 200ms;
  }

  RunSchedule(set, std::chrono::system_clock::now());
  control::PassResult pass = control::RunPass(set, runtime_, observer_, executor_);
  Status written = store_.WriteStatus(name, pass.status);
  if (!written.ok()) spdlog::warn("cannot write status set={} error=\"{}\"", name, written.message());
  std::string summary = control::Summary(set, pass.status);
  if (lastSummary_[name] != summary) {
    lastSummary_[name] = summary;
    spdlog::info("replica set status set={} {}", name, summary);
  }
  return pass.requeueAfter;
}

void LocalController::RunSchedule(api::PostgresReplicaSet& set, std::chrono::system_clock::time_point now) {
  const std::string& name = set.metadata.name;
  if (!set.spec.backup) return;
  api::BackupStatus& status = set.status.backup ? *set.status.backup : set.status.backup.emplace();
  std::optional<api::ScheduledBackupRun>& run = status.lastScheduledBackup;
  bool running = false;
  if (auto job = scheduled_.find(name); job != scheduled_.end()) {
    running = job->second.wait_for(0s) != std::future_status::ready;
    if (!running) {
      Result<std::string> label = job->second.get();
      scheduled_.erase(job);
      if (run) {
        run->stopTime = api::FormatTime(now);
        run->outcome = label.ok() ? "Succeeded" : "Failed";
        run->label = label.ok() ? *label : "";
        // pgBackRest's output can be long: status keeps its start.
        run->message = label.ok() ? "" : label.status().message().substr(0, 600);
        if (label.ok()) {
          spdlog::info("scheduled backup done set={} type={} label={}", name, run->type, run->label);
        } else {
          spdlog::warn("scheduled backup failed set={} type={} error=\"{}\"", name, run->type,
                       label.status().message());
        }
      }
    }
  }
  if (!running && run && run->outcome == "Running") {
    // Recorded by a `pgrs local run` that stopped while it ran.
    run->outcome = "Failed";
    run->message = "interrupted: pgrs local run stopped while it ran";
  }
  // A backup needs a settled primary whose agent has read the repository
  // (so its stanza exists); until then what is due stays due.
  const bool canStart = !running && !set.status.currentPrimary.empty() && set.status.promotionReason.empty() &&
                        !status.repositoryCheckedTime.empty();
  auto decision = reconcilers::DecideScheduledBackup(set.spec.backup->schedule, status.lastScheduled, canStart, now);
  status.lastScheduled = decision.lastScheduled;
  if (decision.type.empty()) return;
  run = api::ScheduledBackupRun{decision.type, decision.scheduledTime, api::FormatTime(now), "", "Running", "", ""};
  spdlog::info("scheduled backup started set={} type={} scheduledTime={}", name, decision.type,
               decision.scheduledTime);
  // A copy of the set as this pass sees it: where to back up from.
  scheduled_[name] = std::async(std::launch::async, [this, set, type = decision.type]() {
    return TakeBackup(runtime_, set, type, kScheduledBackupTimeout, [&set](const std::string& line) {
      spdlog::info("scheduled backup set={} {}", set.metadata.name, line);
    });
  });
}

}  // namespace pgrs::local
