// Where an instance's files are and who owns them: the paths under the
// instance directory, the PostgreSQL programs of a major version, and the OS
// user PostgreSQL runs as. The parts of the agent (bootstrap, configuration,
// postmaster, promote, rejoin) reach the disk and the PostgreSQL tools
// through this, so none of them needs the agent itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "operator/util/process.h"
#include "operator/util/status.h"

namespace pgrs::agent {

struct InstanceLayout {
  std::string name;         // the instance, e.g. demo-2 (named in every log line)
  std::string instanceDir;  // holds data/, the passfiles and postgres.log
  std::string pgBinRoot;    // <root>/<major>/bin
  UserIds postgresUser;     // who PostgreSQL runs as and owns its files
  std::string pgbackrest = "/usr/bin/pgbackrest";  // the program (spec.backup)

  std::string DataDir() const;                 // <instanceDir>/data
  std::string ReplicationPassfile() const;     // what a standby streams with
  std::string SuperuserPassfile() const;       // what pg_rewind connects with
  std::string PostgresLog() const;             // the postmaster's stdout and stderr
  std::string FenceMarker() const;             // present while fenced
  std::string PgBackRestDir() const;           // <instanceDir>/pgbackrest: its config, spool, locks, logs
  std::string PgBackRestConfigFile() const;    // what archive_command and `pgrs local backup` use
  std::string PgBackRestPassfile() const;      // what pgBackRest connects to PostgreSQL with
  std::string PgBackRestRestoreConfigFile() const;  // the source repository of a restore (spec.bootstrap.recovery)
  // Present from a restore until its promotion is complete (the recovery
  // settings removed, this set's passwords set): restore.h.
  std::string RestoreMarker() const;
  std::string PgBackRestCaFile() const;        // spec.backup.repository.s3's CA bundle (PEM)
  std::string PgBackRestRestoreCaFile() const; // spec.bootstrap.recovery.repository.s3's, until the restore is complete
  // spec.tls.enabled: the set's CA, this instance's server certificate and
  // key, and the client certificate and key it streams with as a standby.
  std::string TlsDir() const;  // <instanceDir>/tls
  std::string TlsCaFile() const;
  std::string TlsServerCertFile() const;
  std::string TlsServerKeyFile() const;
  std::string TlsReplicationCertFile() const;
  std::string TlsReplicationKeyFile() const;
  std::string PgBin(int major, const std::string& program) const;

  // What the data directory says it is: "primary", "standby" (standby.signal
  // or recovery.conf), or "" when there is none (no PG_VERSION).
  std::string DataDirRole() const;
  // The major version in PG_VERSION; nullopt when it cannot be read.
  std::optional<int> DataDirMajorVersion() const;

  // A PostgreSQL program of `major` with its arguments, run as the postgres
  // user when we are root. The caller adds environment and working directory.
  ProcessSpec PostgresProgram(int major, const std::string& program, std::vector<std::string> args) const;
  // Writes `content` atomically with mode 0600, owned by the postgres user.
  Status WritePostgresFile(const std::string& path, const std::string& content) const;
  // The same unless the file already holds `content` with mode 0600;
  // *changed (when given) says whether it wrote.
  Status WritePostgresFileIfChanged(const std::string& path, const std::string& content,
                                    bool* changed = nullptr) const;
  // A directory of mode 0700 owned by the postgres user, unless it exists.
  Status MakePostgresDir(const std::string& path) const;
};

// A passfile line that gives `user` its password on every host and database.
std::string PassfileLine(const std::string& user, const std::string& password);

}  // namespace pgrs::agent
