// The pgBackRest configuration pgrs writes for one instance: one stanza (the
// set's name) with a POSIX repository (repo1) and the instance's data
// directory as pg1. A pure function, like GenerateConfig; the agent writes
// the text to the file that archive_command and restore_command name.
//
// pgBackRest connects to PostgreSQL (stanza-create, backup) through libpq,
// but pgrs's instances have no Unix socket (unix_socket_directories = '')
// and pg1-socket-path must be a directory: whoever runs those commands sets
// PGHOST and PGPASSFILE (PgBackRestEnvironment). archive-push and
// archive-get do not connect.
#pragma once

#include <string>
#include <vector>

namespace pgrs::postgres {

struct PgBackRestConfig {
  std::string stanza;          // the set's name
  std::string repositoryPath;  // repo1-path: spec.backup.repository.path
  std::string dataDir;         // pg1-path
  int port = 5432;             // pg1-port
  std::string user = "postgres";  // pg1-user: a superuser
  int retentionFull = 0;          // repo1-retention-full; 0 = keep every backup
  // Under the instance directory: pgBackRest's asynchronous archive queue,
  // its lock files (one instance's locks never block another's), its logs.
  std::string spoolPath;
  std::string lockPath;
  std::string logPath;
};

// The file text (ini format), deterministic for equal inputs.
std::string GeneratePgBackRestConfig(const PgBackRestConfig& config);

// The environment a pgBackRest command that connects to PostgreSQL needs:
// PGHOST (TCP; there is no socket) and PGPASSFILE (the superuser's).
std::vector<std::string> PgBackRestEnvironment(const std::string& host, const std::string& passfile);

}  // namespace pgrs::postgres
