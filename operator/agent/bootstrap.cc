#include "operator/agent/bootstrap.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <regex>

#include "operator/agent/archiving.h"
#include "operator/agent/restore.h"
#include "operator/postgres/config.h"
#include "operator/util/files.h"
#include "operator/util/log.h"
#include "operator/util/process.h"

namespace pgrs::agent {

using namespace std::chrono_literals;

Status EnsureDataDirectory(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress) {
  if (PathExists(JoinPath(layout.DataDir(), "PG_VERSION"))) {
    auto major = layout.DataDirMajorVersion();
    if (major && *major != config.majorVersion) {
      return Status::Invalid("data directory holds PostgreSQL " + std::to_string(*major) +
                             " but spec.postgres.version is " + std::to_string(config.majorVersion));
    }
    return Status::Ok();
  }
  if (!PathExists(layout.PgBin(config.majorVersion, "postgres"))) {
    return Status::Unavailable("PostgreSQL " + std::to_string(config.majorVersion) + " is not installed (" +
                               layout.PgBin(config.majorVersion, "postgres") + " not found)");
  }
  if (config.role != "primary") {
    if (config.standbyFromRepository && BackupConfigured(config)) {
      Status restored = CloneFromRepository(layout, config, progress);
      if (restored.ok() || restored.code() != StatusCode::kNotFound) return restored;
      spdlog::info("no backup to restore the standby from yet, cloning with pg_basebackup instance={}", layout.name);
    }
    return Clone(layout, config, progress);
  }
  return config.restore ? Restore(layout, config, progress) : Initdb(layout, config, progress);
}

std::vector<std::string> InitdbArguments(int major, const std::string& target, const std::string& pwfile,
                                         bool dataChecksums) {
  std::vector<std::string> args = {"-D", target, "-U", "postgres", "--pwfile=" + pwfile,
                                   "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"};
  if (major < 14) args.push_back("--auth-local=scram-sha-256");
  // Every major from 11 on has it; pg_rewind is fine either way
  // (wal_log_hints is on regardless).
  if (dataChecksums) args.push_back("--data-checksums");
  return args;
}

Status Initdb(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress) {
  progress(kStateInitializing, "initdb");
  spdlog::info("initializing data directory instance={} dir={} major={} dataChecksums={}", layout.name,
               layout.DataDir(), config.majorVersion, config.dataChecksums);
  std::string tmp = layout.DataDir() + ".initdb";
  PGRS_RETURN_IF_ERROR(RemoveTree(tmp));
  std::string pwfile = JoinPath(layout.instanceDir, "superuser.pw");
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(pwfile, config.superuserPassword + "\n"));
  ProcessSpec spec = layout.PostgresProgram(config.majorVersion, "initdb", InitdbArguments(config.majorVersion, tmp, pwfile, config.dataChecksums));
  spec.env = {"LC_ALL=C.UTF-8"};
  spec.workingDir = layout.instanceDir;
  auto result = RunCommand(spec, 300s);
  ::unlink(pwfile.c_str());
  if (!result.ok()) return result.status().WithContext("initdb");
  if (!result->ok()) {
    RemoveTree(tmp).ok();
    return Status::Unavailable("initdb failed: " + result->output.substr(result->output.size() > 2000 ? result->output.size() - 2000 : 0));
  }
  if (::rename(tmp.c_str(), layout.DataDir().c_str()) != 0) return Status::Unavailable("rename " + tmp + ": failed");
  spdlog::info("initialized data directory instance={}", layout.name);
  return Status::Ok();
}

Status CloneFromRepository(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress) {
  progress(kStateCloning, "restore from the repository starting");
  PGRS_RETURN_IF_ERROR(WritePgBackRestConfiguration(layout, config));
  auto info = RunCommand(PgBackRestProgram(layout, config.upstreamHost, config.stanza, {"info", "--output=json"}), 120s);
  if (!info.ok()) return info.status().WithContext("pgbackrest info");
  auto repository = info->ok() ? ParseBackupInfo(info->output, config.stanza) : Status::NotFound("");
  if (!repository.ok() || repository->backups.empty()) return Status::NotFound("no backup in the repository yet");
  const std::string label = repository->backups.back().label;
  spdlog::info("restoring standby from the repository instance={} stanza={} backup={}", layout.name, config.stanza,
               label);
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(layout.ReplicationPassfile(),
                                                PassfileLine(config.replicationUser, config.replicationPassword)));
  // The standby's recovery settings come from pgrs's configuration:
  // primary_conninfo, its slot, restore_command.
  const std::string tmp = layout.DataDir() + ".clone";
  PGRS_RETURN_IF_ERROR(RestoreBackupInto(layout, PgBackRestProgram(layout, config.upstreamHost, config.stanza, {}),
                                         label, tmp, [&](const std::string& p) {
                                           progress(kStateCloning, p + " of backup " + label);
                                         }));
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(JoinPath(tmp, "standby.signal"), ""));
  if (::rename(tmp.c_str(), layout.DataDir().c_str()) != 0) return Status::Unavailable("rename " + tmp + ": failed");
  spdlog::info("restored standby from the repository instance={} backup={}; it catches up from the archive",
               layout.name, label);
  return Status::Ok();
}

