#include "operator/local/backup.h"

#include <thread>

#include "operator/agent/archiving.h"
#include "operator/agent/instance_layout.h"
#include "operator/util/files.h"
#include "operator/util/process.h"
#include "reconcilers/backup.h"

namespace pgrs::local {

using namespace std::chrono_literals;

Result<std::string> TakeBackup(const LocalRuntime& runtime, const api::PostgresReplicaSet& set,
                               const std::string& type, std::chrono::milliseconds timeout,
                               const std::function<void(const std::string&)>& progress) {
  const std::string& name = set.metadata.name;
  const std::string object = "postgresreplicaset " + name;
  if (!set.spec.backup) {
    return Status::Invalid(object + ": spec.backup.repository.path: not set, nothing to back up to");
  }
  const std::string primary = set.status.currentPrimary;
  if (primary.empty() || !set.status.promotionReason.empty()) {
    return Status::Unavailable(object + " has no settled primary (is `pgrs local run` running?)");
  }
  std::string host = "127.0.0.1";
  for (const auto& inst : set.status.instances) {
    if (inst.name == primary && !inst.host.empty()) host = inst.host;
  }
  agent::InstanceLayout layout{primary, runtime.InstanceDir(name, primary), "", {}};
  if (RunningAsRoot()) {
    auto user = PostgresUser();
    if (!user.ok()) return user.status();
    layout.postgresUser = *user;
  }
  if (!PathExists(layout.PgBackRestConfigFile())) {
    return Status::Unavailable(object + ": instance " + primary + " has no pgBackRest configuration yet (" +
                               layout.PgBackRestConfigFile() + ")");
  }
  // From a streaming standby when there is one: pgBackRest copies the files
  // from it (pg2) and starts and stops the backup on the primary (pg1).
  const reconcilers::BackupSource source = reconcilers::ChooseBackupSource(set);
  std::vector<std::string> backupArgs = {"backup", "--type=" + type};
  if (!source.standby.empty()) {
    int standbyPort = 0;
    for (const auto& inst : set.status.instances) {
      if (inst.name == source.standby) standbyPort = inst.port;
    }
    const agent::InstanceLayout standby{source.standby, runtime.InstanceDir(name, source.standby), "", {}};
    backupArgs.insert(backupArgs.end(), {"--backup-standby", "--pg2-path=" + standby.DataDir(),
                                         "--pg2-port=" + std::to_string(standbyPort), "--pg2-user=postgres"});
    progress("backing up " + name + " from standby " + source.standby + " (" + type + "; " + source.why +
             "), started and stopped on primary " + primary);
  } else {
    progress("backing up " + name + " from primary " + primary + " (" + type + "; " + source.why + ")");
  }
  // pgBackRest's lock error (50): another command holds the stanza's backup
  // lock, e.g. the stanza-create a new primary's agent runs after a
  // failover. It is short-lived: retried until the deadline.
  constexpr int kPgBackRestLockError = 50;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Result<CommandResult> backup = Status::Unavailable("not run");
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    backup = RunCommand(agent::PgBackRestProgram(layout, host, name, backupArgs),
                        std::max<std::chrono::milliseconds>(left, 1ms));
    if (!backup.ok() || backup->exitCode != kPgBackRestLockError || std::chrono::steady_clock::now() + 1s >= deadline) {
      break;
    }
    std::this_thread::sleep_for(1s);
  }
  if (!backup.ok()) return Status::Unavailable(object + ": pgbackrest backup: " + backup.status().message());
  if (!backup->ok()) {
    return Status::Unavailable(object + ": pgbackrest backup failed (exit code " + std::to_string(backup->exitCode) +
                               "): " + backup->output);
  }
  // The newest backup is the one just taken (pgBackRest holds the stanza's
  // backup lock while it runs, so no other finished in between).
  auto info = RunCommand(agent::PgBackRestInfoProgram(layout, host, name), 60s);
  Result<std::string> label = info.ok() ? agent::NewestBackupLabel(info->output, name) : info.status();
  if (!label.ok()) {
    return Status::Unavailable(object + ": the backup finished but its label is unknown: " +
                               label.status().message());
  }
  return label;
}

}  // namespace pgrs::local
