#include "operator/local/backup.h"

#include "operator/agent/archiving.h"
#include "operator/agent/backup.h"
#include "operator/agent/instance_layout.h"
#include "operator/util/files.h"
#include "operator/util/process.h"
#include "reconcilers/backup.h"

namespace pgrs::local {

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
  agent::BackupCommand command;
  command.host = host;
  command.stanza = name;
  command.type = type;
  command.lockWait = timeout;  // the lock is retried as long as the backup may take
  command.timeout = timeout;
  if (!source.standby.empty()) {
    int standbyPort = 0;
    for (const auto& inst : set.status.instances) {
      if (inst.name == source.standby) standbyPort = inst.port;
    }
    const agent::InstanceLayout standby{source.standby, runtime.InstanceDir(name, source.standby), "", {}};
    command.extraArgs = {"--backup-standby", "--pg2-path=" + standby.DataDir(),
                         "--pg2-port=" + std::to_string(standbyPort), "--pg2-user=postgres"};
    progress("backing up " + name + " from standby " + source.standby + " (" + type + "; " + source.why +
             "), started and stopped on primary " + primary);
  } else {
    progress("backing up " + name + " from primary " + primary + " (" + type + "; " + source.why + ")");
  }
  auto backup = agent::RunPgBackRestBackup(layout, command);
  if (!backup.ok()) return Status::Unavailable(object + ": " + backup.status().message());
  return backup->label;
}

}  // namespace pgrs::local
