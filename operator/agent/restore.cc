#include "operator/agent/restore.h"

#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <regex>
#include <sstream>

#include "operator/agent/archiving.h"
#include "operator/agent/postmaster.h"
#include "operator/api/types.h"
#include "operator/postgres/config.h"
#include "operator/postgres/pgbackrest.h"
#include "operator/util/files.h"
#include "operator/util/log.h"
#include "operator/util/lsn.h"

namespace pgrs::agent {

using namespace std::chrono_literals;

namespace {

constexpr char kField[] = "spec.bootstrap.recovery";
constexpr char kSettingsComment[] = "# Recovery settings written by pgrs for a restore";

std::string TimeText(int64_t unixSeconds) {
  return api::FormatTime(std::chrono::system_clock::time_point(std::chrono::seconds(unixSeconds)));
}

// The one recovery target a restore has, for messages: "time 2026-...", "the end of the archive".
std::string DescribeTarget(const RestoreConfig& r) {
  if (!r.targetTime.empty()) return "time " + r.targetTime;
  if (!r.targetLsn.empty()) return "LSN " + r.targetLsn;
  if (!r.targetName.empty()) return "restore point " + r.targetName;
  if (r.targetImmediate) return "the end of the backup";
  return "the end of the archive";
}

// PostgreSQL's recovery_target_time does not read RFC 3339's "T" and "Z":
// "2026-12-03T10:00:00.5Z" becomes "2026-12-03 10:00:00.5+00".
std::string PostgresTimestamp(const std::string& rfc3339) {
  std::string out = rfc3339;
  if (out.size() > 10 && out[10] == 'T') out[10] = ' ';
  if (!out.empty() && out.back() == 'Z') out.replace(out.size() - 1, 1, "+00");
  return out;
}

bool IsRestoreSetting(const std::string& line) {
  size_t start = line.find_first_not_of(" \t");
  if (start == std::string::npos) return false;
  std::string rest = line.substr(start);
  if (rest.rfind(kSettingsComment, 0) == 0) return true;
  for (const char* key : {"restore_command", "recovery_target"}) {
    if (rest.rfind(key, 0) == 0) return true;
  }
  return false;
}

}  // namespace

std::string RestoreRepositoryProblem(const std::string& infoError, const RestoreConfig& restore) {
  const auto has = [&](const char* text) { return infoError.find(text) != std::string::npos; };
  const std::string repository = RepositoryName(restore.repositoryPath, restore.s3);
  const std::string field = std::string(kField) + ".repository";
  if (infoError.empty() || has("missing stanza path")) return "";  // the stanza is not there: the source's problem
  // pgBackRest read an encrypted info file as plain text ("Salted__" is
  // OpenSSL's header), an encrypted one with the wrong passphrase (garbage
  // where the ini should be), or a plain one as encrypted.
  const bool unreadableIni = has("key/value found outside of section");
  if (!restore.encryption && unreadableIni && has("Salted__")) {
    return field + ".encryption: stanza " + restore.stanza + " in repository " + repository +
           " is encrypted: set it to true (with the source's passphrase)";
  }
  if (restore.encryption && unreadableIni) {
    return field + ".encryption: the passphrase does not decrypt stanza " + restore.stanza + " in repository " +
           repository + " (wrong spec.bootstrap.recovery.encryptionPassphraseFile, or the source set's kept one "
           "is not the one its repository was encrypted with)";
  }
  if (restore.encryption && has("cipher header invalid")) {
    return field + ".encryption: stanza " + restore.stanza + " in repository " + repository +
           " is not encrypted: set it to false";
  }
  if (has("InvalidAccessKeyId") || has("SignatureDoesNotMatch") || has("AccessDenied")) {
    return field + ".s3: " + repository + " refused the access keys (credentialsFile, or credentialsSecret in " +
           "Kubernetes): " + infoError;
  }
  return field + ": " + repository + " cannot be read: " + infoError;
}

Result<BackupInfo> ChooseRestoreBackup(const RepositoryInfo& info, const RestoreConfig& restore, int majorVersion) {
  const std::string where = "stanza " + restore.stanza + " in repository " + RepositoryName(restore.repositoryPath, restore.s3);
  const std::vector<BackupInfo>& backups = info.backups;
  if (backups.empty()) {
    if (std::string problem = RestoreRepositoryProblem(info.error, restore); !problem.empty()) {
      return Status::Invalid(problem);
    }
    std::string why = info.error.empty() ? "" : " (" + info.error + ")";
    return Status::Invalid(std::string(kField) + ".source: " + where + " has no backup to restore" + why);
  }
  if (!info.postgresVersion.empty() && info.postgresVersion != std::to_string(majorVersion)) {
    return Status::Invalid("spec.postgres.version: is " + std::to_string(majorVersion) + " but the backups of " +
                           where + " are of PostgreSQL " + info.postgresVersion);
  }
  // Listed oldest first: the newest that qualifies is the last one.
  const BackupInfo* chosen = nullptr;
  if (!restore.targetTime.empty()) {
    auto target = api::ParseTime(restore.targetTime);
    if (!target) return Status::Invalid(std::string(kField) + ".target.time: cannot be read: " + restore.targetTime);
    const auto targetMs = std::chrono::duration_cast<std::chrono::milliseconds>(target->time_since_epoch()).count();
    // A backup is consistent only at its end, which PostgreSQL cannot stop
    // before; pgBackRest records that end to the second, so it was over by
    // the next one.
    for (const auto& b : backups) {
      if ((b.stopTime + 1) * 1000 <= targetMs) chosen = &b;
    }
    if (chosen == nullptr) {
      return Status::Invalid(std::string(kField) + ".target.time: " + restore.targetTime +
                             " is before the end of the oldest backup of " + where + " (" + backups.front().label +
                             ", ended by " + TimeText(backups.front().stopTime + 1) +
                             "), the earliest point it can recover to");
    }
  } else if (!restore.targetLsn.empty()) {
    auto target = ParseLsn(restore.targetLsn);
    if (!target) return Status::Invalid(std::string(kField) + ".target.lsn: cannot be read: " + restore.targetLsn);
    for (const auto& b : backups) {
      auto stop = ParseLsn(b.stopLsn);
      if (stop && *stop <= *target) chosen = &b;
    }
    if (chosen == nullptr) {
      return Status::Invalid(std::string(kField) + ".target.lsn: " + restore.targetLsn +
                             " is before the end of the oldest backup of " + where + " (" + backups.front().label +
                             ", ended at " + backups.front().stopLsn + "), the earliest point it can recover to");
    }
  } else {
    chosen = &backups.back();
  }
  return *chosen;
}

Result<BackupInfo> FindRestoreBackup(const std::string& pgbackrest, const RestoreConfig& restore,
                                     const std::optional<UserIds>& runAs, int majorVersion) {
  if (restore.encryption && restore.cipherPass.empty()) {
    return Status::Invalid(std::string(kField) + ".repository.encryption: no passphrase for the encrypted repository");
  }
  // The repository's options (S3 keys among them) go into a configuration
  // file of their own, never onto the command line; it lives only as long as
  // the command, in a fresh directory only the PostgreSQL user can read.
  char dirTemplate[] = "/tmp/pgrs-restore-check-XXXXXX";
  if (::mkdtemp(dirTemplate) == nullptr) return Status::Unavailable("mkdtemp /tmp/pgrs-restore-check: failed");
  const std::string dir = dirTemplate;
  auto run = [&]() -> Result<CommandResult> {
    if (runAs) PGRS_RETURN_IF_ERROR(ChownPath(dir, runAs->uid, runAs->gid));
    const std::string caFile = JoinPath(dir, "ca.pem");
    const std::string configFile = JoinPath(dir, "pgbackrest.conf");
    std::vector<std::pair<std::string, std::string>> files = {
        {configFile,
         "[global]\n" + postgres::RepositoryOptions(PgBackRestRepositoryFor(restore.repositoryPath, restore.s3, caFile,
                                                                            restore.cipherPass))}};
    if (restore.s3 && !restore.s3->ca.empty()) files.emplace_back(caFile, restore.s3->ca);
    for (const auto& [path, text] : files) {
      PGRS_RETURN_IF_ERROR(WriteFileAtomic(path, text, 0600));
      if (runAs) PGRS_RETURN_IF_ERROR(ChownPath(path, runAs->uid, runAs->gid));
    }
    // Nothing is written, no lock taken: info only reads.
    ProcessSpec spec;
    spec.argv = {pgbackrest,
                 "--config=" + configFile,
                 "--stanza=" + restore.stanza,
                 "--log-level-console=off",
                 "--log-level-file=off",
                 "--log-level-stderr=error",
                 "info",
                 "--output=json"};
    spec.workingDir = "/";
    spec.runAs = runAs;
    return RunCommand(spec, 120s);
  };
  auto result = run();
  RemoveTree(dir).ok();
  if (!result.ok()) return result.status().WithContext(std::string(kField) + ".repository: pgbackrest info");
  if (!result->ok()) {
    const std::string output = PrintableMessage(result->output);
    if (std::string problem = RestoreRepositoryProblem(output, restore); !problem.empty()) {
      return Status::Invalid(problem);
    }
    return Status::Unavailable(std::string(kField) + ".repository: pgbackrest info failed: " + output);
  }
  auto info = ParseBackupInfo(result->output, restore.stanza);
  if (!info.ok()) return info.status();
  return ChooseRestoreBackup(*info, restore, majorVersion);
}

Status RestoreBackupInto(const InstanceLayout& layout, ProcessSpec program, const std::string& label,
                         const std::string& tmp, const std::function<void(const std::string&)>& onProgress) {
  PGRS_RETURN_IF_ERROR(RemoveTree(tmp));
  PGRS_RETURN_IF_ERROR(MakeDirs(tmp, 0700));
  PGRS_RETURN_IF_ERROR(ChownPath(tmp, layout.postgresUser.uid, layout.postgresUser.gid));
  // --type=preserve: pgBackRest writes no recovery settings of its own (its
  // restore_command would name this temporary directory as pg1-path).
  for (const std::string& arg :
       {"--pg1-path=" + tmp, std::string("--log-level-console=detail"), std::string("restore"),
        std::string("--type=preserve"), "--set=" + label}) {
    program.argv.push_back(arg);
  }
  auto result = RunCommand(program, 6h, [&](const std::string& line) {
    if (auto p = ParseRestoreProgress(line)) onProgress(*p);
  });
  if (!result.ok()) return result.status().WithContext("pgbackrest restore");
  if (!result->ok()) {
    RemoveTree(tmp).ok();
    const std::string& out = result->output;
    return Status::Unavailable("pgbackrest restore failed: " + out.substr(out.size() > 1000 ? out.size() - 1000 : 0));
  }
  // Whatever role the backed-up instance had: the caller marks this one.
  for (const char* stale : {"standby.signal", "recovery.signal", "recovery.conf"}) {
    ::unlink(JoinPath(tmp, stale).c_str());
  }
  return Status::Ok();
}

std::string RestoreRecoverySettings(const std::string& pgbackrest, const std::string& restoreConfigFile,
                                    const RestoreConfig& restore) {
  std::vector<std::pair<std::string, std::string>> settings;
  settings.emplace_back("restore_command",
                        postgres::RestoreCommand(postgres::ArchiveConfig{pgbackrest, restoreConfigFile, restore.stanza}));
  if (!restore.targetTime.empty()) settings.emplace_back("recovery_target_time", PostgresTimestamp(restore.targetTime));
  if (!restore.targetLsn.empty()) settings.emplace_back("recovery_target_lsn", restore.targetLsn);
  if (!restore.targetName.empty()) settings.emplace_back("recovery_target_name", restore.targetName);
  if (restore.targetImmediate) settings.emplace_back("recovery_target", "immediate");
  // Through the timelines of later failovers of the source, and once at the
  // target, a new timeline of its own.
  settings.emplace_back("recovery_target_timeline", "latest");
  settings.emplace_back("recovery_target_action", "promote");
  std::string out =
      "# Do not edit this file manually!\n"
      "# It will be overwritten by the ALTER SYSTEM command.\n";
  out += std::string(kSettingsComment) + " from stanza " + restore.stanza + " to " + DescribeTarget(restore) +
         "; removed once promoted\n";
  for (const auto& [key, value] : settings) out += key + " = " + postgres::QuoteConfValue(value) + "\n";
  return out;
}

std::string WithoutRestoreRecoverySettings(const std::string& text) {
  std::istringstream lines(text);
  std::string line, out;
  while (std::getline(lines, line)) {
    if (!IsRestoreSetting(line)) out += line + "\n";
  }
  return out;
}

bool RecoveryTargetMissed(const std::string& logText) {
  return logText.find("recovery ended before configured recovery target was reached") != std::string::npos;
}

bool RestoreTargetMissed(const InstanceLayout& layout) {
  if (!RestoreRecovering(layout)) return false;
  std::ifstream log(layout.PostgresLog(), std::ios::binary);
  if (!log) return false;
  log.seekg(0, std::ios::end);
  const std::streamoff size = log.tellg();
  const std::streamoff from = size > 16384 ? size - 16384 : 0;
  log.seekg(from);
  std::string tail(static_cast<size_t>(size - from), '\0');
  log.read(tail.data(), static_cast<std::streamsize>(tail.size()));
  return RecoveryTargetMissed(tail);
}

std::optional<std::string> ParseRestoreProgress(const std::string& line) {
  static const std::regex kProgress(R"(restore file .* \([^,()]+, ([0-9]+(\.[0-9]+)?)%\))");
  std::smatch m;
  if (!std::regex_search(line, m, kProgress)) return std::nullopt;
  return "restore " + m[1].str() + "%";
}

Status Restore(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress) {
  const RestoreConfig& restore = *config.restore;
  progress(kStateRestoring, "restore starting");
  // 1. The backup, from what the repository holds now.
  auto backup = FindRestoreBackup(layout.pgbackrest, restore,
                                  RunningAsRoot() ? std::optional<UserIds>(layout.postgresUser) : std::nullopt,
                                  config.majorVersion);
  if (!backup.ok()) return backup.status();
  spdlog::info("restoring instance={} stanza={} repository={} backup={} target=\"{}\"", layout.name, restore.stanza,
               RepositoryName(restore.repositoryPath, restore.s3), backup->label, DescribeTarget(restore));

  // 2. Into a temporary directory, renamed into place once complete. The
  // source repository has a configuration file (and CA bundle) of its own,
  // beside this set's: restore_command reads the source's archive with it
  // until the promotion.
  auto pc = PgBackRestConfigFor(
      layout, config.port, restore.stanza,
      PgBackRestRepositoryFor(restore.repositoryPath, restore.s3, layout.PgBackRestRestoreCaFile(), restore.cipherPass));
  PGRS_RETURN_IF_ERROR(WritePgBackRestConfigFile(layout, layout.PgBackRestRestoreConfigFile(), pc));
  if (pc.repository.s3 && !pc.repository.s3->caFile.empty()) {
    PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(layout.PgBackRestRestoreCaFile(), restore.s3->ca));
  }
  const std::string tmp = layout.DataDir() + ".restore";
  ProcessSpec program;
  program.argv = {layout.pgbackrest, "--config=" + layout.PgBackRestRestoreConfigFile(), "--stanza=" + restore.stanza};
  program.workingDir = layout.PgBackRestDir();
  if (RunningAsRoot()) program.runAs = layout.postgresUser;
  std::string lastLogged;
  PGRS_RETURN_IF_ERROR(RestoreBackupInto(layout, program, backup->label, tmp, [&](const std::string& p) {
    progress(kStateRestoring, p + " of backup " + backup->label);
    std::string tens = p.substr(0, p.find_first_of(".%") - 1);  // log every 10 %
    if (tens != lastLogged) {
      lastLogged = tens;
      spdlog::info("restore progress instance={} backup={} {}", layout.name, backup->label, p);
    }
  }));

