#include "operator/kube/backup_controller.h"

#include <spdlog/spdlog.h>

#include "operator/kube/objects.h"
#include "operator/util/http.h"
#include "reconcilers/backup.h"
#include "reconcilers/backup_schedule.h"

namespace pgrs::kube {

namespace {

using namespace std::chrono_literals;

std::string FormatUnix(int64_t seconds) {
  return seconds > 0 ? api::FormatTime(std::chrono::system_clock::time_point(std::chrono::seconds(seconds))) : "";
}

// The message pgBackRest's output can make long: status keeps its start.
std::string Short(const std::string& text) { return text.size() > 600 ? text.substr(0, 600) + " ..." : text; }

}  // namespace

Resource BackupResource() { return {"pgrs.dev", "v1alpha1", "postgresbackups", "PostgresBackup", true}; }

BackupDecision DecideBackup(const BackupFacts& f, const std::string& id) {
  const std::string object = "postgresbackup " + f.name;
  if (f.phase == kBackupCompletedPhase || f.phase == kBackupFailedPhase) return {BackupStep::kNothing, ""};
  if (f.replicaSet.empty()) return {BackupStep::kFail, object + ": spec.replicaSet: is required"};
  if (!agent::ValidBackupType(f.type)) {
    return {BackupStep::kFail, object + ": spec.type: \"" + f.type + "\" must be full, diff or incr"};
  }
  if (!f.setFound) {
    // A GitOps tool may apply the backup before the set: wait for it.
    return {BackupStep::kWait, "waiting for postgresreplicaset " + f.replicaSet + " (not found)"};
  }
  if (!f.setHasBackup) {
    return {BackupStep::kFail, object + ": spec.replicaSet: postgresreplicaset " + f.replicaSet +
                                   " has no spec.backup (no repository to back up to)"};
  }
  if (f.job && f.job->id == id) {
    if (f.job->state == agent::kBackupCompleted) return {BackupStep::kComplete, ""};
    if (f.job->state == agent::kBackupFailed) return {BackupStep::kFail, Short(f.job->error)};
    return {BackupStep::kRunning, f.job->progress};
  }
  if (f.primary.empty() || !f.primarySettled) {
    return {BackupStep::kWait, "waiting for postgresreplicaset " + f.replicaSet + " to have a settled primary"};
  }
  if (f.job && f.job->state == agent::kBackupRunning) {
    return {BackupStep::kWait, "waiting for another backup to finish on " + f.primary};
  }
  // Not started, or started on an instance that is no longer the primary
  // (or whose agent restarted and forgot it): ask the primary, which
  // resumes what pgBackRest left.
  return {BackupStep::kStart, ""};
}

std::string ScheduledBackupName(const std::string& set, const std::string& type, const std::string& scheduledTime) {
  std::string digits;
  for (char c : scheduledTime) {
    if (c >= '0' && c <= '9') digits += c;
    if (digits.size() == 14) break;
  }
  return set + "-" + type + "-" + digits;
}

Status RunKubeSchedule(Client* client, api::PostgresReplicaSet& set, std::chrono::system_clock::time_point now) {
  if (!set.spec.backup) return Status::Ok();
  const api::BackupScheduleSpec& schedule = set.spec.backup->schedule;
  if (schedule.full.empty() && schedule.differential.empty() && schedule.incremental.empty()) return Status::Ok();
  const std::string& ns = set.metadata.namespace_;
  api::BackupStatus& status = set.status.backup ? *set.status.backup : set.status.backup.emplace();
  std::optional<api::ScheduledBackupRun>& run = status.lastScheduledBackup;
  // The last scheduled run: its PostgresBackup says how it went.
  if (run && run->outcome == "Running") {
    const std::string name = ScheduledBackupName(set.metadata.name, run->type, run->scheduledTime);
    auto backup = client->Get(BackupResource(), ns, name);
    if (backup.ok()) {
      const std::string phase = GetString(*backup, {"status", "phase"});
      if (phase == kBackupCompletedPhase || phase == kBackupFailedPhase) {
        run->outcome = phase == kBackupCompletedPhase ? "Succeeded" : "Failed";
        run->label = GetString(*backup, {"status", "label"});
        run->stopTime = GetString(*backup, {"status", "stopTime"});
        if (run->stopTime.empty()) run->stopTime = api::FormatTime(now);
        run->message = phase == kBackupFailedPhase ? Short(GetString(*backup, {"status", "message"})) : "";
      }
    } else if (backup.status().code() == StatusCode::kNotFound) {
      run->outcome = "Failed";
      run->stopTime = api::FormatTime(now);
      run->message = "postgresbackup " + name + " was deleted before it finished";
    } else {
      return backup.status().WithContext("read postgresbackup " + name);
    }
  }
  const bool running = run && run->outcome == "Running";
  const bool canStart = !running && !set.status.currentPrimary.empty() && set.status.promotionReason.empty() &&
                        !status.repositoryCheckedTime.empty();
  auto decision = reconcilers::DecideScheduledBackup(schedule, status.lastScheduled, canStart, now);
  if (decision.type.empty()) {
    status.lastScheduled = decision.lastScheduled;
    return Status::Ok();
  }
  const std::string name = ScheduledBackupName(set.metadata.name, decision.type, decision.scheduledTime);
  SetRef owner{ns, set.metadata.name, set.metadata.uid};
  Json backup = Json::object();
  backup["apiVersion"] = Json::string("pgrs.dev/v1alpha1");
  backup["kind"] = Json::string("PostgresBackup");
  backup["metadata"] = ChildMetadata(owner, name);
  backup["metadata"]["labels"][kScheduledLabel] = Json::string("true");
  backup["metadata"]["annotations"][kScheduledTimeAnnotation] = Json::string(decision.scheduledTime);
  backup["spec"]["replicaSet"] = Json::string(set.metadata.name);
  backup["spec"]["type"] = Json::string(decision.type);
  auto created = client->Create(BackupResource(), ns, backup);
  if (!created.ok() && !IsAlreadyExists(created.status())) {
    return created.status().WithContext("create postgresbackup " + name);  // fired again next pass
  }
  spdlog::info("scheduled backup created set={} postgresbackup={} type={} scheduledTime={}", set.metadata.name, name,
               decision.type, decision.scheduledTime);
  status.lastScheduled = decision.lastScheduled;
  run = api::ScheduledBackupRun{decision.type, decision.scheduledTime, api::FormatTime(now), "", "Running", "", ""};
  return Status::Ok();
}

BackupController::BackupController(Client* client, EventRecorder* events, ControllerOptions options)
    : client_(client), events_(events), controller_("postgresbackup", client, BackupResource(), std::move(options)) {
  controller_.SetReconciler([this](const std::string& key) { return Reconcile(key); });
}

Result<std::optional<agent::BackupJob>> BackupController::CallAgent(const std::string& ns, const std::string& set,
                                                                    const std::string& instance,
                                                                    const std::string& method, const std::string& body,
                                                                    int* httpStatus, std::string* responseBody) {
  auto pod = client_->Get(PodResource(), ns, instance);
  if (!pod.ok()) return pod.status().WithContext("read pod " + instance);
  const std::string ip = GetString(*pod, {"status", "podIP"});
  if (ip.empty()) return Status::Unavailable("pod " + instance + " has no address yet");
  auto secret = client_->Get(SecretResource(), ns, AgentSecretName(set));
  if (!secret.ok()) return secret.status().WithContext("read secret " + AgentSecretName(set));
  const std::string token = SecretValue(*secret, "token");
  auto response = HttpCall(method, "http://" + ip + ":" + std::to_string(kAgentPort) + "/backup", body, token, 5s);
  if (!response.ok()) return response.status().WithContext(method + " /backup on " + instance);
  *httpStatus = response->status;
  *responseBody = response->body;
  if (response->status == 404) return std::optional<agent::BackupJob>();
  if (response->status / 100 != 2) return std::optional<agent::BackupJob>();
  auto job = agent::DecodeBackupJob(response->body);
  if (!job.ok()) return job.status().WithContext("the answer of " + instance);
  return std::optional<agent::BackupJob>(std::move(*job));
}

ReconcileResult BackupController::Reconcile(const std::string& key) {
  const std::string ns = key.substr(0, key.find('/'));
  const std::string name = key.substr(key.find('/') + 1);
  std::optional<Json> cached = controller_.Get(key);
  if (!cached || !GetString(*cached, {"metadata", "deletionTimestamp"}).empty()) return ReconcileResult::Done();
  const std::string id = UidOf(*cached);

  BackupFacts f;
  f.name = name;
  f.phase = GetString(*cached, {"status", "phase"});
  f.replicaSet = GetString(*cached, {"spec", "replicaSet"});
  f.type = GetString(*cached, {"spec", "type"});
  if (f.type.empty()) f.type = "full";
  if (f.phase == kBackupCompletedPhase || f.phase == kBackupFailedPhase) return ReconcileResult::Done();

  std::string previousInstance = GetString(*cached, {"status", "instance"});
  std::optional<api::PostgresReplicaSet> set;
  if (!f.replicaSet.empty()) {
    auto rs = client_->Get(ReplicaSetResource(), ns, f.replicaSet);
    if (rs.ok()) {
      f.setFound = true;
      if (auto decoded = api::DecodeReplicaSet(rs->serialize()); decoded.object) set = decoded.object;
      const Json* backup = GetField(*rs, {"spec", "backup"});
      f.setHasBackup = backup != nullptr && backup->is_object();
      f.primary = GetString(*rs, {"status", "currentPrimary"});
      bool primaryRunning = false;
      const Json* instances = GetField(*rs, {"status", "instances"});
      if (instances != nullptr && instances->is_array()) {
        for (const auto& i : instances->as_array()) {
          if (GetString(i, {"name"}) == f.primary && GetString(i, {"state"}) == "Running") primaryRunning = true;
        }
      }
      f.primarySettled = primaryRunning && GetString(*rs, {"status", "promotionReason"}).empty();
    } else if (rs.status().code() != StatusCode::kNotFound) {
      return ReconcileResult::Failed(rs.status());
    }
  }
  // The job lives on the agent of the instance it was started on; after a
  // failover that is an instance that is no longer the primary.
  const std::string askAt = !previousInstance.empty() ? previousInstance : f.primary;
  if (f.setHasBackup && !askAt.empty()) {
    int code = 0;
    std::string body;
    auto job = CallAgent(ns, f.replicaSet, askAt, "GET", "", &code, &body);
    if (job.ok()) f.job = *job;
    // An agent that does not answer: decided as if it had no job.
  }
  BackupDecision d = DecideBackup(f, id);
  std::string instance = previousInstance;
  std::string source;
  if (d.step == BackupStep::kStart) {
    agent::BackupRequest request;
    request.id = id;
    request.type = f.type;
    source = f.primary;
    if (set) {
      // A standby in another Pod is reached through its pgBackRest TLS
      // server (spec.tls).
      const reconcilers::BackupSource from = reconcilers::ChooseBackupSource(*set, set->spec.tls.enabled.value_or(true));
      for (const auto& i : set->status.instances) {
        if (from.standby.empty() || i.name != from.standby || i.host.empty()) continue;
        request.standby = i.name;
        request.standbyHost = i.host;
        request.standbyServerPort = kPgBackRestServerPort;
        request.standbyPort = kPostgresPort;
        source = i.name;
      }
    }
    int code = 0;
    std::string body;
    auto job = CallAgent(ns, f.replicaSet, f.primary, "POST", agent::EncodeBackupRequest(request), &code, &body);
    if (!job.ok()) {
      d = {BackupStep::kWait, "cannot reach the agent of " + f.primary + ": " + job.status().message()};
    } else if (code == 202 || code == 200) {
      instance = f.primary;
      f.job = *job;
      d = {BackupStep::kRunning, f.job ? f.job->progress : ""};
      spdlog::info("backup started postgresbackup={} set={} instance={} type={}", key, f.replicaSet, f.primary,
                   f.type);
      if (events_ != nullptr) {
        events_->Record(*cached, "Normal", "Started", f.type + " backup started on " + f.primary);
      }
    } else if (code == 400) {
      d = {BackupStep::kFail, "postgresbackup " + name + ": the agent of " + f.primary + " refused it: " + Short(body)};
    } else {
      // 409: another backup runs; 503: the instance cannot back up now.
      d = {BackupStep::kWait, "waiting: the agent of " + f.primary + " answered " + std::to_string(code) + ": " +
                                  Short(body)};
    }
  }

  auto written = UpdateStatusWithRetry(client_, BackupResource(), ns, name, [&](Json& object) {
    Json status = object.has_object_field("status") ? object.at("status") : Json::object();
    auto put = [&](const char* field, const std::string& value) {
      if (!value.empty()) status[field] = Json::string(value);
    };
    const std::string scheduled = GetString(object, {"metadata", "annotations", kScheduledTimeAnnotation});
    put("scheduledTime", scheduled);
    put("instance", instance);
    put("source", source);
    switch (d.step) {
      case BackupStep::kNothing:
      case BackupStep::kStart:  // became kRunning, kWait or kFail above
        return;
      case BackupStep::kWait:
        status["phase"] = Json::string(kBackupPending);
        status["message"] = Json::string(d.message);
        break;
      case BackupStep::kRunning:
        status["phase"] = Json::string(kBackupRunningPhase);
        status["message"] = Json::string(d.message);
        if (f.job && f.job->startedMs > 0) put("startTime", api::FormatTime(std::chrono::system_clock::time_point(
                                                                std::chrono::milliseconds(f.job->startedMs))));
        break;
      case BackupStep::kFail:
        status["phase"] = Json::string(kBackupFailedPhase);
        status["message"] = Json::string(d.message);
        break;
      case BackupStep::kComplete: {
        status["phase"] = Json::string(kBackupCompletedPhase);
        status["message"] = Json::string("");
        put("label", f.job->label);
        if (const auto& b = f.job->backup) {
          put("type", b->type);
          put("startTime", FormatUnix(b->startTime));
          put("stopTime", FormatUnix(b->stopTime));
          put("startLsn", b->startLsn);
          put("stopLsn", b->stopLsn);
          status["databaseSize"] = Json::number(b->databaseSize);
          status["repositorySize"] = Json::number(b->repositorySize);
        }
        break;
      }
    }
    object["status"] = status;
  });
  if (!written.ok()) return ReconcileResult::Failed(written.status());
  if (*written && (d.step == BackupStep::kComplete || d.step == BackupStep::kFail)) {
    const bool ok = d.step == BackupStep::kComplete;
    spdlog::info("backup {} postgresbackup={} set={} instance={} label={} message=\"{}\"",
                 ok ? "completed" : "failed", key, f.replicaSet, instance, ok ? f.job->label : "", d.message);
    if (events_ != nullptr) {
      events_->Record(*cached, ok ? "Normal" : "Warning", ok ? "Completed" : "Failed",
                      ok ? "backup " + f.job->label + " completed on " + instance : d.message);
    }
  }
  switch (d.step) {
    case BackupStep::kRunning:
      return ReconcileResult::After(2s);
    case BackupStep::kWait:
      return ReconcileResult::After(5s);
    default:
      return ReconcileResult::Done();
  }
}

}  // namespace pgrs::kube