std::optional<BasebackupProgress> ParseBasebackupProgress(const std::string& line) {
  static const std::regex kProgress(R"((\d+)/(\d+) kB \((\d+)%\))");
  std::smatch m;
  if (!std::regex_search(line, m, kProgress)) return std::nullopt;
  return BasebackupProgress{m[1].str(), m[2].str(), m[3].str()};
}

Status Clone(const InstanceLayout& layout, const AgentConfig& config, const BootstrapProgress& progress) {
  progress(kStateCloning, "clone starting");
  spdlog::info("cloning data directory instance={} from={}:{} slot={}", layout.name, config.upstreamHost,
               config.upstreamPort, config.slotName);
  std::string tmp = layout.DataDir() + ".clone";
  PGRS_RETURN_IF_ERROR(RemoveTree(tmp));
  PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(layout.ReplicationPassfile(),
                                                PassfileLine(config.replicationUser, config.replicationPassword)));
  ProcessSpec spec = layout.PostgresProgram(
      config.majorVersion, "pg_basebackup",
      {"-D", tmp, "-h", config.upstreamHost, "-p", std::to_string(config.upstreamPort), "-U", config.replicationUser,
       "-X", "stream", "--checkpoint=fast", "--progress", "--no-password"});
  if (!config.slotName.empty()) {
    spec.argv.push_back("--slot=" + config.slotName);
  }
  spec.env = {"PGPASSFILE=" + layout.ReplicationPassfile(), "PGAPPNAME=" + layout.name, "PGCONNECT_TIMEOUT=5"};
  if (config.tls) {
    // As the standby will stream: the upstream verified, and the client
    // certificate that the replication role authenticates with.
    spec.env.insert(spec.env.end(), {"PGSSLMODE=verify-full", "PGSSLROOTCERT=" + layout.TlsCaFile(),
                                     "PGSSLCERT=" + layout.TlsReplicationCertFile(),
                                     "PGSSLKEY=" + layout.TlsReplicationKeyFile()});
  }
  spec.workingDir = layout.instanceDir;
  std::string lastLogged;
  auto result = RunCommand(spec, 6h, [&](const std::string& line) {
    auto p = ParseBasebackupProgress(line);
    if (!p) return;
    progress(kStateCloning, "clone " + p->copiedKB + "/" + p->totalKB + " kB (" + p->percent + "%)");
    if (p->percent != lastLogged) {
      lastLogged = p->percent;
      spdlog::info("clone progress instance={} copiedKB={} totalKB={} percent={}", layout.name, p->copiedKB,
                   p->totalKB, p->percent);
    }
  });
  if (!result.ok()) return result.status().WithContext("pg_basebackup");
  if (!result->ok()) {
    RemoveTree(tmp).ok();
    std::string out = result->output;
    return Status::Unavailable("pg_basebackup failed: " + out.substr(out.size() > 1000 ? out.size() - 1000 : 0));
  }
  // A standby's data directory is marked as such before it ever starts.
  PGRS_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(tmp, postgres::UsesRecoveryConf(config.majorVersion)
                                                         ? "recovery.conf"
                                                         : "standby.signal"),
                                       "", 0600));
  PGRS_RETURN_IF_ERROR(ChownTree(tmp, layout.postgresUser.uid, layout.postgresUser.gid));
  if (::rename(tmp.c_str(), layout.DataDir().c_str()) != 0) return Status::Unavailable("rename " + tmp + ": failed");
  spdlog::info("cloned data directory instance={} from={}:{}", layout.name, config.upstreamHost,
               config.upstreamPort);
  return Status::Ok();
}

}  // namespace pgrs::agent