  // 3. Archive recovery toward the target, then promotion.
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(
      JoinPath(tmp, "postgresql.auto.conf"),
      RestoreRecoverySettings(layout.pgbackrest, layout.PgBackRestRestoreConfigFile(), restore)));
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(JoinPath(tmp, "recovery.signal"), ""));
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(layout.RestoreMarker(), backup->label + "\n"));
  if (::rename(tmp.c_str(), layout.DataDir().c_str()) != 0) return Status::Unavailable("rename " + tmp + ": failed");
  spdlog::info("restored data directory instance={} backup={} recovering to \"{}\"", layout.name, backup->label,
               DescribeTarget(restore));
  progress(kStateRestoring, "recovering from the archive to " + DescribeTarget(restore));
  return Status::Ok();
}

bool RestoreInProgress(const InstanceLayout& layout) { return PathExists(layout.RestoreMarker()); }

bool RestoreRecovering(const InstanceLayout& layout) {
  return PathExists(layout.RestoreMarker()) && PathExists(JoinPath(layout.DataDir(), "recovery.signal"));
}

bool RestorePromoted(const InstanceLayout& layout) {
  if (!PathExists(layout.RestoreMarker()) || !PathExists(JoinPath(layout.DataDir(), "PG_VERSION")) ||
      PathExists(JoinPath(layout.DataDir(), "recovery.signal"))) {
    return false;
  }
  // PostgreSQL removes recovery.signal early in the end of recovery. Only
  // once the control file says "in production" is the new timeline durable:
  // a stop before that would have the next start replay, as crash recovery,
  // the archived WAL beyond the target that is still in pg_wal.
  auto major = layout.DataDirMajorVersion();
  if (!major) return false;
  const std::string state = ReadControlData(layout, *major).state;
  return state == "in production" || state == "shut down";
}

