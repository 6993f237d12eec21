#include "reconcilers/backup.h"

#include <algorithm>
#include <cstdint>

namespace pgrs::reconcilers {

namespace {

std::string TimeFromSeconds(int64_t unixSeconds) {
  if (unixSeconds <= 0) return "";
  return api::FormatTime(std::chrono::system_clock::time_point(std::chrono::seconds(unixSeconds)));
}

std::string TimeFromMs(int64_t unixMs) {
  if (unixMs <= 0) return "";
  return api::FormatTime(std::chrono::system_clock::time_point(std::chrono::milliseconds(unixMs)));
}

api::BackupRecord Record(const agent::BackupInfo& b) {
  return {b.label,    b.type,    TimeFromSeconds(b.startTime), TimeFromSeconds(b.stopTime),
          b.startLsn, b.stopLsn, b.databaseSize,               b.repositorySize};
}

// From the oldest backup's end (the first consistent point) to the newest
// archived WAL, or the newest backup's end when nothing was archived since.
// Times in FormatTime's text compare as times.
void SetRecoverableWindow(api::BackupStatus& s) {
  s.firstRecoverableTime.clear();
  s.lastRecoverableTime.clear();
  if (s.backups.empty()) return;
  s.firstRecoverableTime = s.backups.front().stopTime;
  s.lastRecoverableTime = std::max(s.backups.back().stopTime, s.lastArchivedTime);
}

api::Condition Health(const api::BackupStatus& s) {
  api::Condition c;
  c.type = kBackupsHealthy;
  const std::string archived = s.lastArchivedWal.empty()
                                   ? "no WAL archived yet"
                                   : "WAL archived up to " + s.lastArchivedWal + " at " + s.lastArchivedTime;
  if (s.archivingFailing) {
    c.status = "False";
    c.reason = "ArchivingFailing";
    c.message = "archiving WAL fails: " + s.lastFailedWal + " failed at " + s.lastFailedTime + " (" +
                std::to_string(s.archiveFailedCount) + " failures); " + archived;
  } else if (!s.repositoryError.empty()) {
    c.status = "False";
    c.reason = "RepositoryUnavailable";
    c.message = s.repositoryError;
  } else if (s.repositoryCheckedTime.empty()) {
    c.status = "Unknown";
    c.reason = "Pending";
    c.message = "the repository has not been read yet";
  } else if (s.backups.empty()) {
    c.status = "False";
    c.reason = "NoBackup";
    c.message = "the repository has no backup yet; " + archived;
  } else {
    const api::BackupRecord& newest = s.backups.back();
    c.status = "True";
    c.reason = "BackupsAvailable";
    c.message = std::to_string(s.backups.size()) + (s.backups.size() == 1 ? " backup" : " backups") + ", newest " +
                newest.label + " (" + newest.type + ") finished at " + newest.stopTime + "; " + archived;
  }
  // A failed scheduled backup: said until the next scheduled one succeeds.
  if (s.lastScheduledBackup && s.lastScheduledBackup->outcome == "Failed") {
    const api::ScheduledBackupRun& run = *s.lastScheduledBackup;
    if (c.status == "True") {
      c.status = "False";
      c.reason = "ScheduledBackupFailed";
    }
    c.message += "; the scheduled " + run.type + " backup of " + run.scheduledTime + " failed: " + run.message;
  }
  return c;
}

}  // namespace

std::optional<BackupReport> DescribeBackups(const api::PostgresReplicaSet& set, const ObservedInstance* primary) {
  if (!set.spec.backup) return std::nullopt;
  BackupReport report;
  api::BackupStatus& s = report.status;
  s = set.status.backup.value_or(api::BackupStatus{});
  if (primary != nullptr && primary->agentReachable && primary->repository.checkedMs != 0) {
    const agent::RepositoryInfo& r = primary->repository;
    s.backups.clear();
    for (const auto& b : r.backups) s.backups.push_back(Record(b));
    s.repositoryError = r.error;
    s.repositoryCheckedTime = TimeFromMs(r.checkedMs);
  }
  if (primary != nullptr && primary->archiver.observed) {
    const ArchiverRow& a = primary->archiver;
    // A primary that has archived nothing yet (just promoted, or restarted:
    // pg_stat_archiver is per instance) leaves the last archived segment
    // its predecessor reported.
    if (!a.lastArchivedWal.empty()) {
      s.lastArchivedWal = a.lastArchivedWal;
      s.lastArchivedTime = TimeFromMs(a.lastArchivedTimeMs);
    }
    s.lastFailedWal = a.lastFailedWal;
    s.lastFailedTime = TimeFromMs(a.lastFailedTimeMs);
    s.archiveFailedCount = a.failedCount;
    // pg_stat_archiver keeps the last failure after a later success.
    s.archivingFailing = a.lastFailedTimeMs > a.lastArchivedTimeMs;
  }
  SetRecoverableWindow(s);
  report.condition = Health(s);
  report.condition.observedGeneration = set.metadata.generation;
  return report;
}

BackupSource ChooseBackupSource(const api::PostgresReplicaSet& set, bool otherHosts) {
  BackupSource source;
  source.primary = set.status.currentPrimary;
  if (!set.spec.backup || !set.spec.backup->fromStandby.value_or(true)) {
    source.why = "spec.backup.fromStandby is false";
    return source;
  }
  std::string primaryHost;
  for (const auto& inst : set.status.instances) {
    if (inst.name == source.primary) primaryHost = inst.host;
  }
  const api::InstanceStatus* best = nullptr;
  for (const auto& inst : set.status.instances) {
    // Without a TLS server pgBackRest reaches both instances through one
    // PGHOST (they have no Unix socket): a standby elsewhere cannot be used.
    if (inst.role != "standby" || inst.state != "Streaming" || inst.fenced) continue;
    if (!otherHosts && inst.host != primaryHost) continue;
    const int64_t lag = inst.lagBytes.value_or(INT64_MAX);
    if (best == nullptr || lag < best->lagBytes.value_or(INT64_MAX) ||
        (lag == best->lagBytes.value_or(INT64_MAX) && inst.name < best->name)) {
      best = &inst;
    }
  }
  if (best == nullptr) {
    source.why = "no standby streams";
    return source;
  }
  source.standby = best->name;
  source.why = "streaming, " + std::to_string(best->lagBytes.value_or(0)) + " bytes behind";
  return source;
}

}  // namespace pgrs::reconcilers
