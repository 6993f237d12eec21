#include "operator/agent/configuration.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "operator/agent/archiving.h"
#include "operator/agent/postmaster.h"
#include "operator/pq/pq.h"
#include "operator/util/files.h"

namespace pgrs::agent {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

postgres::InstanceConfig ToInstanceConfig(const InstanceLayout& layout, const AgentConfig& c) {
  const std::string& name = layout.name;
  postgres::InstanceConfig ic;
  ic.majorVersion = c.majorVersion;
  ic.instanceName = name;
  ic.role = c.role == "primary" ? postgres::Role::kPrimary : postgres::Role::kStandby;
  ic.listenAddresses = c.listenAddresses;
  ic.port = c.port;
  ic.userParameters = c.parameters;
  ic.userHbaRules = c.pgHBA;
  if (!c.clientNetworks.empty()) ic.clientNetworks = c.clientNetworks;
  ic.replicationUser = c.replicationUser;
  ic.synchronousStandbyNames = c.synchronousStandbyNames;
  ic.maxSlotWalKeepSize = c.maxSlotWalKeepSize;
  ic.replicationSlots = c.replicationSlots;
  if (ic.role == postgres::Role::kStandby) {
    postgres::UpstreamConfig up;
    up.host = c.upstreamHost;
    up.port = c.upstreamPort;
    up.user = c.replicationUser;
    up.passfile = layout.ReplicationPassfile();
    up.applicationName = name;
    up.slotName = c.slotName;
    if (c.tls) {
      up.sslRootCert = layout.TlsCaFile();
      up.sslCert = layout.TlsReplicationCertFile();
      up.sslKey = layout.TlsReplicationKeyFile();
    }
    ic.upstream = up;
  }
  if (c.tls) {
    ic.tls = postgres::TlsFiles{layout.TlsServerCertFile(), layout.TlsServerKeyFile(), layout.TlsCaFile()};
  }
  if (BackupConfigured(c)) {
    ic.archive = postgres::ArchiveConfig{layout.pgbackrest, layout.PgBackRestConfigFile(), c.stanza};
  }
  ic.archiveRecovery = ic.role == postgres::Role::kPrimary && PathExists(layout.RestoreMarker());
  return ic;
}

Result<bool> WriteTlsFiles(const InstanceLayout& layout, const AgentConfig& config) {
  if (!config.tls) {
    if (!IsDirectory(layout.TlsDir())) return false;
    PGRS_RETURN_IF_ERROR(RemoveTree(layout.TlsDir()));
    return true;
  }
  PGRS_RETURN_IF_ERROR(layout.MakePostgresDir(layout.TlsDir()));
  const std::pair<std::string, const std::string*> files[] = {
      {layout.TlsCaFile(), &config.tls->ca},
      {layout.TlsServerCertFile(), &config.tls->serverCert},
      {layout.TlsServerKeyFile(), &config.tls->serverKey},
      {layout.TlsReplicationCertFile(), &config.tls->replicationCert},
      {layout.TlsReplicationKeyFile(), &config.tls->replicationKey},
  };
  bool changed = false;
  for (const auto& [path, content] : files) {
    bool wrote = false;
    PGRS_RETURN_IF_ERROR(layout.WritePostgresFileIfChanged(path, *content, &wrote));
    changed = changed || wrote;
  }
  return changed;
}

Result<ConfigurationWrite> WriteConfiguration(const InstanceLayout& layout, const AgentConfig& config) {
  ConfigurationWrite write;
  if (config.role == "standby") {
    std::string passfile = PassfileLine(config.replicationUser, config.replicationPassword);
    auto current = ReadFile(layout.ReplicationPassfile());
    // libpq ignores a passfile its group may read, which a volume's fsGroup
    // applied at mount time makes of it: rewritten then too.
    if (!current.ok() || *current != passfile || !HasMode(layout.ReplicationPassfile(), 0600)) {
      PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(layout.ReplicationPassfile(), passfile));
    }
  }
  // Before postgresql.conf names it in archive_command.
  if (BackupConfigured(config)) PGRS_RETURN_IF_ERROR(WritePgBackRestConfiguration(layout, config));
  auto generated = postgres::GenerateConfig(ToInstanceConfig(layout, config));
  for (const auto& file : generated.files) {
    std::string path = JoinPath(layout.DataDir(), file.name);
    auto current = ReadFile(path);
    if (current.ok() && *current == file.content) continue;
    PGRS_RETURN_IF_ERROR(layout.WritePostgresFile(path, file.content));
    if (file.name == "recovery.conf") write.recoveryConfChanged = true;
    write.changed = true;
  }
  for (const auto& name : generated.removeFiles) {
    std::string path = JoinPath(layout.DataDir(), name);
    if (PathExists(path)) {
      ::unlink(path.c_str());
      write.changed = true;
    }
  }
  return write;
}

bool NeedsRestartForConfiguration(const InstanceLayout& layout, const AgentConfig& config, pid_t postmaster, bool recoveryConfChanged) {
  if (recoveryConfChanged) return true;  // recovery.conf (11) is read at start only
  // Reload, then ask the server itself whether a setting it just read
  // waits for a restart; pg_conf_load_time tells when it has reloaded.
  auto conn = pq::Connection::Open(LocalParams(layout, config));
  if (!conn.ok() && config.tls) {
    // TLS just turned on: the server serves it only once reloaded.
    pq::ConnectionParams plain = LocalParams(layout, config);
    plain.sslRootCert.clear();
    conn = pq::Connection::Open(plain);
  }
  if (!conn.ok()) return true;
  auto t0 = (*conn)->Query("SELECT extract(epoch FROM clock_timestamp())::float8");
  if (!t0.ok() || t0->empty() || !(*t0)[0][0]) return true;
  ::kill(postmaster, SIGHUP);
  auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline) {
    auto fresh = pq::Connection::Open(LocalParams(layout, config));
    if (fresh.ok()) {
      auto rows = (*fresh)->Query(
          "SELECT extract(epoch FROM pg_conf_load_time())::float8 >= $1::float8, "
          "(SELECT count(*) FROM pg_settings WHERE pending_restart)",
          {*(*t0)[0][0]});
      if (rows.ok() && !rows->empty() && (*rows)[0][0] == std::optional<std::string>("t")) {
        return (*rows)[0][1] != std::optional<std::string>("0");
      }
    }
    std::this_thread::sleep_for(50ms);
  }
  return true;  // not reloaded within the deadline
}

}  // namespace pgrs::agent