namespace {

std::string SqlLiteral(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

}  // namespace

Status FinishRestore(const InstanceLayout& layout, const AgentConfig& config) {
  const std::string autoConf = JoinPath(layout.DataDir(), "postgresql.auto.conf");
  if (auto text = ReadFile(autoConf); text.ok()) {
    std::string cleaned = WithoutRestoreRecoverySettings(*text);
    if (cleaned != *text) PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(autoConf, cleaned));
  }
  // The roles came with the backup, with the source's passwords: this set's
  // superuser password is set with no connection at all (single-user mode),
  // each statement on one line. Nothing echoes them: statements are not
  // logged. The source's replication role goes: the controller then makes
  // this set's roles as for a new set (the replication role, and in
  // Kubernetes the application role's password, which only it knows). A
  // role that cannot be dropped (something was granted to it) keeps its
  // name and gets this set's replication password.
  const std::string sqlFile = JoinPath(layout.instanceDir, "restore-passwords.sql");
  std::string sql = "ALTER ROLE postgres PASSWORD " + SqlLiteral(config.superuserPassword) + ";\n";
  sql += "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = " + SqlLiteral(config.replicationUser) +
         ") THEN BEGIN EXECUTE format('DROP ROLE %I', " + SqlLiteral(config.replicationUser) +
         "); EXCEPTION WHEN OTHERS THEN EXECUTE format('ALTER ROLE %I PASSWORD %L', " +
         SqlLiteral(config.replicationUser) + ", " + SqlLiteral(config.replicationPassword) +
         "); END; END IF; END $$;\n";
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(sqlFile, sql));
  ProcessSpec spec = layout.PostgresProgram(
      config.majorVersion, "postgres",
      {"--single", "-D", layout.DataDir(), "-c", "log_statement=none", "-c", "log_min_error_statement=panic",
       "postgres"});
  spec.stdinFile = sqlFile;
  spec.workingDir = layout.instanceDir;
  auto result = RunCommand(spec, 300s);
  ::unlink(sqlFile.c_str());
  if (!result.ok()) return result.status().WithContext("setting passwords after the restore");
  // Only ERROR and FATAL lines: the output could hold the statements.
  std::string problems;
  std::istringstream lines(result->output);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.find("ERROR:") != std::string::npos || line.find("FATAL:") != std::string::npos) problems += line + "; ";
  }
  if (!result->ok() || !problems.empty()) {
    return Status::Unavailable("setting this set's passwords after the restore failed (" +
                               (problems.empty() ? "exit code " + std::to_string(result->exitCode) : problems) + ")");
  }
  if (BackupConfigured(config)) {
    // This set's own stanza, before the first start archives anything (the
    // new timeline's history file first): a push that failed three times
    // would otherwise wait a minute for PostgreSQL's archiver to try again.
    // Offline, as PostgreSQL is stopped; the online stanza-create of every
    // primary follows anyway, so a failure here is only logged.
    ProcessSpec create = PgBackRestProgram(layout, "127.0.0.1", config.stanza, {"--no-online", "stanza-create"});
    auto created = RunCommand(create, 300s);
    if (!created.ok() || !created->ok()) {
      spdlog::warn("stanza-create before the restored primary's first start failed instance={} stanza={}: {}",
                   layout.name, config.stanza, created.ok() ? created->output : created.status().message());
    }
  }
  // The source repository's configuration held its secrets; nothing reads it now.
  for (const std::string& file : {layout.PgBackRestRestoreConfigFile(), layout.PgBackRestRestoreCaFile()}) {
    ::unlink(file.c_str());
  }
  ::unlink(layout.RestoreMarker().c_str());
  spdlog::info("restore complete instance={}: recovery settings removed, passwords set", layout.name);
  return Status::Ok();
}

}  // namespace pgrs::agent
