// The pgBackRest configuration pgrs writes for one instance: one stanza (the
// set's name) with a POSIX or S3 repository (repo1) and the instance's data
// directory as pg1. A pure function, like GenerateConfig; the agent writes
// the text to the file that archive_command and restore_command name.
//
// pgBackRest connects to PostgreSQL (stanza-create, backup) through libpq,
// but pgrs's instances have no Unix socket (unix_socket_directories = '')
// and pg1-socket-path must be a directory: whoever runs those commands sets
// PGHOST and PGPASSFILE (PgBackRestEnvironment). archive-push and
// archive-get do not connect.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace pgrs::postgres {

// An S3 bucket as repo1 (spec.backup.repository.s3). pgBackRest speaks
// HTTPS to it and checks the certificate against caFile.
struct S3Repository {
  std::string endpoint;  // repo1-s3-endpoint: a host
  int port = 0;          // repo1-storage-port; 0 = pgBackRest's (443)
  std::string bucket;
  std::string region;
  std::string uriStyle = "host";  // host | path
  bool verifyTLS = true;
  std::string caFile;  // a PEM bundle on this machine; "" = the system's CAs
  // Secrets: they go into the file (mode 0600), never onto a command line,
  // where pgBackRest refuses them anyway (ps would show them).
  std::string key;
  std::string keySecret;
};

// pgBackRest's repo1: a POSIX directory (path), or path inside an S3 bucket.
struct PgBackRestRepository {
  std::string path;  // repo1-path
  std::optional<S3Repository> s3;
  // Set: the repository's files are encrypted with this passphrase
  // (repo1-cipher-type=aes-256-cbc, repo1-cipher-pass). A secret, like the
  // S3 keys: only in the file.
  std::string cipherPass;
};

// The repo1-* options of a repository, as name=value lines for
// pgbackrest.conf's [global] section: the one place a repository becomes
// pgBackRest options (backups, archiving and restore share it).
std::string RepositoryOptions(const PgBackRestRepository& repository);

struct PgBackRestConfig {
  std::string stanza;          // the set's name
  PgBackRestRepository repository;  // spec.backup.repository
  std::string dataDir;         // pg1-path
  int port = 5432;             // pg1-port
  std::string user = "postgres";  // pg1-user: a superuser
  int retentionFull = 0;          // repo1-retention-full; 0 = keep every backup
  // Under the instance directory: pgBackRest's asynchronous archive queue,
  // its lock files (one instance's locks never block another's), its logs.
  std::string spoolPath;
  std::string lockPath;
  std::string logPath;
  // `pgbackrest server` (Kubernetes, a standby's files for another Pod's
  // backup): where it listens, its certificate, the CA client certificates
  // are checked against, and the one client CN it admits (for this stanza
  // only). Unset: no tls-server-* options.
  struct TlsServer {
    std::string address;
    int port = 0;
    std::string certFile, keyFile, caFile;
    std::string clientCommonName;
  };
  std::optional<TlsServer> tlsServer;
};

// The file text (ini format), deterministic for equal inputs.
std::string GeneratePgBackRestConfig(const PgBackRestConfig& config);

// The environment a pgBackRest command that connects to PostgreSQL needs:
// PGHOST (TCP; there is no socket) and PGPASSFILE (the superuser's).
// With TLS (sslRootCert not empty), over TLS only, the server verified
// against that CA file.
std::vector<std::string> PgBackRestEnvironment(const std::string& host, const std::string& passfile,
                                               const std::string& sslRootCert);

}  // namespace pgrs::postgres
